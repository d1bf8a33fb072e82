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
 * Bounded work: a call writes at most 25 list items (plus the row of the key
 * it works on), and reads at most BYTES of item values, so a list of 1 MiB
 * items stays inside Convex's per-transaction read limit. `clear` writes at
 * most 25 documents of any kind per call. When an op has more to do it answers
 * `hasMore: true` and the client repeats the same request (a removal or
 * reclaim continues where it stopped). listFromTo pages differently, see
 * `listFromTo` below.
 *
 * Options beyond upstream, all ignored by the stock client because it never
 * sends them:
 * - `now` (epoch ms) on every op, used instead of the server clock, so tests
 *   can move time;
 * - `json: true` on get, set, listPushMany and listFromTo: values travel as
 *   the stored JSON text, unparsed, so a client can store any JSON (object
 *   keys Convex refuses as field names included) and check sizes exactly;
 * - `strict: true` on get and listFromTo: a key of another kind is an error
 *   instead of reading as missing (get of a counter answers its number).
 */
import { internalMutationGeneric } from "convex/server";
import { type Value, v } from "convex/values";
import {
  type Ctx,
  type Doc,
  fail,
  failure,
  ok,
  readString,
  type Request,
  RequestError,
  type Response,
  unsupported,
} from "./lib/common";
import { MAX_DOCUMENT_BYTES } from "./lib/encoding";
import { byIndex, CACHE_ENTRIES, CACHE_ITEMS } from "./lib/tables";

const ENTRIES = CACHE_ENTRIES;
const ITEMS = CACHE_ITEMS;
const BATCH = 25;
/**
 * Most bytes of item values one call reads. A removed item is read twice (by
 * the query and by the delete), so this keeps even 1 MiB items well inside
 * Convex's 16 MiB read limit per transaction.
 */
const BYTES = 4 * 1024 * 1024;
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
  protocol: 2,
  ops: OPS,
  /** Ops a client may send again after a lost answer (reads may reclaim expired keys). */
  readOps: ["info", "get", "listLength", "listFromTo"],
  limits: {
    listItemsPerCall: BATCH,
    clearWritesPerCall: BATCH,
    itemBytesPerCall: BYTES,
    legacyListFromToItems: LEGACY_RANGE_MAX,
    documentBytes: MAX_DOCUMENT_BYTES,
  },
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
type Item = Doc & { key: string; keyPrefix: string; index: number; value: string };

const encode = (value: unknown): string => JSON.stringify(value === undefined ? null : value);
const decode = (text: string | undefined): unknown => JSON.parse(text ?? "null");

/** UTF-8 length of `text`, the measure Convex's limits use. */
function utf8Length(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    // A surrogate pair is 4 bytes: 2 for each half.
    bytes += code < 0x80 ? 1 : code < 0x800 || (code >= 0xd800 && code < 0xe000) ? 2 : 3;
  }
  return bytes;
}

const findEntry = async (ctx: Ctx, key: string) =>
  (await byIndex(ctx, ENTRIES, "by_key", [["key", key]]).first()) as Entry | null;

const itemsOf = (ctx: Ctx, key: string) => byIndex(ctx, ITEMS, "by_key_index", [["key", key]]);

type Taken = { items: Item[]; bytes: number; exhausted: boolean };

/**
 * Up to `max` documents of `query`, stopping early once their values reach
 * `maxBytes`. `exhausted` is true when the query had nothing more; otherwise
 * more may remain. Iterating (rather than take) reads only what is used.
 */
async function takeItems(query: AsyncIterable<unknown>, max: number, maxBytes: number) {
  const taken: Taken = { items: [], bytes: 0, exhausted: false };
  if (max <= 0 || maxBytes <= 0) return taken;
  for await (const doc of query) {
    const item = doc as Item;
    taken.items.push(item);
    taken.bytes += utf8Length(item.value);
    if (taken.items.length >= max || taken.bytes >= maxBytes) return taken;
  }
  taken.exhausted = true;
  return taken;
}

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

function readFlag(req: Request, field: string): boolean {
  const value = req[field];
  if (value === undefined || value === null) return false;
  if (typeof value !== "boolean") throw new RequestError(`${req.op}: "${field}" must be a boolean`);
  return value;
}

/** A value as stored: JSON text, either given as such (`json` mode) or encoded here. */
function storedText(req: Request, value: unknown, field: string, json: boolean): string {
  if (!json) return encode(value);
  if (typeof value !== "string") {
    throw new RequestError(`${req.op}: "${field}" must be JSON text when "json" is true`);
  }
  try {
    JSON.parse(value);
  } catch {
    // Checked here because TypeScript readers JSON.parse every stored value.
    throw new RequestError(`${req.op}: "${field}" is not valid JSON text`);
  }
  return value;
}

type Removal = { more: boolean; removed: number };

/**
 * Remove `key`: delete up to BATCH of its list items; the entry is marked
 * "deleted" while items remain (so reads answer empty) and removed with the
 * last batch.
 */
async function removeKey(ctx: Ctx, key: string, entry: Entry | null): Promise<Removal> {
  const { items, exhausted } = await takeItems(itemsOf(ctx, key), BATCH, BYTES);
  for (const item of items) await ctx.db.delete(item._id);
  if (!exhausted) {
    if (entry && entry.kind !== "deleted") await ctx.db.patch(entry._id, { kind: "deleted" });
  } else if (entry) {
    await ctx.db.delete(entry._id);
  }
  return { more: !exhausted, removed: items.length };
}

type Live = { entry: Entry | null; hasMore: boolean; removed: number };

/** The entry of `key` if it is live; expired or deleted keys are reclaimed. */
async function liveEntry(ctx: Ctx, key: string, now: number): Promise<Live> {
  const entry = await findEntry(ctx, key);
  if (!entry) return { entry: null, hasMore: false, removed: 0 };
  if (entry.kind === "deleted" || (entry.expiresAt !== null && entry.expiresAt <= now)) {
    const { more, removed } = await removeKey(ctx, key, entry);
    return { entry: null, hasMore: more, removed };
  }
  return { entry, hasMore: false, removed: 0 };
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
 * Append `texts` (stored JSON) to the list at `key` (creating it) and refresh
 * its TTL. Answers hasMore while an expired or deleted previous value is
 * reclaimed: a call that removed items does not append as well, so no call
 * writes more than BATCH items.
 */
async function push(ctx: Ctx, req: Request, texts: string[], now: number): Promise<Response> {
  const key = readString(req, "key");
  const keyPrefix = readString(req, "keyPrefix");
  const expiresAt = readExpiresAt(req);
  const { entry, hasMore, removed } = await liveEntry(ctx, key, now);
  if (hasMore || removed > 0) return ok(undefined, { hasMore: true });
  if (entry && entry.kind !== "list")
    return fail(`${key} exists but is not an array`, "TYPE_MISMATCH", { key });
  const start = entry?.counter ?? 0;
  if (texts.length === 0) return ok(start);
  // A list keeps the prefix it was created with, so its entry and all of its
  // items share one prefix and a clear of that prefix removes the whole list
  // (upstream re-tags the entry, which could leave a half list behind).
  const prefix = entry?.keyPrefix ?? keyPrefix;
  await writeEntry(ctx, key, entry, {
    kind: "list",
    keyPrefix: prefix,
    counter: start + texts.length,
    expiresAt,
  });
  for (let i = 0; i < texts.length; i++) {
    await ctx.db.insert(ITEMS, { key, keyPrefix: prefix, index: start + i, value: texts[i]! });
  }
  return ok(start + texts.length);
}

/**
 * listFromTo {key, from, to, maxItems?}: items from..to (inclusive; negative
 * indexes count from the end, as in Redis LRANGE).
 *
 * With `maxItems` (1..25) the range is paged: the answer holds at most
 * maxItems items (fewer when they reach BYTES) and, when more remain,
 * `hasMore: true` with `next` and `to` as absolute indexes; the client
 * continues with {from: next, to} until hasMore is false, then concatenates
 * the pages. (`hasMore` without `next` means an expired key is being
 * reclaimed: repeat the same request.)
 *
 * Without `maxItems` (the stock @mastra/convex client, which repeats the same
 * request on hasMore and would never advance) the whole range is returned in
 * one answer, or an error when it exceeds LEGACY_RANGE_MAX items.
 */
async function listFromTo(ctx: Ctx, req: Request, now: number): Promise<Response> {
  const key = readString(req, "key");
  const from = readIndex(req, "from");
  const to = readIndex(req, "to");
  const json = readFlag(req, "json");
  const strict = readFlag(req, "strict");
  const maxItems =
    req.maxItems === undefined || req.maxItems === null ? null : readIndex(req, "maxItems");
  if (maxItems !== null && (maxItems < 1 || maxItems > BATCH)) {
    throw new RequestError(`listFromTo: "maxItems" must be between 1 and ${BATCH}`);
  }
  const { entry, hasMore } = await liveEntry(ctx, key, now);
  if (hasMore) return ok([], { hasMore: true });
  if (entry && entry.kind !== "list" && strict)
    return fail(`${key} exists but is not an array`, "TYPE_MISMATCH", { key });
  if (!entry || entry.kind !== "list") return ok([]);
  const length = entry.counter ?? 0;
  const first = from < 0 ? Math.max(length + from, 0) : from;
  const last = Math.min(to < 0 ? length + to : to, length - 1);
  if (last < first || first >= length) return ok([]);
  const range = byIndex(ctx, ITEMS, "by_key_index", [["key", key]], "index", {
    gte: first,
    lte: last,
  });
  const out = (items: Item[]) => items.map((item) => (json ? item.value : decode(item.value)));
  if (maxItems === null) {
    const wanted = last - first + 1;
    if (wanted > LEGACY_RANGE_MAX) {
      return fail(
        `listFromTo: ${wanted} items requested, more than ${LEGACY_RANGE_MAX} per call; ` +
          "page with maxItems",
        "LIMIT",
        { items: wanted, limit: LEGACY_RANGE_MAX },
      );
    }
    return ok(out((await range.collect()) as Item[]));
  }
  const { items, exhausted } = await takeItems(range, maxItems, BYTES);
  // Continue after the last item read (not first + count), so a missing item
  // can never make a page repeat or skip others.
  const next = items.length > 0 ? items[items.length - 1]!.index + 1 : last + 1;
  if (!exhausted && next <= last) {
    return { ok: true, result: out(items), hasMore: true, next, to: last };
  }
  return ok(out(items));
}

/**
 * clear {keyPrefix}: remove every key stored with exactly this prefix (index
 * lookup, no scan), writing at most BATCH documents per call. A list that
 * does not fit is marked "deleted" first, so it reads as missing until its
 * last item is gone.
 */
async function clear(ctx: Ctx, keyPrefix: string): Promise<boolean> {
  let writes = BATCH;
  let bytes = BYTES;
  const entries = (await byIndex(ctx, ENTRIES, "by_key_prefix", [["keyPrefix", keyPrefix]]).take(
    BATCH + 1,
  )) as Entry[];
  for (const entry of entries) {
    if (writes === 0 || bytes <= 0) return true;
    if (entry.kind === "list" || entry.kind === "deleted") {
      const taken = await takeItems(itemsOf(ctx, entry.key), writes, bytes);
      bytes -= taken.bytes;
      if (taken.exhausted && taken.items.length < writes) {
        for (const item of taken.items) await ctx.db.delete(item._id);
        await ctx.db.delete(entry._id);
        writes -= taken.items.length + 1;
        continue;
      }
      let items = taken.items;
      if (entry.kind !== "deleted") {
        await ctx.db.patch(entry._id, { kind: "deleted" });
        items = items.slice(0, writes - 1);
      }
      for (const item of items) await ctx.db.delete(item._id);
      return true;
    }
    await ctx.db.delete(entry._id);
    writes -= 1;
  }
  // Every key with this prefix is gone (at most BATCH entries were read and
  // each took a write), so items still carrying the prefix are orphans.
  const orphans = await takeItems(
    byIndex(ctx, ITEMS, "by_key_prefix", [["keyPrefix", keyPrefix]]),
    writes,
    bytes,
  );
  for (const item of orphans.items) await ctx.db.delete(item._id);
  return !orphans.exhausted;
}

async function dispatch(ctx: Ctx, req: Request, now: number): Promise<Response> {
  switch (req.op) {
    case "info":
      return ok(INFO);

    case "get": {
      const key = readString(req, "key");
      const json = readFlag(req, "json");
      const strict = readFlag(req, "strict");
      const { entry, hasMore } = await liveEntry(ctx, key, now);
      if (hasMore) return ok(null, { hasMore: true });
      if (entry?.kind === "value") return ok(json ? (entry.value ?? "null") : decode(entry.value));
      if (!strict || !entry) return ok(null);
      if (entry.kind === "counter") {
        const counter = entry.counter ?? 0;
        return ok(json ? encode(counter) : counter);
      }
      return fail(`${key} exists but is a list, not a value`, "TYPE_MISMATCH", { key });
    }

    case "set": {
      const key = readString(req, "key");
      const keyPrefix = readString(req, "keyPrefix");
      const expiresAt = readExpiresAt(req);
      const text = storedText(req, req.value, "value", readFlag(req, "json"));
      const live = await liveEntry(ctx, key, now);
      if (live.hasMore) return ok(undefined, { hasMore: true });
      let entry = live.entry;
      if (entry && entry.kind !== "value") {
        // Replacing a list or counter: remove it first (lists in batches).
        if ((await removeKey(ctx, key, entry)).more) return ok(undefined, { hasMore: true });
        entry = null;
      }
      await writeEntry(ctx, key, entry, { keyPrefix, kind: "value", value: text, expiresAt });
      return ok();
    }

    case "listLength": {
      const key = readString(req, "key");
      const { entry, hasMore } = await liveEntry(ctx, key, now);
      if (hasMore) return ok(0, { hasMore: true });
      if (!entry) return ok(0);
      if (entry.kind !== "list")
        return fail(`${key} exists but is not an array`, "TYPE_MISMATCH", { key });
      return ok(entry.counter ?? 0);
    }

    case "listPush":
      return push(ctx, req, [encode(req.value)], now);

    case "listPushMany": {
      const values = req.values;
      if (!Array.isArray(values)) throw new RequestError(`listPushMany: "values" must be an array`);
      if (values.length > BATCH) {
        throw new RequestError(
          `listPushMany: at most ${BATCH} values per call (got ${values.length})`,
        );
      }
      const json = readFlag(req, "json");
      const texts = values.map((value, i) => storedText(req, value, `values[${i}]`, json));
      return push(ctx, req, texts, now);
    }

    case "listFromTo":
      return listFromTo(ctx, req, now);

    case "delete": {
      const key = readString(req, "key");
      const { more } = await removeKey(ctx, key, await findEntry(ctx, key));
      return ok(undefined, { hasMore: more });
    }

    case "clear":
      return ok(undefined, { hasMore: await clear(ctx, readString(req, "keyPrefix")) });

    case "increment": {
      const key = readString(req, "key");
      const keyPrefix = readString(req, "keyPrefix");
      const expiresAt = readExpiresAt(req);
      const { entry, hasMore } = await liveEntry(ctx, key, now);
      if (hasMore) return ok(undefined, { hasMore: true });
      if (entry && entry.kind !== "counter")
        return fail(`${key} exists but is not a number`, "TYPE_MISMATCH", { key });
      const next = (entry?.counter ?? 0) + 1;
      await writeEntry(ctx, key, entry, { kind: "counter", keyPrefix, counter: next, expiresAt });
      return ok(next);
    }

    default:
      return unsupported(req);
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
  json: optional,
  strict: optional,
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
    if (error instanceof RequestError) return failure(error);
    throw error;
  }
}

export const handle = internalMutationGeneric({
  args: cacheArgs,
  handler: (ctx, args) => handleCache(ctx, args),
});
