// Our read ops: index pagination and transactional counts.
import type { Value } from "convex/values";
import {
  type Ctx,
  type Request,
  type Response,
  RequestError,
  isPlainObject,
  ok,
  readInt,
  readString,
} from "./common";
import { COUNTED_GROUPS, countedGroupFor, readCount, rebuildStep } from "./counters";
import { type Bounds, byIndex, indexesOf, readFilters, typedTable, withEquality } from "./tables";
import { MAX_BATCH, MAX_PAGE } from "./typed";

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

/**
 * pageByIndex {tableName, index, eq?, range?, order?, numItems, cursor?, filters?}
 * -> {page, continueCursor, isDone}. `eq` must follow the index fields in
 * order; `range` bounds the next index field. `filters` are equality checks
 * on other fields, so a page can be short (even empty) before isDone.
 */
export async function pageByIndex(ctx: Ctx, req: Request): Promise<Response> {
  const op = "pageByIndex";
  const table = typedTable(op, req.tableName);
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
  const order = req.order ?? "asc";
  if (order !== "asc" && order !== "desc")
    throw new RequestError(`${op}: "order" must be asc or desc`);
  const numItems = readInt(req, "numItems", 100, 1, MAX_PAGE);
  const cursor = req.cursor ?? null;
  if (cursor !== null && typeof cursor !== "string") {
    throw new RequestError(`${op}: "cursor" must be a string or null`);
  }
  const filters = readFilters(op, req.filters);

  const query = byIndex(
    ctx,
    table,
    index,
    eq.map((clause): [string, Value] => [clause.field, clause.value]),
    boundsField,
    bounds ?? {},
  ).order(order);
  const page = await withEquality(query, filters).paginate({ cursor, numItems });
  return ok({
    page: page.page,
    continueCursor: page.continueCursor,
    isDone: page.isDone,
    ...(page.pageStatus ? { pageStatus: page.pageStatus } : {}),
  });
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
