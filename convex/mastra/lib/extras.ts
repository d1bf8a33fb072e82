// Our read ops: index pagination and transactional counts.
import type { Value } from "convex/values";
import {
  type Ctx,
  type Doc,
  type Request,
  type Response,
  RequestError,
  isPlainObject,
  isScalarPairs,
  ok,
  readArray,
  readInt,
  readString,
  READ_BUDGET,
} from "./common";
import { COUNTED_GROUPS, countedGroupFor, ranksReady, readCount, rebuildStep } from "./counters";
import { RankForest, type RankKey, keyOf, rankedIndexesOf, treeOf } from "./ranks";
import { decodeJsonObject } from "./encoding";
import {
  type Bounds,
  byIndex,
  findById,
  indexesOf,
  MESSAGES,
  readFilters,
  typedTable,
  withEquality,
} from "./tables";
import { MAX_BATCH, MAX_PAGE } from "./typed";

/** Rows one pageByIndex or scan call may read (Convex allows ~32,000 reads per transaction). */
export const MAX_SCAN = 4000;
export const MAX_WINDOW_ITEMS = 100;

function indexFields(op: string, table: string, index: string): string[] {
  if (index === "by_creation_time") return ["_creationTime"];
  const fields = indexesOf(table)[index];
  if (!fields) {
    const known = Object.keys(indexesOf(table)).join(", ");
    throw new RequestError(
      `${op}: ${table} has no index ${index} (indexes: ${known}, by_creation_time)`,
    );
  }
  return fields;
}

function checkPrefix(op: string, index: string, fields: string[], eqFields: string[]) {
  if (eqFields.length > fields.length || eqFields.some((field, i) => fields[i] !== field)) {
    throw new RequestError(
      `${op}: eq fields [${eqFields.join(", ")}] are not a prefix of ${index} [${fields.join(", ")}]`,
    );
  }
}

function readBounds(op: string, raw: unknown): Bounds | null {
  if (raw === undefined || raw === null) return null;
  if (!isPlainObject(raw)) throw new RequestError(`${op}: "range" must be an object`);
  for (const key of Object.keys(raw)) {
    if (!["gt", "gte", "lt", "lte"].includes(key)) {
      throw new RequestError(`${op}: "range" accepts only gt, gte, lt and lte (got ${key})`);
    }
  }
  if (raw.gt !== undefined && raw.gte !== undefined) {
    throw new RequestError(`${op}: "range" cannot have both gt and gte`);
  }
  if (raw.lt !== undefined && raw.lte !== undefined) {
    throw new RequestError(`${op}: "range" cannot have both lt and lte`);
  }
  return raw as Bounds;
}

/** `req.index`, `req.eq` on its leading fields and `req.range` on the next one, checked. */
function readIndexRequest(op: string, table: string, req: Request) {
  const index = readString(req, "index");
  const fields = indexFields(op, table, index);
  const eq = readFilters(op, req.eq, "eq");
  checkPrefix(
    op,
    index,
    fields,
    eq.map((clause) => clause.field),
  );
  const bounds = readBounds(op, req.range);
  const boundsField = bounds ? fields[eq.length] : undefined;
  if (bounds && boundsField === undefined) {
    throw new RequestError(`${op}: "range" needs an index field after the eq prefix of ${index}`);
  }
  const pairs = eq.map((clause): [string, Value] => [clause.field, clause.value]);
  return { index, eq: pairs, bounds: bounds ?? {}, boundsField };
}

/** `table` through `req.index` with `req.eq` on its leading fields and `req.range` on the next. */
function indexQuery(ctx: Ctx, op: string, table: string, req: Request) {
  const { index, eq, bounds, boundsField } = readIndexRequest(op, table, req);
  return byIndex(ctx, table, index, eq, boundsField, bounds);
}

/**
 * pageByIndex {tableName, index, eq?, range?, order?, numItems, skip?, cursor?,
 * filters?} -> {page, skipped, continueCursor, isDone}. `eq` must follow the
 * index fields in order; `range` bounds the next index field. `filters` are
 * equality checks on other fields, so a page can be short (even empty) before
 * isDone. `skip` rows are read but not returned (numItems may then be 0), so
 * a client reaches an offset without downloading what lies before it.
 */
export async function pageByIndex(ctx: Ctx, req: Request): Promise<Response> {
  const op = "pageByIndex";
  const table = typedTable(op, req.tableName);
  const skip = readInt(req, "skip", 0, 0, MAX_SCAN);
  const numItems = readInt(req, "numItems", 100, skip > 0 ? 0 : 1, MAX_PAGE);
  if (skip + numItems > MAX_SCAN) {
    throw new RequestError(`${op}: skip + numItems must be at most ${MAX_SCAN}`);
  }
  const cursor = readCursor(op, req);
  const filters = readFilters(op, req.filters);
  const query = withEquality(indexQuery(ctx, op, table, req).order(readOrder(op, req)), filters);
  // One paginate call reads the skipped rows and the page; only the page travels back.
  const page = await query.paginate({
    cursor,
    numItems: skip + numItems,
    maximumBytesRead: READ_BUDGET,
  });
  return ok({
    page: page.page.slice(skip),
    skipped: Math.min(skip, page.page.length),
    continueCursor: page.continueCursor,
    isDone: page.isDone,
    ...(page.pageStatus ? { pageStatus: page.pageStatus } : {}),
  });
}

/**
 * pageByRank {tableName, index, eq, range?, order?, offset, numItems} ->
 * {ranked: true, total, page, range, ties, skipped, continueCursor, isDone} | {ranked: false}.
 * For an index with a rank tree (ranks.ts) and `eq` on all its leading fields:
 * `total` is how many rows lie in `range`, and `page` the rows at `offset` ..
 * `offset + numItems` of them in `order`, found through the tree instead of
 * by reading the rows before `offset`. Reads one tree node per level and
 * level per search, plus the page and any rows sharing its first sort value
 * that come before it. A short page with isDone false stopped at the byte
 * budget: continue with pageByIndex from continueCursor, with the `range` returned. `ranked: false`
 * when the index has no tree or its trees are incomplete (counts not READY, or
 * not rebuilt since an upgrade): page with pageByIndex.
 */
export async function pageByRank(ctx: Ctx, req: Request): Promise<Response> {
  const op = "pageByRank";
  const table = typedTable(op, req.tableName);
  const { index, eq, bounds } = readIndexRequest(op, table, req);
  const order = readOrder(op, req);
  const offset = readInt(req, "offset", 0, 0, Number.MAX_SAFE_INTEGER);
  const numItems = readInt(req, "numItems", 100, 0, MAX_PAGE);
  const notRanked = ok({ ranked: false });
  const spec = rankedIndexesOf(table).find((ranked) => ranked.index === index);
  if (!spec || eq.length !== spec.eq.length) return notRanked;
  if (!(await ranksReady(ctx, table))) return notRanked;
  const tree = treeOf(spec, Object.fromEntries(eq));
  if (tree === null) return notRanked;
  const forest = new RankForest(ctx, table);
  const key = (value: Value | undefined): RankKey => keyOf(spec, { [spec.sort]: value });
  // Ranks (ascending) of the first row in range and of the first row past it.
  const lo =
    bounds.gt !== undefined
      ? await forest.countBelow(tree, key(bounds.gt), true)
      : bounds.gte !== undefined
        ? await forest.countBelow(tree, key(bounds.gte), false)
        : 0;
  const hi =
    bounds.lt !== undefined
      ? await forest.countBelow(tree, key(bounds.lt), false)
      : bounds.lte !== undefined
        ? await forest.countBelow(tree, key(bounds.lte), true)
        : await forest.size(tree);
  const total = Math.max(0, hi - lo);
  const want = Math.min(numItems, total - offset);
  if (want <= 0) {
    return ok({
      ranked: true,
      total,
      page: [],
      ties: 0,
      skipped: 0,
      continueCursor: null,
      isDone: true,
    });
  }
  const rank = order === "asc" ? lo + offset : hi - 1 - offset;
  const value = await forest.select(tree, rank);
  // Missing sort values: the index cannot be entered at one (undefined and null differ there).
  if (value === undefined || value === null) return notRanked;
  // Rows sharing `value` before the wanted one, in reading order.
  const ties =
    order === "asc"
      ? rank - (await forest.countBelow(tree, value, false))
      : (await forest.countBelow(tree, value, true)) - 1 - rank;
  if (ties + want > MAX_SCAN) return notRanked;
  const from: Bounds =
    order === "asc"
      ? { gte: value, lt: bounds.lt, lte: bounds.lte }
      : { lte: value, gt: bounds.gt, gte: bounds.gte };
  const query = byIndex(ctx, table, index, eq, spec.sort, from).order(order);
  const page = await query.paginate({
    cursor: null,
    numItems: ties + want,
    maximumBytesRead: READ_BUDGET,
  });
  return ok({
    ranked: true,
    total,
    page: page.page.slice(ties),
    // A cursor belongs to its query: a client continuing from it must send this range.
    range: from,
    ties,
    skipped: Math.min(ties, page.page.length),
    continueCursor: page.continueCursor,
    isDone: page.isDone,
  });
}

type Match = { field: string; path: string[]; equals: [string, Value][]; view?: "run" };

/**
 * {field, path?, view?, equals: [[key, scalar], ...]}: pairs, since keys may be "$schema"
 * and the like. `view: "run"` compares against {status, threadId} of the workflow snapshot
 * at `field` instead of the object itself.
 */
function readMatch(op: string, raw: unknown): Match | null {
  if (raw === undefined || raw === null) return null;
  const problem = `${op}: "match" must be {field, path?, view?: "run", equals: [[key, scalar], ...]}`;
  if (isPlainObject(raw) && raw.view !== undefined && raw.view !== null && raw.view !== "run") {
    throw new RequestError(problem);
  }
  if (!isPlainObject(raw) || typeof raw.field !== "string" || !isScalarPairs(raw.equals)) {
    throw new RequestError(problem);
  }
  const path = raw.path ?? [];
  if (!Array.isArray(path) || path.some((part) => typeof part !== "string")) {
    throw new RequestError(problem);
  }
  const equals = raw.equals;
  const base = { field: raw.field, path: path as string[], equals };
  return raw.view === "run" ? { ...base, view: "run" } : base;
}

/** Stored JSON (object or JSON text) at `match.field`, walked down `match.path`. */
function matches(doc: Doc, match: Match): boolean {
  let value: Record<string, unknown> = decodeJsonObject(doc[match.field]);
  for (const part of match.path) value = decodeJsonObject(value[part]);
  if (match.view === "run") value = runView(value);
  return match.equals.every(
    ([key, expected]) =>
      Object.prototype.hasOwnProperty.call(value, key) && value[key] === expected,
  );
}

/**
 * A workflow snapshot as {status, threadId}. The thread is where @mastra/core 1.71 puts a
 * run's memory info (its getSnapshotMemoryInfo): the first suspended step carrying
 * `suspendPayload.__streamState` names it in `messageList.memoryInfo` (and then no other
 * place counts); otherwise `context.input.messageListState.memoryInfo`.
 */
function runView(snapshot: Record<string, unknown>): Record<string, unknown> {
  const view: Record<string, unknown> = {};
  if (snapshot.status !== undefined) view.status = snapshot.status;
  const threadId = memoryInfo(snapshot)?.threadId;
  if (threadId !== undefined) view.threadId = threadId;
  return view;
}

function memoryInfo(snapshot: Record<string, unknown>): Record<string, unknown> | undefined {
  const context = snapshot.context;
  if (!isPlainObject(context)) return undefined;
  for (const step of Object.values(context)) {
    if (!isPlainObject(step) || step.status !== "suspended") continue;
    const payload = step.suspendPayload;
    if (!isPlainObject(payload) || !payload.__streamState) continue;
    const info = dig(payload.__streamState, "messageList", "memoryInfo");
    return isPlainObject(info) ? info : undefined;
  }
  const durable = dig(context, "input", "messageListState", "memoryInfo");
  return isPlainObject(durable) ? durable : undefined;
}

function dig(value: unknown, ...path: string[]): unknown {
  for (const part of path) {
    if (!isPlainObject(value)) return undefined;
    value = value[part];
  }
  return value;
}

/**
 * scan {tableName, index, eq?, range?, order?, cursor?, numItems?, filters?,
 * match?, skip?, take?} -> {page, matched, continueCursor, isDone}.
 * Reads up to numItems rows through the index and keeps those whose stored
 * JSON matches `match` (scalar equality, decoded here because metadata may be
 * JSON text). `matched` counts every match of this batch; `page` holds
 * matches skip .. skip+take-1 of it. Callers chain cursors to count or
 * window over a whole range while only the wanted rows travel back.
 */
export async function scan(ctx: Ctx, req: Request): Promise<Response> {
  const op = "scan";
  const table = typedTable(op, req.tableName);
  const numItems = readInt(req, "numItems", MAX_SCAN, 1, MAX_SCAN);
  const skip = readInt(req, "skip", 0, 0, Number.MAX_SAFE_INTEGER);
  const take = readInt(req, "take", 0, 0, MAX_PAGE);
  const cursor = readCursor(op, req);
  const filters = readFilters(op, req.filters);
  const match = readMatch(op, req.match);
  const query = withEquality(indexQuery(ctx, op, table, req).order(readOrder(op, req)), filters);
  const batch = await query.paginate({ cursor, numItems, maximumBytesRead: READ_BUDGET });
  const hits = match ? (batch.page as Doc[]).filter((doc) => matches(doc, match)) : batch.page;
  return ok({
    page: hits.slice(skip, skip + take),
    matched: hits.length,
    continueCursor: batch.continueCursor,
    isDone: batch.isDone,
  });
}

/**
 * messageWindow {items: [{id, before?, after?}], resourceId?} -> messages:
 * each found message with up to `before` earlier and `after` later messages
 * of its thread, in (createdAt, _creationTime) order, without duplicates.
 * With resourceId, only that resource's messages count (targets included).
 * Reads about before + after + 1 rows per item (plus rows sharing the
 * target's createdAt).
 */
export async function messageWindow(ctx: Ctx, req: Request): Promise<Response> {
  const op = "messageWindow";
  const items = readArray(req, "items");
  if (items.length > MAX_WINDOW_ITEMS) {
    throw new RequestError(`${op}: at most ${MAX_WINDOW_ITEMS} items per call`);
  }
  const resourceId = req.resourceId ?? null;
  if (resourceId !== null && typeof resourceId !== "string") {
    throw new RequestError(`${op}: "resourceId" must be a string`);
  }
  const wanted = items.map((item, i) => {
    if (!isPlainObject(item) || typeof item.id !== "string") {
      throw new RequestError(`${op}: items[${i}] must be {id, before?, after?}`);
    }
    const count = (field: string) => {
      const value = item[field] ?? 0;
      if (typeof value !== "number" || !Number.isInteger(value) || value < 0 || value > MAX_PAGE) {
        throw new RequestError(`${op}: items[${i}].${field} must be an integer 0..${MAX_PAGE}`);
      }
      return value;
    };
    return { id: item.id, before: count("before"), after: count("after") };
  });
  const seen = new Map<string, Doc>();
  for (const { id, before, after } of wanted) {
    const target = await findById(ctx, MESSAGES, id);
    if (!target || (resourceId !== null && target.resourceId !== resourceId)) continue;
    seen.set(id, target);
    for (const [order, n] of [
      ["desc", before],
      ["asc", after],
    ] as const) {
      if (n === 0) continue;
      for (const doc of await neighbours(ctx, target, resourceId, order, n))
        seen.set(doc.id as string, doc);
    }
  }
  return ok([...seen.values()]);
}

/** Up to `n` messages next to `target` in its thread, walking away from it in `order`. */
async function neighbours(
  ctx: Ctx,
  target: Doc,
  resourceId: string | null,
  order: "asc" | "desc",
  n: number,
): Promise<Doc[]> {
  const eq: [string, Value][] = [["thread_id", target.thread_id as Value]];
  if (resourceId !== null) eq.push(["resourceId", resourceId]);
  const index = resourceId !== null ? "by_thread_resource_created" : "by_thread_created";
  const bounds = order === "desc" ? { lte: target.createdAt } : { gte: target.createdAt };
  const query = byIndex(ctx, MESSAGES, index, eq, "createdAt", bounds).order(order);
  const found: Doc[] = [];
  let passedTarget = false;
  // Rows sharing the target's createdAt sort by _creationTime, so walk past the target first.
  for await (const doc of query) {
    if (!passedTarget) {
      passedTarget = doc._id === target._id;
      continue;
    }
    found.push(doc as Doc);
    if (found.length >= n) break;
  }
  return found;
}

function readCursor(op: string, req: Request): string | null {
  const cursor = req.cursor ?? null;
  if (cursor !== null && typeof cursor !== "string") {
    throw new RequestError(`${op}: "cursor" must be a string or null`);
  }
  return cursor;
}

function readOrder(op: string, req: Request): "asc" | "desc" {
  const order = req.order ?? "asc";
  if (order !== "asc" && order !== "desc") {
    throw new RequestError(`${op}: "order" must be asc or desc`);
  }
  return order;
}

/** count {tableName, index?, eq?} -> number, from mastra_counters. */
export async function count(ctx: Ctx, req: Request): Promise<Response> {
  const op = "count";
  const table = typedTable(op, req.tableName);
  if (!(table in COUNTED_GROUPS)) throw new RequestError(`${op}: ${table} is not counted`);
  const eq = readFilters(op, req.eq, "eq");
  if (req.index !== undefined && req.index !== null) {
    const index = readString(req, "index");
    checkPrefix(
      op,
      index,
      indexFields(op, table, index),
      eq.map((clause) => clause.field),
    );
  }
  return ok(await readCount(ctx, table, countedGroupFor(table, eq)));
}

/**
 * rebuildCounters {tableName, batchSize?, force?} -> {state, scanned} with
 * hasMore: recount a table whose counters are stale (rows written before the
 * counters existed). Call until hasMore is false.
 */
export async function rebuildCounters(ctx: Ctx, req: Request): Promise<Response> {
  const op = "rebuildCounters";
  const table = typedTable(op, req.tableName);
  if (!(table in COUNTED_GROUPS)) throw new RequestError(`${op}: ${table} is not counted`);
  const batchSize = readInt(req, "batchSize", 200, 1, MAX_BATCH);
  const step = await rebuildStep(ctx, table, batchSize, req.force === true);
  return ok({ state: step.state, scanned: step.scanned }, { hasMore: step.hasMore });
}
