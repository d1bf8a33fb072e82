/**
 * Queries that live subscriptions hold: `mastra/live:messages` (store.messages.watch),
 * `mastra/live:workflowRun` (store.workflows.watch) and `mastra/live:cacheList`
 * (cache.watch_list).
 *
 * A subscribed query is re-run after every commit that writes what it read, and its whole
 * result is sent again when it changes, so these read one bounded page: never a whole thread.
 * Internal, like the handlers: callable with the admin key; `mastra/public:liveMessages`,
 * `mastra/public:liveWorkflowRun` and `mastra/public:liveCacheList` are the same queries for
 * allow-listed JWT identities.
 */
import { internalQueryGeneric } from "convex/server";
import { v } from "convex/values";
import type { ReadCtx } from "./lib/common";
import { byIndex } from "./lib/tables";

/** Most messages one result holds; the watcher moves its cursor past a full page. */
export const LIVE_PAGE = 100;

export const liveMessagesArgs = {
  threadId: v.string(),
  /** `_creationTime` of the last message already seen: only later ones are read. */
  after: v.optional(v.number()),
  /** Or the id of that message (its `_creationTime` is looked up on every run). */
  afterId: v.optional(v.string()),
};

export interface LiveMessages {
  /** The thread's messages after the cursor, in commit order (`_creationTime`), at most LIVE_PAGE. */
  rows: Record<string, unknown>[];
  /** The page is full: later messages may follow it (the watcher moves its cursor). */
  full: boolean;
  /** `afterId` named no message (it was deleted, or never saved): nothing is read. */
  missing: boolean;
}

/**
 * The thread's messages saved after a cursor, oldest first. Commit order, not `createdAt`: a
 * message saved later with an earlier `createdAt` is still after the cursor, so a watcher
 * sees it. Reads the page and nothing before the cursor (`by_thread` ends in `_creationTime`).
 */
export async function liveMessages(
  ctx: ReadCtx,
  args: { threadId: string; after?: number; afterId?: string },
): Promise<LiveMessages> {
  let after = args.after;
  if (after === undefined && args.afterId !== undefined) {
    const anchor = await ctx.db
      .query("mastra_messages")
      .withIndex("by_record_id", (q) => q.eq("id", args.afterId!))
      .first();
    if (anchor === null) return { rows: [], full: false, missing: true };
    after = anchor._creationTime as number;
  }
  const bounds = after === undefined ? {} : { gt: after };
  const rows = await byIndex(ctx, "mastra_messages", "by_thread", [["thread_id", args.threadId]], "_creationTime", bounds).take(
    LIVE_PAGE,
  );
  return { rows, full: rows.length === LIVE_PAGE, missing: false };
}

export const messages = internalQueryGeneric({
  args: liveMessagesArgs,
  handler: async (ctx, args): Promise<LiveMessages> => liveMessages(ctx, args),
});

export const workflowRunArgs = { workflowName: v.string(), runId: v.string() };

/** The run's stored row, or null: one document, read by its natural key. */
export async function workflowRunRow(
  ctx: ReadCtx,
  args: { workflowName: string; runId: string },
): Promise<Record<string, unknown> | null> {
  return await byIndex(ctx, "mastra_workflow_snapshots", "by_workflow_run", [
    ["workflow_name", args.workflowName],
    ["run_id", args.runId],
  ]).first();
}

export const workflowRun = internalQueryGeneric({
  args: workflowRunArgs,
  handler: async (ctx, args): Promise<Record<string, unknown> | null> => workflowRunRow(ctx, args),
});

export const cacheListArgs = { key: v.string(), start: v.number() };

export interface LiveCacheList {
  /** The list's items from `start` on (stored JSON text), at most LIVE_PAGE, by index. */
  items: { index: number; value: string }[];
  full: boolean;
}

/** Items of the cache list at `key` (the full, prefixed key) from index `start`. */
export async function cacheListItems(ctx: ReadCtx, args: { key: string; start: number }): Promise<LiveCacheList> {
  const rows = await byIndex(ctx, "mastra_cache_list_items", "by_key_index", [["key", args.key]], "index", {
    gte: args.start,
  }).take(LIVE_PAGE);
  return {
    items: rows.map((row) => ({ index: row["index"] as number, value: row["value"] as string })),
    full: rows.length === LIVE_PAGE,
  };
}

export const cacheList = internalQueryGeneric({
  args: cacheListArgs,
  handler: async (ctx, args): Promise<LiveCacheList> => cacheListItems(ctx, args),
});
