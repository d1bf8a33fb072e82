import { defineSchema } from "convex/server";
import { mastraTables } from "./mastra/tables";

// Schema for a deployment that only hosts convex-mastra. In your own project,
// spread `mastraTables` into your existing defineSchema({...}) instead.
export default defineSchema({
  ...mastraTables,
});
