// Routing of logical Mastra table names to Convex tables, and index lookup.
import type { Value } from "convex/values";
import { mastraTables } from "../tables";
import { type Doc, type ReadCtx, RequestError, isPlainObject } from "./common";

// Every Convex table name, declared once here; typed so that a name the schema lacks fails
// to compile.
type TableName = keyof typeof mastraTables & string;
export const THREADS: TableName = "mastra_threads";
export const MESSAGES: TableName = "mastra_messages";
export const RESOURCES: TableName = "mastra_resources";
export const WORKFLOW_SNAPSHOTS: TableName = "mastra_workflow_snapshots";
export const SCORERS: TableName = "mastra_scorers";
export const SCHEDULES: TableName = "mastra_schedules";
export const SCHEDULE_TRIGGERS: TableName = "mastra_schedule_triggers";
export const OBSERVATIONAL_MEMORY: TableName = "mastra_observational_memory";
export const DOCUMENTS: TableName = "mastra_documents";
export const VECTORS: TableName = "mastra_vectors";
export const VECTOR_INDEXES: TableName = "mastra_vector_indexes";
export const BACKGROUND_TASKS: TableName = "mastra_background_tasks";
export const CACHE_ENTRIES: TableName = "mastra_cache";
export const CACHE_ITEMS: TableName = "mastra_cache_list_items";
export const COUNTERS: TableName = "mastra_counters";
export const RANKS: TableName = "mastra_ranks";
export const VECTOR_TABLE_PREFIX = "mastra_vector_";

// Logical name (as used by @mastra/core) -> typed Convex table.
const TYPED_TABLES: Record<string, TableName> = {
  mastra_threads: THREADS,
  mastra_messages: MESSAGES,
  mastra_resources: RESOURCES,
  mastra_workflow_snapshot: WORKFLOW_SNAPSHOTS,
  mastra_scorers: SCORERS,
  mastra_schedules: SCHEDULES,
  mastra_schedule_triggers: SCHEDULE_TRIGGERS,
  mastra_channel_installations: "mastra_channel_installations",
  mastra_channel_config: "mastra_channel_config",
  mastra_background_tasks: BACKGROUND_TASKS,
  mastra_observational_memory: OBSERVATIONAL_MEMORY,
  mastra_vector_indexes: VECTOR_INDEXES,
};

/** The name clients send for a typed Convex table (the first logical name routed to it). */
export function logicalName(table: string): string {
  return Object.keys(TYPED_TABLES).find((name) => TYPED_TABLES[name] === table) ?? table;
}

export type Route =
  | { kind: "typed"; table: string }
  | { kind: "vector"; indexName: string }
  | { kind: "generic"; logical: string };

/**
 * The typed table of a logical name. Own keys only: a plain lookup also finds the object's
 * prototype, so "constructor", "toString" or "__proto__" routed to a "table" that is a function.
 */
function typedFor(tableName: string): string | undefined {
  return Object.prototype.hasOwnProperty.call(TYPED_TABLES, tableName)
    ? TYPED_TABLES[tableName]
    : undefined;
}

/** Where a logical table lives; unknown names go to mastra_documents. */
export function route(tableName: string): Route {
  const typed = typedFor(tableName);
  if (typed) return { kind: "typed", table: typed };
  if (tableName.startsWith(VECTOR_TABLE_PREFIX)) {
    return { kind: "vector", indexName: tableName.slice(VECTOR_TABLE_PREFIX.length) };
  }
  return { kind: "generic", logical: tableName };
}

/**
 * The typed table for our own ops, which accept a logical name
 * ("mastra_workflow_snapshot") or the Convex name ("mastra_workflow_snapshots").
 */
export function typedTable(op: string, tableName: unknown): string {
  if (typeof tableName !== "string") throw new RequestError(`${op}: "tableName" must be a string`);
  const typed = typedFor(tableName);
  if (typed) return typed;
  if ((Object.values(TYPED_TABLES) as string[]).includes(tableName)) return tableName;
  throw new RequestError(`${op}: ${tableName} is not a typed convex-mastra table`);
}

// Index name -> fields, read from the table definitions so they cannot drift.
const INDEXES: Record<string, Record<string, string[]>> = {};
for (const [table, definition] of Object.entries(mastraTables)) {
  const indexes: Record<string, string[]> = {};
  for (const index of definition[" indexes"]()) indexes[index.indexDescriptor] = index.fields;
  INDEXES[table] = indexes;
}

export function indexesOf(table: string): Record<string, string[]> {
  return INDEXES[table] ?? {};
}

export type Filter = { field: string; value: Value };

export function readFilters(op: string, raw: unknown, name = "filters"): Filter[] {
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw)) throw new RequestError(`${op}: "${name}" must be an array`);
  return raw.map((item, i) => {
    if (!isPlainObject(item) || typeof item.field !== "string" || !("value" in item)) {
      throw new RequestError(`${op}: ${name}[${i}] must be {field: string, value}`);
    }
    return { field: item.field, value: item.value as Value };
  });
}

/**
 * The index whose leading fields are covered by the most equality filters
 * (declaration order breaks ties, so the original @mastra/convex indexes win).
 */
export function bestIndex(table: string, filters: Filter[]): { name: string; eq: Filter[] } | null {
  const byField = new Map(filters.map((filter) => [filter.field, filter]));
  let best: { name: string; eq: Filter[] } | null = null;
  for (const [name, fields] of Object.entries(indexesOf(table))) {
    const eq: Filter[] = [];
    for (const field of fields) {
      const filter = byField.get(field);
      if (!filter) break;
      eq.push(filter);
    }
    if (eq.length > 0 && (!best || eq.length > best.eq.length)) best = { name, eq };
  }
  return best;
}

/**
 * A query on `table` using the best index for `filters`, with the remaining
 * filters applied as equality predicates.
 */
export function filteredQuery(ctx: ReadCtx, table: string, filters: Filter[]) {
  const index = bestIndex(table, filters);
  const base = index
    ? byIndex(
        ctx,
        table,
        index.name,
        index.eq.map((clause) => [clause.field, clause.value]),
      )
    : ctx.db.query(table).fullTableScan();
  const indexed = new Set(index?.eq.map((clause) => clause.field) ?? []);
  return withEquality(
    base,
    filters.filter((filter) => !indexed.has(filter.field)),
  );
}

type FilterableQuery<Q> = {
  filter(
    predicate: (q: {
      eq(a: unknown, b: unknown): unknown;
      and(...terms: unknown[]): unknown;
      field(name: string): unknown;
    }) => unknown,
  ): Q;
};

/** Apply equality predicates (evaluated by Convex before take/paginate). */
export function withEquality<Q extends FilterableQuery<Q>>(query: Q, filters: Filter[]): Q {
  if (filters.length === 0) return query;
  return query.filter((q) => {
    const terms = filters.map((filter) => q.eq(q.field(filter.field), filter.value));
    return terms.length === 1 ? terms[0] : q.and(...terms);
  });
}

/** Bounds on the index field that follows the equality prefix. */
export type Bounds = { gt?: Value; gte?: Value; lt?: Value; lte?: Value };

type RangeBuilder = {
  eq(field: string, value: Value): RangeBuilder;
  gt(field: string, value: Value): RangeBuilder;
  gte(field: string, value: Value): RangeBuilder;
  lt(field: string, value: Value): RangeBuilder;
  lte(field: string, value: Value): RangeBuilder;
};

/**
 * `table` read through `index`: equality on the leading fields (in index
 * order), then optional bounds on `boundsField`. The generic data model
 * cannot type multi-field ranges, hence the local builder type.
 */
export function byIndex(
  ctx: ReadCtx,
  table: string,
  index: string,
  eq: [string, Value][],
  boundsField?: string,
  bounds: Bounds = {},
) {
  return ctx.db.query(table).withIndex(index, (q) => {
    let range = q as unknown as RangeBuilder;
    for (const [field, value] of eq) range = range.eq(field, value);
    if (boundsField !== undefined) {
      if (bounds.gt !== undefined) range = range.gt(boundsField, bounds.gt);
      else if (bounds.gte !== undefined) range = range.gte(boundsField, bounds.gte);
      if (bounds.lt !== undefined) range = range.lt(boundsField, bounds.lt);
      else if (bounds.lte !== undefined) range = range.lte(boundsField, bounds.lte);
    }
    return range as never;
  });
}

export async function findById(ctx: ReadCtx, table: string, id: string): Promise<Doc | null> {
  return (await ctx.db
    .query(table)
    .withIndex("by_record_id", (q) => q.eq("id", id))
    .unique()) as Doc | null;
}
