// Transactional row counts in `mastra_counters`.
//
// Rows: (table, "*") counts the whole table (not for messages, see
// COUNTS_ALL_ROWS); (table, '{"thread_id":"t1"}')
// counts one group (JSON object of the grouped field values, fields in the
// order listed below); (table, "#state") and (table, "#scan") track whether
// the counts can be trusted:
//   - READY: every write keeps the counts exact.
//   - STALE: rows existed before counting started (for example data written
//     by the stock @mastra/convex handler), or a count would have gone
//     negative. `count` refuses until `rebuildCounters` has run.
//   - RESETTING / SCANNING: `rebuildCounters` is deleting old counts, then
//     counting rows in _creationTime order. While scanning, writes keep the
//     counts of rows at or before the scan position; later rows are counted
//     when the scan reaches them, so the result is exact when it finishes.
// A table without a "#state" row is READY when it is empty, else STALE.
//
// Rank trees (ranks.ts) change with the counts and are rebuilt with them. A "#ranks" row
// says they are complete: written whenever the state becomes READY, removed when a rebuild
// starts. A table counted by an earlier version of these functions is READY without it: its
// trees are trusted only after one rebuild, which `rebuildCounters` then runs unforced.
import type { Value } from "convex/values";
import {
  type Ctx,
  type Doc,
  type ReadCtx,
  RequestError,
  bodyOf,
  groupKey,
  takeWithin,
} from "./common";
import { hasDerived, withDerived } from "./derived";
import { RankForest, clearRanks, isRanked, keyOf, rankedIndexesOf, treeOf } from "./ranks";
import { byIndex, COUNTERS, RESOURCES, SCORERS, THREADS, WORKFLOW_SNAPSHOTS } from "./tables";

export const COUNTED_GROUPS: Record<string, readonly (readonly string[])[]> = {
  mastra_threads: [["resourceId"]],
  mastra_messages: [["thread_id"], ["resourceId"], ["thread_id", "resourceId"]],
  mastra_resources: [],
  // Every combination of the three optional filters of a run listing.
  mastra_workflow_snapshots: [
    ["workflow_name"],
    ["resourceId"],
    ["status"],
    ["workflow_name", "resourceId"],
    ["workflow_name", "status"],
    ["resourceId", "status"],
    ["workflow_name", "resourceId", "status"],
  ],
  mastra_scorers: [
    ["scorerId"],
    ["runId"],
    ["entityId", "entityType"],
    ["traceId", "spanId"],
    ["scorerId", "entityId", "entityType"],
  ],
};

export const ALL_ROWS = "*";

// Tables whose total row count is kept. Every write to a table touches its "*" row, so on a
// real deployment all writes to it would contend for that one document. Messages are only
// ever listed per thread or resource, so they keep no table total: message writes then
// contend only within their own thread and resource.
export const COUNTS_ALL_ROWS = new Set<string>([THREADS, RESOURCES, WORKFLOW_SNAPSHOTS, SCORERS]);
const STATE_ROW = "#state";
const SCAN_ROW = "#scan";
const RANKS_ROW = "#ranks";

export enum CounterState {
  Stale = 0,
  Ready = 1,
  Scanning = 2,
  Resetting = 3,
}

export const isCounted = (table: string): boolean => table in COUNTED_GROUPS;

/** Every counter row a document contributes to. */
export function groupsOf(table: string, doc: Record<string, unknown>): string[] {
  const keys = COUNTS_ALL_ROWS.has(table) ? [ALL_ROWS] : [];
  for (const fields of COUNTED_GROUPS[table] ?? []) {
    const key = groupKey(fields, doc);
    if (key !== null) keys.push(key);
  }
  return keys;
}

async function counterRow(ctx: ReadCtx, table: string, group: string): Promise<Doc | null> {
  return (await byIndex(ctx, COUNTERS, "by_group", [
    ["table", table],
    ["group", group],
  ]).first()) as Doc | null;
}

export type CounterStatus = {
  state: CounterState;
  scanPosition: number;
  /** False when the state was derived (no "#state" row yet). */
  stored: boolean;
};

export async function readCounterStatus(ctx: ReadCtx, table: string): Promise<CounterStatus> {
  const row = await counterRow(ctx, table, STATE_ROW);
  if (row) {
    const state = row.count as CounterState;
    const scan = state === CounterState.Scanning ? await counterRow(ctx, table, SCAN_ROW) : null;
    return { state, scanPosition: scan ? (scan.count as number) : -1, stored: true };
  }
  const anyRow = await ctx.db.query(table).first();
  return {
    state: anyRow === null ? CounterState.Ready : CounterState.Stale,
    scanPosition: -1,
    stored: false,
  };
}

async function setRow(ctx: Ctx, table: string, group: string, count: number | null) {
  const row = await counterRow(ctx, table, group);
  if (count === null) {
    if (row) await ctx.db.delete(row._id);
  } else if (row) {
    if (row.count !== count) await ctx.db.patch(row._id, { count });
  } else {
    await ctx.db.insert(COUNTERS, { table, group, count });
  }
}

export async function writeCounterState(ctx: Ctx, table: string, state: CounterState) {
  await setRow(ctx, table, STATE_ROW, state);
  if (isRanked(table) && (state === CounterState.Ready || state === CounterState.Resetting)) {
    await setRow(ctx, table, RANKS_ROW, state === CounterState.Ready ? 1 : null);
  }
}

/** Whether the rank trees of `table` hold every row: counts READY and trees complete. */
export async function ranksReady(ctx: ReadCtx, table: string): Promise<boolean> {
  const status = await readCounterStatus(ctx, table);
  if (status.state !== CounterState.Ready) return false;
  return !status.stored || (await counterRow(ctx, table, RANKS_ROW))?.count === 1;
}

/**
 * Add `deltas` (group -> change) to the counts of `table`. A count that would
 * go negative proves the counts wrong, so the table is marked STALE.
 */
export async function applyDeltas(ctx: Ctx, table: string, deltas: Map<string, number>) {
  const updates: [string, number][] = [];
  for (const [group, delta] of deltas) {
    if (delta === 0) continue;
    const row = await counterRow(ctx, table, group);
    const next = ((row?.count as number | undefined) ?? 0) + delta;
    if (next < 0) {
      await writeCounterState(ctx, table, CounterState.Stale);
      return;
    }
    updates.push([group, next]);
  }
  for (const [group, next] of updates) {
    // Zero counts are not stored: a missing row reads as 0.
    await setRow(ctx, table, group, next === 0 ? null : next);
  }
}

/** Resolve `eq` to a counted group of `table`; throws when it is not counted. */
export function countedGroupFor(table: string, eq: { field: string; value: Value }[]): string {
  if (eq.length === 0) {
    if (COUNTS_ALL_ROWS.has(table)) return ALL_ROWS;
    throw new RequestError(`count: ${table} keeps no total; count a group instead`);
  }
  const wanted = [...eq.map((clause) => clause.field)].sort();
  for (const fields of COUNTED_GROUPS[table] ?? []) {
    if (fields.length === wanted.length && [...fields].sort().every((f, i) => f === wanted[i])) {
      const values = Object.fromEntries(eq.map((clause) => [clause.field, clause.value]));
      return groupKey(fields, values) ?? "";
    }
  }
  const counted = (COUNTED_GROUPS[table] ?? []).map((fields) => `[${fields.join(", ")}]`);
  throw new RequestError(
    `count: ${table} is not counted by [${wanted.join(", ")}]; counted groups: ` +
      (counted.length ? `*, ${counted.join(", ")}` : "*"),
  );
}

export async function readCount(ctx: ReadCtx, table: string, group: string): Promise<number> {
  const status = await readCounterStatus(ctx, table);
  if (status.state !== CounterState.Ready) {
    const why =
      status.state === CounterState.Stale
        ? "are not initialized for rows written before counting started (or drifted)"
        : "are being rebuilt";
    throw new RequestError(
      `count: counters of ${table} ${why}; call rebuildCounters until it reports done`,
      "STALE_COUNTERS",
      { table },
    );
  }
  if (group === "") return 0; // a group with a null value holds no rows
  const row = await counterRow(ctx, table, group);
  return (row?.count as number | undefined) ?? 0;
}

/**
 * `doc` with its derived columns recomputed, written back when they differ:
 * rows written by another handler (stock @mastra/convex) lack them, and a
 * rebuild is the step that makes such rows countable and indexable.
 */
async function refreshDerived(ctx: Ctx, table: string, doc: Doc): Promise<Doc> {
  const body = withDerived(table, bodyOf(doc));
  const keys = new Set([...Object.keys(body), ...Object.keys(bodyOf(doc))]);
  if ([...keys].every((key) => body[key] === doc[key])) return doc;
  await ctx.db.replace(doc._id, body);
  return { ...body, _id: doc._id, _creationTime: doc._creationTime } as Doc;
}

/**
 * One bounded step of a counter rebuild. Returns true when more calls are
 * needed. Counts are written directly here: the scan position decides which
 * rows concurrent writes keep counted.
 */
export async function rebuildStep(
  ctx: Ctx,
  table: string,
  batchSize: number,
  force: boolean,
): Promise<{ hasMore: boolean; state: string; scanned: number }> {
  const status = await readCounterStatus(ctx, table);
  const treesMissing =
    status.state === CounterState.Ready && isRanked(table) && !(await ranksReady(ctx, table));
  if (status.state === CounterState.Ready && !((force || treesMissing) && status.stored)) {
    if (!status.stored) await writeCounterState(ctx, table, CounterState.Ready);
    return { hasMore: false, state: "ready", scanned: 0 };
  }
  if (status.state === CounterState.Ready || status.state === CounterState.Stale) {
    await writeCounterState(ctx, table, CounterState.Resetting);
    return { hasMore: true, state: "resetting", scanned: 0 };
  }
  if (status.state === CounterState.Resetting) {
    const rows = (await ctx.db
      .query(COUNTERS)
      .withIndex("by_group", (q) => q.eq("table", table))
      .take(batchSize + 2)) as Doc[];
    const stale = rows.filter((row) => !(row.group as string).startsWith("#"));
    for (const row of stale.slice(0, batchSize)) await ctx.db.delete(row._id);
    if (stale.length > batchSize) return { hasMore: true, state: "resetting", scanned: 0 };
    // Rank trees are rebuilt with the counts (ranks.ts).
    if (await clearRanks(ctx, table, batchSize - stale.length)) {
      return { hasMore: true, state: "resetting", scanned: 0 };
    }
    await writeCounterState(ctx, table, CounterState.Scanning);
    await setRow(ctx, table, SCAN_ROW, -1);
    return { hasMore: true, state: "scanning", scanned: 0 };
  }
  // Scanning: count the next batch of rows after the scan position.
  const { docs, next } = await takeWithin(
    ctx.db
      .query(table)
      .withIndex("by_creation_time", (q) => q.gt("_creationTime", status.scanPosition)),
    batchSize,
  );
  let batch = docs;
  const more = next !== null;
  if (next !== null) {
    // Never split rows that share a _creationTime across two steps.
    const boundary = next._creationTime;
    batch = batch.filter((doc) => doc._creationTime < boundary);
    if (batch.length === 0) {
      throw new RequestError(
        `rebuildCounters: more than ${batchSize} rows of ${table} share one _creationTime; ` +
          "retry with a larger batchSize",
        "LIMIT",
        { table, batchSize },
      );
    }
  }
  const deltas = new Map<string, number>();
  const forest = new RankForest(ctx, table);
  for (const doc of batch) {
    const counted = hasDerived(table) ? await refreshDerived(ctx, table, doc) : doc;
    for (const group of groupsOf(table, counted)) deltas.set(group, (deltas.get(group) ?? 0) + 1);
    for (const spec of rankedIndexesOf(table)) {
      const tree = treeOf(spec, counted);
      if (tree !== null) await forest.add(tree, keyOf(spec, counted));
    }
  }
  await forest.flush();
  for (const [group, delta] of deltas) {
    const row = await counterRow(ctx, table, group);
    await setRow(ctx, table, group, ((row?.count as number | undefined) ?? 0) + delta);
  }
  if (more) {
    await setRow(ctx, table, SCAN_ROW, batch[batch.length - 1]!._creationTime);
    return { hasMore: true, state: "scanning", scanned: batch.length };
  }
  await setRow(ctx, table, SCAN_ROW, null);
  await writeCounterState(ctx, table, CounterState.Ready);
  return { hasMore: false, state: "ready", scanned: batch.length };
}
