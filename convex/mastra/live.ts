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
import { type Value, v } from "convex/values";
import type { ReadCtx } from "./lib/common";
import { byIndex, findById } from "./lib/tables";

/** Most messages one result holds; the watcher moves its cursor past a full page. */
export const LIVE_PAGE = 100;

export const liveMessagesArgs = {
  threadId: v.string(),
  /** `writeSeq` of the last message already seen: only messages written later are read. */
  afterSeq: v.optional(v.number()),
  /** Or, among messages stored before `writeSeq` existed, the last one's `_creationTime`. */
  after: v.optional(v.number()),
  /** Or the id of that message, a message of this thread (looked up on every run). */
  afterId: v.optional(v.string()),
};

export interface LiveMessages {
  /** The thread's messages after the cursor, in write order, at most LIVE_PAGE. */
  rows: Record<string, unknown>[];
  /** The page is full: later messages may follow it (the watcher moves its cursor). */
  full: boolean;
  /** `afterId` named no message of the thread (deleted, moved, or never saved): nothing is read. */
  missing: boolean;
}

type Position = { seq: number } | { created: number } | null;

/**
 * The thread's messages written after a cursor, in write order: each message sits at its
 * `writeSeq`, given anew when it is inserted or changed (see writer.ts), so an updated message
 * or one moved into the thread comes after the cursor again, once. Rows stored before
 * `writeSeq` existed come first, by `_creationTime`. Reads the page and nothing before the
 * cursor (index `by_thread_seq`).
 */
export async function liveMessages(
  ctx: ReadCtx,
  args: { threadId: string; afterSeq?: number; after?: number; afterId?: string },
): Promise<LiveMessages> {
  let position: Position = null;
  if (args.afterSeq !== undefined) position = { seq: args.afterSeq };
  else if (args.after !== undefined) position = { created: args.after };
  else if (args.afterId !== undefined) {
    const anchor = await findById(ctx, "mastra_messages", args.afterId);
    if (anchor === null || anchor.thread_id !== args.threadId) return { rows: [], full: false, missing: true };
    position =
      typeof anchor.writeSeq === "number" ? { seq: anchor.writeSeq } : { created: anchor._creationTime as number };
  }
  const thread: [string, Value][] = [["thread_id", args.threadId]];
  let rows: Record<string, unknown>[] = [];
  if (position === null || "created" in position) {
    const unsequenced: [string, Value][] = [...thread, ["writeSeq", undefined as unknown as Value]];
    const bounds = position === null ? {} : { gt: position.created };
    rows = await byIndex(ctx, "mastra_messages", "by_thread_seq", unsequenced, "_creationTime", bounds).take(LIVE_PAGE);
  }
  if (rows.length < LIVE_PAGE) {
    const bounds = { gt: position !== null && "seq" in position ? position.seq : 0 };
    const later = await byIndex(ctx, "mastra_messages", "by_thread_seq", thread, "writeSeq", bounds).take(
      LIVE_PAGE - rows.length,
    );
    rows = rows.concat(later);
  }
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
