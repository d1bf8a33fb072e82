// Logical tables without a typed Convex table are stored in mastra_documents
// as {table, primaryKey, record}. `record` is kept verbatim when Convex
// accepts it and as JSON text otherwise, and is returned as stored: Convex
// cannot return keys like "$schema" either, so clients parse text records.
import {
  type Ctx,
  dedupe,
  DELETE_BUDGET,
  type Doc,
  type Fields,
  isPlainObject,
  label,
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
import { checkDocument, decodeRecord, encodeJson } from "./encoding";
import {
  DEFAULT_BATCH,
  LOAD_MANY_MAX,
  MAX_BATCH,
  type Plan,
  QUERY_CAP,
  applyPlans,
  limitOf,
  maybePage,
} from "./typed";
import { DOCUMENTS, type Filter, byIndex, readFilters } from "./tables";
import type { Writer } from "./writer";

function findDoc(ctx: Ctx, table: string, id: string): Promise<Doc | null> {
  return byIndex(ctx, DOCUMENTS, "by_table_primary", [
    ["table", table],
    ["primaryKey", id],
  ]).unique() as Promise<Doc | null>;
}

function tableRows(ctx: Ctx, table: string) {
  return byIndex(ctx, DOCUMENTS, "by_table", [["table", table]]);
}

/**
 * A record argument: an object, or JSON text of one (clients send text when
 * the record has keys Convex cannot carry, such as "$schema").
 */
function readRecordArg(raw: unknown, where: string): Record<string, unknown> {
  const record = isPlainObject(raw) ? raw : typeof raw === "string" ? decodeRecord(raw) : null;
  if (!record) throw new RequestError(`${where}: record must be an object or JSON text of one`);
  return record;
}

function primaryKeyOf(record: Record<string, unknown>, where: string): string {
  const id = record.id;
  if (id === undefined || id === null || id === "") {
    throw new RequestError(`${where}: record is missing an id`);
  }
  return String(id);
}

function planPut(table: string, existing: Doc | null, primaryKey: string, record: unknown): Plan {
  const body: Fields = { table, primaryKey, record: encodeJson(record) };
  checkDocument(DOCUMENTS, body, label("record", primaryKey));
  return { table: DOCUMENTS, existing, body };
}

const matches = (record: Record<string, unknown> | null, filters: Filter[]) =>
  record !== null && filters.every((filter) => record[filter.field] === filter.value);

export async function documentsOp(
  ctx: Ctx,
  w: Writer,
  table: string,
  req: Request,
): Promise<Response> {
  switch (req.op) {
    case "insert": {
      const record = readRecordArg(req.record, "insert");
      const key = primaryKeyOf(record, "insert");
      await applyPlans(w, [planPut(table, await findDoc(ctx, table, key), key, record)]);
      return ok();
    }

    case "batchInsert": {
      const records = req.records;
      if (!Array.isArray(records))
        throw new RequestError(`batchInsert: "records" must be an array`);
      // Repeated ids: the last record wins (records are whole values here).
      const byKey = new Map<string, Record<string, unknown>>();
      records.forEach((raw, i) => {
        const record = readRecordArg(raw, `batchInsert records[${i}]`);
        byKey.set(primaryKeyOf(record, `batchInsert records[${i}]`), record);
      });
      const plans = await mapChunked([...byKey], async ([key, record]) =>
        planPut(table, await findDoc(ctx, table, key), key, record),
      );
      await applyPlans(w, plans);
      return ok();
    }

    case "patch": {
      if (req.id === undefined || req.id === null)
        throw new RequestError(`patch: "id" is required`);
      const key = String(req.id);
      const patch = { ...readRecordArg(req.record, "patch") };
      delete patch.id;
      const existing = await findDoc(ctx, table, key);
      if (!existing) return ok(false);
      const merged = { ...(decodeRecord(existing.record) ?? {}), ...patch };
      await applyPlans(w, [planPut(table, existing, key, merged)]);
      return ok(true);
    }

    case "load": {
      const keys = readObject(req, "keys");
      if (keys.id) {
        const doc = await findDoc(ctx, table, String(keys.id));
        return ok(doc ? doc.record : null);
      }
      // No index on record fields: scan this table's rows until one matches.
      // Convex's read limits stop an oversized scan with an error.
      const filters = Object.entries(keys).map(([field, value]) => ({ field, value })) as Filter[];
      for await (const doc of tableRows(ctx, table)) {
        if (matches(decodeRecord((doc as Doc).record), filters)) return ok((doc as Doc).record);
      }
      return ok(null);
    }

    case "loadMany": {
      const ids = dedupe(readStringArray(req, "ids"));
      if (ids.length > LOAD_MANY_MAX) {
        throw new RequestError(`loadMany supports at most ${LOAD_MANY_MAX} ids per request`);
      }
      const docs = await mapChunked(ids, (id) => findDoc(ctx, table, id));
      return ok(docs.filter((doc) => doc !== null).map((doc) => doc!.record));
    }

    case "queryTable": {
      const filters = readFilters("queryTable", req.filters);
      const select = (docs: unknown[]) =>
        docs
          .map((doc) => (doc as Doc).record)
          .filter((record) => matches(decodeRecord(record), filters));
      const paged = await maybePage(tableRows(ctx, table), req);
      if (paged) {
        // Filters apply to the decoded records, so a page may come back short.
        return paged.ok ? { ...paged, result: select(paged.result as unknown[]) } : paged;
      }
      const cap = limitOf(req) ?? QUERY_CAP;
      const rows: unknown[] = [];
      let hasMore = false;
      for await (const doc of tableRows(ctx, table)) {
        if (!matches(decodeRecord((doc as Doc).record), filters)) continue;
        if (rows.length === cap) {
          hasMore = true;
          break;
        }
        rows.push((doc as Doc).record);
      }
      return ok(rows, hasMore ? { hasMore: true } : {});
    }

    case "deleteMany": {
      const ids = dedupe(readStringArray(req, "ids").map(String));
      const docs = await mapChunked(ids, (id) => findDoc(ctx, table, id));
      await applyPlans(
        w,
        docs
          .filter((doc): doc is Doc => doc !== null)
          .map((doc) => ({ table: DOCUMENTS, existing: doc, body: null })),
      );
      return ok();
    }

    case "clearTable":
    case "dropTable": {
      const batch = readInt(req, "batchSize", DEFAULT_BATCH, 1, MAX_BATCH);
      const { docs, next } = await takeWithin(tableRows(ctx, table), batch, DELETE_BUDGET);
      await applyPlans(
        w,
        docs.map((doc) => ({ table: DOCUMENTS, existing: doc, body: null })),
      );
      return ok(undefined, { hasMore: next !== null });
    }

    default:
      return unsupported(req);
  }
}
