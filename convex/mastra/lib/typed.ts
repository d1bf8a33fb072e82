// The record operations of the @mastra/convex protocol on typed tables
// (threads, messages, resources, workflow snapshots, scorers, schedules, ...).
//
// Every op reads and validates first, then writes through the Writer, so a
// rejected request changes nothing.
import type { Value } from "convex/values";
import {
  bodyOf,
  type Ctx,
  dedupe,
  DELETE_BUDGET,
  type Doc,
  type Fields,
  isPlainObject,
  isScalarPairs,
  label,
  type Label,
  mapChunked,
  ok,
  readInt,
  readObject,
  readStringArray,
  type Request,
  RequestError,
  type Response,
  takeWithin,
  unsupported,
} from "./common";
import { withDerived } from "./derived";
import { checkDocument, decodeRecord, dropNullOptionals, encodeJson } from "./encoding";
import {
  BACKGROUND_TASKS,
  byIndex,
  DOCUMENTS,
  type Filter,
  filteredQuery,
  findById,
  readFilters,
  withEquality,
  WORKFLOW_SNAPSHOTS,
} from "./tables";
import { sizedAsStored, type Writer } from "./writer";

export const DEFAULT_BATCH = 25;
export const MAX_BATCH = 1000;
export const LOAD_MANY_MAX = 1000;
export const QUERY_CAP = 10_000;
export const MAX_PAGE = 1000;
/**
 * What one call that writes a batch of rows (saveMessages, batchInsert) may carry: items, and
 * bytes of arguments. Well inside Convex's per-transaction limits (16,000 documents and 16 MiB
 * written, 16 MiB of arguments), counting the thread, counter and rank rows each row touches.
 */
export const BATCH_ITEMS = 1000;
export const BATCH_BYTES = 8 * 1024 * 1024;

// Free-form JSON columns that are stored as text when Convex would reject them.
const FLEXIBLE_COLUMNS: Record<string, string[]> = {
  mastra_threads: ["metadata"],
  mastra_resources: ["metadata"],
  mastra_workflow_snapshots: ["snapshot"],
};

/** Encode flexible columns, derive columns, drop nulls for non-null optionals, validate. */
export function prepareBody(table: string, body: Fields, label: Label): Fields {
  const out: Fields = { ...body };
  delete out._id;
  delete out._creationTime;
  for (const column of FLEXIBLE_COLUMNS[table] ?? []) {
    if (out[column] !== undefined && out[column] !== null) out[column] = encodeJson(out[column]);
  }
  const cleaned = withDerived(table, dropNullOptionals(table, out));
  checkDocument(table, sizedAsStored(table, cleaned), label);
  return cleaned;
}

export function recordId(record: Record<string, unknown>, where: string): string {
  const id = record.id;
  if (id === undefined || id === null || id === "") {
    throw new RequestError(`${where}: record is missing an id`);
  }
  if (typeof id !== "string") throw new RequestError(`${where}: record id must be a string`);
  return id;
}

/** `expect` of a conditional patch: [[field, scalar], ...] (pairs: fields may be any name). */
function readExpect(req: Request): [string, Value][] {
  const raw = req.expect;
  if (raw === undefined || raw === null) return [];
  if (!isScalarPairs(raw)) {
    throw new RequestError(`${req.op}: "expect" must be [[field, scalar], ...]`);
  }
  return raw;
}

/** A planned write: insert (no existing), replace, or delete (no body). */
export type Plan = { table: string; existing: Doc | null; body: Fields | null };

export async function applyPlans(w: Writer, plans: Plan[]): Promise<void> {
  for (const plan of plans) {
    if (plan.body === null) {
      if (plan.existing) await w.remove(plan.table, plan.existing);
    } else if (plan.existing) {
      await w.replace(plan.table, plan.existing, plan.body);
    } else {
      await w.insert(plan.table, plan.body);
    }
  }
}

/** Upsert by `id`: fields of `record` override those of an existing row. */
async function planUpsert(
  ctx: Ctx,
  table: string,
  record: Record<string, unknown>,
  where: string,
): Promise<Plan> {
  const id = recordId(record, where);
  const existing = await findById(ctx, table, id);
  const merged = { ...(existing ? bodyOf(existing) : {}), ...(record as Fields), id };
  return { table, existing, body: prepareBody(table, merged, label("record", id)) };
}

// ---- background tasks: rows written by old versions live in mastra_documents

const TASK_FIELD_PAIRS: [string, string][] = [
  ["tool_call_id", "toolCallId"],
  ["tool_name", "toolName"],
  ["agent_id", "agentId"],
  ["run_id", "runId"],
  ["thread_id", "threadId"],
  ["resource_id", "resourceId"],
  ["suspend_payload", "suspendPayload"],
  ["retry_count", "retryCount"],
  ["max_retries", "maxRetries"],
  ["timeout_ms", "timeoutMs"],
];
const TASK_ALIAS = new Map<string, string>([
  ...TASK_FIELD_PAIRS,
  ...TASK_FIELD_PAIRS.map(([a, b]): [string, string] => [b, a]),
]);

function legacyTaskMatches(record: Record<string, unknown>, filters: Filter[]): boolean {
  return filters.every((filter) => {
    if (record[filter.field] === filter.value) return true;
    const alias = TASK_ALIAS.get(filter.field);
    return alias !== undefined && record[alias] === filter.value;
  });
}

/** Legacy records store either spelling of a field; a patch replaces both. */
export function mergeLegacyTask(
  record: Record<string, unknown>,
  patch: Record<string, unknown>,
): Record<string, unknown> {
  const merged = { ...record };
  for (const [field, value] of Object.entries(patch)) {
    const alias = TASK_ALIAS.get(field);
    if (alias) delete merged[alias];
    merged[field] = value;
  }
  return merged;
}

async function legacyTaskDoc(ctx: Ctx, id: string): Promise<Doc | null> {
  return (await byIndex(ctx, DOCUMENTS, "by_table_primary", [
    ["table", BACKGROUND_TASKS],
    ["primaryKey", id],
  ]).unique()) as Doc | null;
}

// ---- ops ----------------------------------------------------------------

export async function typedOp(ctx: Ctx, w: Writer, table: string, req: Request): Promise<Response> {
  const isTasks = table === BACKGROUND_TASKS && req.tableName === BACKGROUND_TASKS;
  switch (req.op) {
    case "insert": {
      const plan = await planUpsert(ctx, table, readObject(req, "record"), "insert");
      await applyPlans(w, [plan]);
      return ok();
    }

    case "batchInsert": {
      const records = req.records;
      if (!Array.isArray(records))
        throw new RequestError(`batchInsert: "records" must be an array`);
      // Repeated ids collapse into one row; later fields win.
      const byId = new Map<string, Record<string, unknown>>();
      records.forEach((record, i) => {
        if (!isPlainObject(record))
          throw new RequestError(`batchInsert: records[${i}] must be an object`);
        const id = recordId(record, `batchInsert records[${i}]`);
        byId.set(id, { ...(byId.get(id) ?? {}), ...record });
      });
      const plans = await mapChunked([...byId.values()], (record) =>
        planUpsert(ctx, table, record, "batchInsert"),
      );
      await applyPlans(w, plans);
      return ok();
    }

    case "patch": {
      // With `expect` ([[field, value], ...], ours): patch only a row whose fields hold those
      // values, checked in this transaction (a claim: status pending -> running), else false.
      const id = req.id;
      if (typeof id !== "string") throw new RequestError(`patch: "id" must be a string`);
      const patch = { ...readObject(req, "record") };
      delete patch.id;
      const expect = readExpect(req);
      const holds = (row: Record<string, unknown>) =>
        expect.every(([field, value]) => row[field] === value);
      const existing = await findById(ctx, table, id);
      if (!existing) {
        const legacy = isTasks ? await legacyTaskDoc(ctx, id) : null;
        if (!legacy) return ok(false);
        const stored = decodeRecord(legacy.record) ?? {};
        if (!holds(stored as Record<string, unknown>)) return ok(false);
        const record = mergeLegacyTask(stored, patch);
        await applyPlans(w, [
          {
            table: DOCUMENTS,
            existing: legacy,
            body: { ...bodyOf(legacy), record: encodeJson(record) },
          },
        ]);
        return ok(true);
      }
      if (!holds(existing)) return ok(false);
      const body = prepareBody(
        table,
        { ...bodyOf(existing), ...(patch as Fields) },
        label("record", id),
      );
      const plans: Plan[] = [{ table, existing, body }];
      // The typed row supersedes a legacy copy once it is written again.
      const legacy = isTasks ? await legacyTaskDoc(ctx, id) : null;
      if (legacy) plans.push({ table: DOCUMENTS, existing: legacy, body: null });
      await applyPlans(w, plans);
      return ok(true);
    }

    case "load": {
      const keys = readObject(req, "keys");
      if (keys.id) {
        const doc = await findById(ctx, table, String(keys.id));
        if (!doc && isTasks) {
          const legacy = await legacyTaskDoc(ctx, String(keys.id));
          return ok(legacy ? legacy.record : null);
        }
        return ok(doc);
      }
      if (
        table === WORKFLOW_SNAPSHOTS &&
        typeof keys.workflow_name === "string" &&
        typeof keys.run_id === "string"
      ) {
        const doc = await byIndex(ctx, table, "by_workflow_run", [
          ["workflow_name", keys.workflow_name],
          ["run_id", keys.run_id],
        ]).unique();
        return ok(doc);
      }
      const filters = Object.entries(keys).map(([field, value]) => ({
        field,
        value: value as Value,
      }));
      return ok(await filteredQuery(ctx, table, filters).first());
    }

    case "loadMany": {
      const ids = dedupe(readStringArray(req, "ids"));
      if (ids.length > LOAD_MANY_MAX) {
        throw new RequestError(`loadMany supports at most ${LOAD_MANY_MAX} ids per request`);
      }
      const docs = await mapChunked(ids, (id) => findById(ctx, table, id));
      if (!isTasks) return ok(docs.filter((doc) => doc !== null));
      const rows = await mapChunked(
        ids.map((id, i) => [id, docs[i]] as const),
        async ([id, doc]) => {
          if (doc) return doc as unknown;
          const legacy = await legacyTaskDoc(ctx, id);
          return legacy ? legacy.record : null;
        },
      );
      return ok(rows.filter((row) => row !== null));
    }

    case "queryTable":
      return queryTyped(ctx, table, req, isTasks);

    case "deleteMany": {
      const ids = dedupe(readStringArray(req, "ids"));
      const docs = await mapChunked(ids, (id) => findById(ctx, table, id));
      const plans: Plan[] = docs
        .filter((doc): doc is Doc => doc !== null)
        .map((doc) => ({ table, existing: doc, body: null }));
      if (isTasks) {
        for (const legacy of await mapChunked(ids, (id) => legacyTaskDoc(ctx, id))) {
          if (legacy) plans.push({ table: DOCUMENTS, existing: legacy, body: null });
        }
      }
      await applyPlans(w, plans);
      return ok();
    }

    case "clearTable":
    case "dropTable": {
      const batch = readInt(req, "batchSize", DEFAULT_BATCH, 1, MAX_BATCH);
      const { docs, next } = await takeWithin(ctx.db.query(table), batch, DELETE_BUDGET);
      let hasMore = next !== null;
      const plans: Plan[] = docs.map((doc) => ({ table, existing: doc, body: null }));
      if (isTasks && !hasMore && plans.length < batch) {
        const room = batch - plans.length;
        const legacy = (await ctx.db
          .query(DOCUMENTS)
          .withIndex("by_table", (q) => q.eq("table", BACKGROUND_TASKS))
          .take(room + 1)) as Doc[];
        hasMore = legacy.length > room;
        for (const doc of legacy.slice(0, room))
          plans.push({ table: DOCUMENTS, existing: doc, body: null });
      }
      await applyPlans(w, plans);
      return ok(undefined, { hasMore });
    }

    default:
      return unsupported(req);
  }
}

/**
 * queryTable: equality filters, using the best index. Without `pageSize`, at
 * most `limit` rows (or QUERY_CAP) are returned and `hasMore: true` says that
 * more rows matched. With `pageSize` (and `cursor`), one page is returned with
 * `hasMore` and `continuationCursor`.
 */
export async function queryTyped(
  ctx: Ctx,
  table: string,
  req: Request,
  isTasks: boolean,
): Promise<Response> {
  const filters = readFilters("queryTable", req.filters);
  const hinted = hintedQuery(ctx, table, req.indexHint);
  const query = hinted ? withEquality(hinted, filters) : filteredQuery(ctx, table, filters);
  const paged = await maybePage(query, req);
  if (paged) return paged;

  const cap = limitOf(req) ?? QUERY_CAP;
  const docs = (await query.take(cap + 1)) as unknown[];
  let hasMore = docs.length > cap;
  let rows = docs.slice(0, cap);
  if (isTasks && rows.length < cap) {
    const seen = new Set(rows.map((row) => (row as Fields).id));
    const room = cap - rows.length;
    const legacy = (await ctx.db
      .query(DOCUMENTS)
      .withIndex("by_table", (q) => q.eq("table", BACKGROUND_TASKS))
      .take(QUERY_CAP + 1)) as Doc[];
    if (legacy.length > QUERY_CAP) hasMore = true;
    const extra: unknown[] = [];
    for (const doc of legacy.slice(0, QUERY_CAP)) {
      const record = decodeRecord(doc.record);
      if (!record || !legacyTaskMatches(record, filters)) continue;
      const id = record.id === undefined ? undefined : String(record.id);
      if (id !== undefined) {
        if (seen.has(id) || (await findById(ctx, table, id))) continue;
        seen.add(id);
      }
      extra.push(doc.record);
    }
    if (extra.length > room) hasMore = true;
    rows = rows.concat(extra.slice(0, room));
  }
  return ok(rows, hasMore ? { hasMore: true } : {});
}

/** `limit` as upstream reads it: a positive number limits, anything else does not. */
export function limitOf(req: Request): number | null {
  const limit = req.limit;
  if (typeof limit !== "number" || !(limit > 0)) return null;
  return Math.min(Math.floor(limit), QUERY_CAP);
}

type PageableQuery = {
  paginate(opts: { cursor: string | null; numItems: number }): Promise<{
    page: unknown[];
    isDone: boolean;
    continueCursor: string;
  }>;
};

/** One page when the request has `pageSize`, else null. */
export async function maybePage(query: PageableQuery, req: Request): Promise<Response | null> {
  if (req.pageSize === undefined || req.pageSize === null) {
    if (req.cursor !== undefined && req.cursor !== null) {
      throw new RequestError("queryTable cursor requires pageSize");
    }
    return null;
  }
  const pageSize = readInt(req, "pageSize", 0, 1, MAX_PAGE);
  if (req.limit !== undefined && req.limit !== null) {
    throw new RequestError("queryTable limit cannot be combined with pageSize");
  }
  const cursor = req.cursor ?? null;
  if (cursor !== null && typeof cursor !== "string") {
    throw new RequestError("queryTable cursor must be a string or null");
  }
  const page = await query.paginate({ cursor, numItems: pageSize });
  return ok(page.page, { hasMore: !page.isDone, continuationCursor: page.continueCursor });
}

function hintedQuery(ctx: Ctx, table: string, hint: unknown) {
  if (!isPlainObject(hint) || table !== WORKFLOW_SNAPSHOTS) return null;
  if (hint.index === "by_workflow" && typeof hint.workflowName === "string") {
    const name = hint.workflowName;
    return ctx.db.query(table).withIndex("by_workflow", (q) => q.eq("workflow_name", name));
  }
  if (
    hint.index === "by_workflow_run" &&
    typeof hint.workflowName === "string" &&
    typeof hint.runId === "string"
  ) {
    const [name, runId] = [hint.workflowName, hint.runId];
    return byIndex(ctx, table, "by_workflow_run", [
      ["workflow_name", name],
      ["run_id", runId],
    ]);
  }
  return null;
}
