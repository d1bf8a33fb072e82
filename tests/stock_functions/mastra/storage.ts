// Upstream's handler as a Mastra app deploys it (a public mutation).
export { mastraStorage as handle } from "@mastra/convex/server";
