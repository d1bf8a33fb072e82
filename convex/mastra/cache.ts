/**
 * Cache handler: `mastra/cache:handle` (internal mutation, admin key only).
 *
 * Speaks the cache protocol of @mastra/convex 1.5.x (ops get, set, delete,
 * listPush, listFromTo, listLength, increment, clear) with the same stored
 * encoding, plus `info` and `listPushMany`.
 *
 * Storage: one mastra_cache row per key (kind value | list | counter, or
 * "deleted" while the items of a removed list are still being deleted) and
 * one mastra_cache_list_items row per list element. Values are JSON text.
 * `expiresAt` is epoch ms or null; an expired key reads as missing and is
 * reclaimed by the call that finds it.
 *
 * Bounded work: a call touches at most 25 list items. When an op has more to
 * do it answers `hasMore: true` and the client repeats the same request
 * (a removal or reclaim continues where it stopped). listFromTo pages
 * differently, see `listFromTo` below.
 *
 * Every op accepts `now` (epoch ms) to use instead of the server clock, so
 * tests can move time.
 */
import { internalMutationGeneric } from "convex/server";
import { type Value, v } from "convex/values";
import {
  type Ctx,
  type Doc,
  type Request,
  type Response,
  RequestError,
  errorMessage,
  fail,
  ok,
  readString,
} from "./lib/common";
import { byIndex } from "./lib/tables";

const ENTRIES = "mastra_cache";
const ITEMS = "mastra_cache_list_items";
const BATCH = 25;
/** Most items a listFromTo without `maxItems` (the stock client) may return. */
const LEGACY_RANGE_MAX = 1000;

const OPS = [
  "get",
  "set",
  "delete",
  "listPush",
  "listPushMany",
  "listFromTo",
  "listLength",
  "increment",
  "clear",
  "info",
];

const INFO = {
  name: "convex-mastra",
  version: "0.1.0",
  protocol: 1,
  ops: OPS,
  limits: { listItemsPerCall: BATCH, legacyListFromToItems: LEGACY_RANGE_MAX },
};

type Kind = "value" | "list" | "counter" | "deleted";
type Entry = Doc & {
  key: string;
  keyPrefix: string;
  kind: Kind;
  value?: string;
  counter?: number;
  expiresAt: number | null;
};

const encode = (value: unknown): string => JSON.stringify(value === undefined ? null : value);
const decode = (text: string | undefined): unknown => JSON.parse(text ?? "null");

const findEntry = async (ctx: Ctx, key: string) =>
  (await byIndex(ctx, ENTRIES, "by_key", [["key", key]]).first()) as Entry | null;

const itemsOf = (ctx: Ctx, key: string) => byIndex(ctx, ITEMS, "by_key_index", [["key", key]]);

function readExpiresAt(req: Request): number | null {
  const value = req.expiresAt;
  if (value === undefined || value === null) return null;
  if (typeof value !== "number")
    throw new RequestError(`${req.op}: "expiresAt" must be a number or null`);
  return value;
}

function readIndex(req: Request, field: string): number {
  const value = req[field];
  if (typeof value !== "number" || !Number.isInteger(value)) {
    throw new RequestError(`${req.op}: "${field}" must be an integer`);
  }
  return value;
}

/**
 * Remove `key`: delete up to BATCH of its list items; the entry is marked
 * "deleted" while items remain and removed with the last batch. Returns true
 * when another call is needed.
 */
async function removeKey(ctx: Ctx, key: string, entry: Entry | null): Promise<boolean> {
  const items = (await itemsOf(ctx, key).take(BATCH)) as Doc[];
  for (const item of items) await ctx.db.delete(item._id);
  const more = items.length === BATCH;
  if (more) {
    if (entry && entry.kind !== "deleted") await ctx.db.patch(entry._id, { kind: "deleted" });
  } else if (entry) {
    await ctx.db.delete(entry._id);
  }
  return more;
}

type Live = { entry: Entry | null; hasMore: boolean };

/** The entry of `key` if it is live; expired or deleted keys are reclaimed. */
async function liveEntry(ctx: Ctx, key: string, now: number): Promise<Live> {
  const entry = await findEntry(ctx, key);
  if (!entry) return { entry: null, hasMore: false };
  if (entry.kind === "deleted" || (entry.expiresAt !== null && entry.expiresAt <= now)) {
    return { entry: null, hasMore: await removeKey(ctx, key, entry) };
  }
  return { entry, hasMore: false };
}

/** Write `fields` to the entry of `key`, creating it when `entry` is null. */
async function writeEntry(
  ctx: Ctx,
  key: string,
  entry: Entry | null,
  fields: Record<string, Value>,
) {
  if (entry) await ctx.db.patch(entry._id, fields);
  else await ctx.db.insert(ENTRIES, { key, ...fields });
}

/**
 * Append `values` to the list at `key` (creating it) and refresh its TTL.
 * Answers hasMore while an expired or deleted previous value is reclaimed.
 */
async function push(ctx: Ctx, req: Request, values: unknown[], now: number): Promise<Response> {
  const key = readString(req, "key");
  const keyPrefix = readString(req, "keyPrefix");
  const expiresAt = readExpiresAt(req);
  const { entry, hasMore } = await liveEntry(ctx, key, now);
  if (hasMore) return ok(undefined, { hasMore: true });
  if (entry && entry.kind !== "list") return fail(`${key} exists but is not an array`);
  const start = entry?.counter ?? 0;
  if (values.length === 0) return ok(start);
  await writeEntry(ctx, key, entry, {
    kind: "list",
    keyPrefix,
    counter: start + values.length,
    expiresAt,
  });
  for (let i = 0; i < values.length; i++) {
    await ctx.db.insert(ITEMS, { key, keyPrefix, index: start + i, value: encode(values[i]) });
  }
  return ok(start + values.length);
}

/**
 * listFromTo {key, from, to, maxItems?}: items from..to (inclusive; negative
 * indexes count from the end, as in Redis LRANGE).
 *
 * With `maxItems` (1..25) the range is paged: the answer holds at most
 * maxItems items and, when more remain, `hasMore: true` with `next` and `to`
 * as absolute indexes; the client continues with {from: next, to} until
 * hasMore is false, then concatenates the pages. (`hasMore` without `next`
 * means an expired key is being reclaimed: repeat the same request.)
 *
 * Without `maxItems` (the stock @mastra/convex client, which repeats the same
 * request on hasMore and would never advance) the whole range is returned in
 * one answer, or an error when it exceeds LEGACY_RANGE_MAX items.
 */
async function listFromTo(ctx: Ctx, req: Request, now: number): Promise<Response> {
  const key = readString(req, "key");
  const from = readIndex(req, "from");
  const to = readIndex(req, "to");
  const maxItems =
    req.maxItems === undefined || req.maxItems === null ? null : readIndex(req, "maxItems");
  if (maxItems !== null && (maxItems < 1 || maxItems > BATCH)) {
    throw new RequestError(`listFromTo: "maxItems" must be between 1 and ${BATCH}`);
  }
  const { entry, hasMore } = await liveEntry(ctx, key, now);
  if (hasMore) return ok([], { hasMore: true });
  if (!entry || entry.kind !== "list") return ok([]);
  const length = entry.counter ?? 0;
  const first = from < 0 ? Math.max(length + from, 0) : from;
  const last = Math.min(to < 0 ? length + to : to, length - 1);
  if (last < first || first >= length) return ok([]);
  const wanted = last - first + 1;
  if (maxItems === null && wanted > LEGACY_RANGE_MAX) {
    return fail(
      `listFromTo: ${wanted} items requested, more than ${LEGACY_RANGE_MAX} per call; ` +
        "page with maxItems",
    );
  }
  const end = maxItems === null ? last : Math.min(last, first + maxItems - 1);
  const items = (await byIndex(ctx, ITEMS, "by_key_index", [["key", key]], "index", {
    gte: first,
    lte: end,
  }).collect()) as Doc[];
  const values = items.map((item) => decode(item.value as string));
  if (end < last) return { ok: true, result: values, hasMore: true, next: end + 1, to: last };
  return ok(values);
}

/**
 * clear {keyPrefix}: remove every key stored with exactly this prefix (index
 * lookup, no scan), in bounded batches.
 */
async function clear(ctx: Ctx, keyPrefix: string): Promise<boolean> {
  let budget = BATCH;
  const entries = (await byIndex(ctx, ENTRIES, "by_key_prefix", [["keyPrefix", keyPrefix]]).take(
    BATCH + 1,
  )) as Entry[];
  for (const entry of entries.slice(0, BATCH)) {
    if (entry.kind === "list" || entry.kind === "deleted") {
      if (budget === 0) return true;
      const items = (await itemsOf(ctx, entry.key).take(budget)) as Doc[];
      for (const item of items) await ctx.db.delete(item._id);
      if (items.length === budget) {
        if (entry.kind !== "deleted") await ctx.db.patch(entry._id, { kind: "deleted" });
        return true;
      }
      budget -= items.length;
    }
    await ctx.db.delete(entry._id);
  }
  if (entries.length > BATCH) return true;
  // No entry with this prefix is left, so remaining items are orphans.
  if (budget === 0) return true;
  const orphans = (await byIndex(ctx, ITEMS, "by_key_prefix", [["keyPrefix", keyPrefix]]).take(
    budget,
  )) as Doc[];
  for (const item of orphans) await ctx.db.delete(item._id);
  return orphans.length === budget;
}

async function dispatch(ctx: Ctx, req: Request, now: number): Promise<Response> {
  switch (req.op) {
    case "info":
      return ok(INFO);

    case "get": {
      const { entry, hasMore } = await liveEntry(ctx, readString(req, "key"), now);
      if (hasMore) return ok(null, { hasMore: true });
      return ok(entry?.kind === "value" ? decode(entry.value) : null);
    }

    case "set": {
      const key = readString(req, "key");
      const keyPrefix = readString(req, "keyPrefix");
      const expiresAt = readExpiresAt(req);
      const live = await liveEntry(ctx, key, now);
      if (live.hasMore) return ok(undefined, { hasMore: true });
      let entry = live.entry;
      if (entry && entry.kind !== "value") {
        // Replacing a list or counter: remove it first (lists in batches).
        if (await removeKey(ctx, key, entry)) return ok(undefined, { hasMore: true });
        entry = null;
      }
      await writeEntry(ctx, key, entry, {
        keyPrefix,
        kind: "value",
        value: encode(req.value),
        expiresAt,
      });
      return ok();
    }

    case "listLength": {
      const key = readString(req, "key");
      const { entry, hasMore } = await liveEntry(ctx, key, now);
      if (hasMore) return ok(0, { hasMore: true });
      if (!entry) return ok(0);
      if (entry.kind !== "list") return fail(`${key} exists but is not an array`);
      return ok(entry.counter ?? 0);
    }

    case "listPush":
      return push(ctx, req, [req.value], now);

    case "listPushMany": {
      const values = req.values;
      if (!Array.isArray(values)) throw new RequestError(`listPushMany: "values" must be an array`);
      if (values.length > BATCH) {
        throw new RequestError(
          `listPushMany: at most ${BATCH} values per call (got ${values.length})`,
        );
      }
      return push(ctx, req, values, now);
    }

    case "listFromTo":
      return listFromTo(ctx, req, now);

    case "delete": {
      const key = readString(req, "key");
      return ok(undefined, { hasMore: await removeKey(ctx, key, await findEntry(ctx, key)) });
    }

    case "clear":
      return ok(undefined, { hasMore: await clear(ctx, readString(req, "keyPrefix")) });

    case "increment": {
      const key = readString(req, "key");
      const keyPrefix = readString(req, "keyPrefix");
      const expiresAt = readExpiresAt(req);
      const { entry, hasMore } = await liveEntry(ctx, key, now);
      if (hasMore) return ok(undefined, { hasMore: true });
      if (entry && entry.kind !== "counter") return fail(`${key} exists but is not a number`);
      const next = (entry?.counter ?? 0) + 1;
      await writeEntry(ctx, key, entry, { kind: "counter", keyPrefix, counter: next, expiresAt });
      return ok(next);
    }

    default:
      return fail(`Unsupported operation ${req.op}`);
  }
}

const optional = v.optional(v.any());

export const cacheArgs = {
  op: v.string(),
  key: optional,
  keyPrefix: optional,
  value: optional,
  values: optional,
  expiresAt: optional,
  from: optional,
  to: optional,
  maxItems: optional,
  now: optional,
};

/** Runs one cache request; shared by `handle` and the authenticated entry point in public.ts. */
export async function handleCache(ctx: Ctx, args: Record<string, unknown>): Promise<Response> {
  const req = args as Request;
  try {
    if (req.now !== undefined && typeof req.now !== "number") {
      throw new RequestError(`${req.op}: "now" must be epoch milliseconds`);
    }
    return await dispatch(ctx, req, typeof req.now === "number" ? req.now : Date.now());
  } catch (error) {
    // Ops validate before writing, so an error here has written nothing
    // that matters; rethrow anyway if it was not a request problem, so
    // the transaction is rolled back.
    if (error instanceof RequestError) return fail(errorMessage(error));
    throw error;
  }
}

export const handle = internalMutationGeneric({
  args: cacheArgs,
  handler: (ctx, args) => handleCache(ctx, args),
});
