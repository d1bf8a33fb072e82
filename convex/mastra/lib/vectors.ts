// Vector records of the non-native vector store: logical table
// "mastra_vector_<indexName>" maps to mastra_vectors rows tagged `indexName`.
import type { Value } from "convex/values";
import {
  bodyOf,
  type Ctx,
  dedupe,
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
  unsupported,
} from "./common";
import {
  DEFAULT_BATCH,
  LOAD_MANY_MAX,
  MAX_BATCH,
  type Plan,
  QUERY_CAP,
  applyPlans,
  limitOf,
  maybePage,
  prepareBody,
  recordId,
} from "./typed";
import { VECTORS, byIndex, readFilters, withEquality } from "./tables";
import { vectorCount, vectorQuery } from "./vectorSearch";
import type { Writer } from "./writer";

function findVector(ctx: Ctx, indexName: string, id: string): Promise<Doc | null> {
  return byIndex(ctx, VECTORS, "by_index_id", [
    ["indexName", indexName],
    ["id", id],
  ]).unique() as Promise<Doc | null>;
}

const indexRows = (ctx: Ctx, indexName: string) =>
  byIndex(ctx, VECTORS, "by_index", [["indexName", indexName]]);

/** An upsert replaces the embedding and the metadata (absent = removed). */
async function planUpsert(
  ctx: Ctx,
  indexName: string,
  record: Record<string, unknown>,
): Promise<Plan> {
  const id = recordId(record, "vector upsert");
  const existing = await findVector(ctx, indexName, id);
  const body: Fields = { id, indexName, embedding: record.embedding as Value };
  if (record.metadata !== undefined) body.metadata = record.metadata as Value;
  return {
    table: VECTORS,
    existing,
    body: prepareBody(VECTORS, body, label("vector", id)),
  };
}

export async function vectorOp(
  ctx: Ctx,
  w: Writer,
  indexName: string,
  req: Request,
): Promise<Response> {
  switch (req.op) {
    case "insert": {
      await applyPlans(w, [await planUpsert(ctx, indexName, readObject(req, "record"))]);
      return ok();
    }

    case "batchInsert": {
      const records = req.records;
      if (!Array.isArray(records))
        throw new RequestError(`batchInsert: "records" must be an array`);
      const byId = new Map<string, Record<string, unknown>>();
      records.forEach((record, i) => {
        if (!isPlainObject(record))
          throw new RequestError(`batchInsert: records[${i}] must be an object`);
        byId.set(recordId(record, `batchInsert records[${i}]`), record);
      });
      const plans = await mapChunked([...byId.values()], (record) =>
        planUpsert(ctx, indexName, record),
      );
      await applyPlans(w, plans);
      return ok();
    }

    case "patch": {
      if (typeof req.id !== "string") throw new RequestError(`patch: "id" must be a string`);
      const patch = { ...readObject(req, "record") };
      delete patch.id;
      delete patch.indexName;
      const existing = await findVector(ctx, indexName, req.id);
      if (!existing) return ok(false);
      const body = prepareBody(
        VECTORS,
        { ...bodyOf(existing), ...(patch as Fields) },
        label("vector", req.id),
      );
      await applyPlans(w, [{ table: VECTORS, existing, body }]);
      return ok(true);
    }

    case "load": {
      const keys = readObject(req, "keys");
      if (!keys.id) return ok(null);
      return ok(await findVector(ctx, indexName, String(keys.id)));
    }

    case "loadMany": {
      const ids = dedupe(readStringArray(req, "ids"));
      if (ids.length > LOAD_MANY_MAX) {
        throw new RequestError(`loadMany supports at most ${LOAD_MANY_MAX} ids per request`);
      }
      const docs = await mapChunked(ids, (id) => findVector(ctx, indexName, id));
      return ok(docs.filter((doc) => doc !== null));
    }

    case "queryTable": {
      const filters = readFilters("queryTable", req.filters);
      const query = withEquality(indexRows(ctx, indexName), filters);
      const paged = await maybePage(query, req);
      if (paged) return paged;
      const cap = limitOf(req) ?? QUERY_CAP;
      const docs = await query.take(cap + 1);
      return ok(docs.slice(0, cap), docs.length > cap ? { hasMore: true } : {});
    }

    case "vectorQuery":
      return vectorQuery(indexRows(ctx, indexName), req);

    case "vectorCount":
      return vectorCount(indexRows(ctx, indexName), req);

    case "deleteMany": {
      const ids = dedupe(readStringArray(req, "ids"));
      const docs = await mapChunked(ids, (id) => findVector(ctx, indexName, id));
      await applyPlans(
        w,
        docs
          .filter((doc): doc is Doc => doc !== null)
          .map((doc) => ({ table: VECTORS, existing: doc, body: null })),
      );
      return ok();
    }

    case "clearTable":
    case "dropTable": {
      const batch = readInt(req, "batchSize", DEFAULT_BATCH, 1, MAX_BATCH);
      const docs = (await indexRows(ctx, indexName).take(batch + 1)) as Doc[];
      await applyPlans(
        w,
        docs.slice(0, batch).map((doc) => ({ table: VECTORS, existing: doc, body: null })),
      );
      return ok(undefined, { hasMore: docs.length > batch });
    }

    default:
      return unsupported(req);
  }
}
