export { mastraCache as handle } from "@mastra/convex/server";
