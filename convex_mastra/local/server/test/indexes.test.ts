// Index range reads served by the sorted indexes (src/indexes.ts), checked against a plain
// scan-and-sort of a model of the same documents: random inserts, patches, replaces and
// deletes, then random ranges on every index, both orders, `take`, `first`, a filter with a
// limit, and pagination with cursors to the end. Reads run both inside the writing
// transaction (its pending writes merged in) and after it commits; the model never asks the
// engine how to order anything.
import assert from "node:assert/strict";
import { join } from "node:path";
import { before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { defineSchema, defineTable } from "convex/server";
import { compareValues, convexToJson, v, type Value } from "convex/values";
import { loadConvexTest, type CommittedWrite } from "../src/internals.ts";
import { validateDocument } from "../src/limits.ts";
import { ReadSet } from "../src/reads.ts";
import { registerHooks } from "../src/register.ts";

const SERVER_DIR = fileURLToPath(new URL("..", import.meta.url));
const FUNCTIONS = join(SERVER_DIR, "test", "fixtures", "functions");

const schema = defineSchema({
  items: defineTable({
    a: v.optional(v.union(v.string(), v.number(), v.null())),
    b: v.optional(v.number()),
    n: v.optional(v.object({ x: v.number() })),
    tag: v.string(),
  })
    .index("by_a", ["a"])
    .index("by_a_b", ["a", "b"])
    .index("by_nested", ["n.x"])
    .index("by_tag_b", ["tag", "b"]),
  other: defineTable({ tag: v.string() }).index("by_tag", ["tag"]),
});
/** Each index's full order, as Convex defines it. */
const INDEXES: Record<string, string[]> = {
  by_creation_time: ["_creationTime", "_id"],
  by_id: ["_id"],
  by_a: ["a", "_creationTime", "_id"],
  by_a_b: ["a", "b", "_creationTime", "_id"],
  by_nested: ["n.x", "_creationTime", "_id"],
  by_tag_b: ["tag", "b", "_creationTime", "_id"],
};

type Doc = Record<string, Value | undefined>;
type ConvexTest = Awaited<ReturnType<typeof loadConvexTest>>;
// The test drives the database through convex-test's `run` context.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Db = any;

let convexTest: ConvexTest;
/** Where reads are recorded while set (the read-set test). */
let recording: ReadSet | null = null;
let lastCommit: CommittedWrite[] = [];

before(async () => {
  registerHooks(FUNCTIONS);
  convexTest = await loadConvexTest({
    onCommit: (_ts, writes) => (lastCommit = writes),
    validateWrite: validateDocument,
    onTransactionEnd: () => {},
    currentReads: () => recording,
  });
});

/** A small deterministic generator (mulberry32), so a failure replays from its seed. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const A_VALUES: (Value | undefined)[] = [undefined, null, -1, 0, 2.5, 7, "", "a", "ab", "b", "é", "z"];
const B_VALUES = [0, 1, 2, 3, 5, 8];
const TAGS = ["red", "green", "blue"];

function field(doc: Doc, path: string): Value | undefined {
  let value: unknown = doc;
  for (const part of path.split(".")) {
    value = value !== null && typeof value === "object" && !Array.isArray(value) ? (value as Doc)[part] : undefined;
  }
  return value as Value | undefined;
}

interface Range {
  eq: (Value | undefined)[];
  lower?: { op: "gt" | "gte"; value: Value | undefined };
  upper?: { op: "lt" | "lte"; value: Value | undefined };
}

function inRange(doc: Doc, fields: string[], r: Range): boolean {
  for (let i = 0; i < r.eq.length; i++) if (compareValues(field(doc, fields[i]!), r.eq[i]) !== 0) return false;
  const next = field(doc, fields[r.eq.length]!);
  if (r.lower && compareValues(next, r.lower.value) < (r.lower.op === "gt" ? 1 : 0)) return false;
  if (r.upper && compareValues(next, r.upper.value) > (r.upper.op === "lt" ? -1 : 0)) return false;
  return true;
}

/** The model's answer: every document in range, sorted by the index, then creation time, then id. */
function expected(model: Map<string, Doc>, index: string, r: Range, order: "asc" | "desc", tag?: string): Doc[] {
  const fields = INDEXES[index]!;
  const docs = [...model.values()].filter((d) => inRange(d, fields, r) && (tag === undefined || d["tag"] === tag));
  docs.sort((x, y) => {
    for (const f of fields) {
      const c = compareValues(field(x, f), field(y, f));
      if (c !== 0) return order === "asc" ? c : -c;
    }
    return 0;
  });
  return docs;
}

function pick<X>(next: () => number, xs: readonly X[]): X {
  return xs[Math.floor(next() * xs.length)]!;
}

function valuesFor(model: Map<string, Doc>, next: () => number, path: string): (Value | undefined)[] {
  const known = [...model.values()].map((d) => field(d, path));
  const pool = path === "a" ? A_VALUES : path === "tag" ? TAGS : path.startsWith("_") ? [] : B_VALUES;
  return [...pool, ...known.slice(0, 5), ...(known.length ? [pick(next, known)] : [])];
}

function randomRange(model: Map<string, Doc>, next: () => number, index: string): Range {
  const fields = INDEXES[index]!;
  const r: Range = { eq: [] };
  for (const f of fields.slice(0, Math.floor(next() * Math.min(fields.length, 3)))) {
    const values = valuesFor(model, next, f);
    if (values.length === 0) return r;
    r.eq.push(pick(next, values));
  }
  if (r.eq.length < fields.length) {
    const values = valuesFor(model, next, fields[r.eq.length]!);
    if (values.length === 0) return r;
    if (next() < 0.5) r.lower = { op: next() < 0.5 ? "gt" : "gte", value: pick(next, values) };
    if (next() < 0.5) r.upper = { op: next() < 0.5 ? "lt" : "lte", value: pick(next, values) };
  }
  return r;
}

function withRange(db: Db, index: string, r: Range) {
  return db.query("items").withIndex(index, (q: Db) => {
    const fields = INDEXES[index]!;
    let b = q;
    r.eq.forEach((value, i) => (b = b.eq(fields[i], value)));
    const f = fields[r.eq.length];
    if (r.lower) b = b[r.lower.op](f, r.lower.value);
    if (r.upper) b = b[r.upper.op](f, r.upper.value);
    return b;
  });
}

const ids = (docs: Doc[]) => docs.map((d) => d["_id"]);

/** Random reads on every index against the model; `label` names the case when one fails. */
async function checkReads(db: Db, model: Map<string, Doc>, next: () => number, label: string): Promise<void> {
  for (const index of Object.keys(INDEXES)) {
    for (let k = 0; k < 4; k++) {
      const r = randomRange(model, next, index);
      const order = next() < 0.5 ? "asc" : "desc";
      const want = expected(model, index, r, order);
      const what = `${label} ${index} ${order} ${JSON.stringify(r)}`;
      assert.deepEqual(ids(await withRange(db, index, r).order(order).collect()), ids(want), what);
      const take = Math.floor(next() * 6);
      assert.deepEqual(ids(await withRange(db, index, r).order(order).take(take)), ids(want.slice(0, take)), what);
      const first = await withRange(db, index, r).order(order).first();
      assert.equal(first?._id ?? null, want[0]?.["_id"] ?? null, what);
      const tag = pick(next, TAGS);
      const filtered = await withRange(db, index, r)
        .order(order)
        .filter((q: Db) => q.eq(q.field("tag"), tag))
        .take(3);
      assert.deepEqual(ids(filtered), ids(expected(model, index, r, order, tag).slice(0, 3)), what);
      let streamed = 0;
      for await (const doc of withRange(db, index, r).order(order)) {
        assert.equal(doc._id, want[streamed]?.["_id"], what);
        if (++streamed === 2) break;
      }
    }
  }
  const scan = await db.query("items").order("desc").take(5);
  assert.deepEqual(ids(scan), ids(expected(model, "by_creation_time", { eq: [] }, "desc").slice(0, 5)), label);
}

/**
 * Pages of a random range on every index, to the end. `page` runs one page; pages after the
 * first start from the previous page's cursor.
 */
async function checkPages(
  page: (index: string, r: Range, order: "asc" | "desc", cursor: string | null, numItems: number) => Promise<unknown>,
  model: Map<string, Doc>,
  next: () => number,
  label: string,
): Promise<void> {
  for (const index of Object.keys(INDEXES)) {
    const r = randomRange(model, next, index);
    const order = next() < 0.5 ? "asc" : "desc";
    const want = ids(expected(model, index, r, order));
    const numItems = 1 + Math.floor(next() * 7);
    const got: unknown[] = [];
    let cursor: string | null = null;
    for (let pages = 0; ; pages++) {
      assert.ok(pages <= want.length + 1, `${label} ${index}: pagination does not end`);
      const result = (await page(index, r, order, cursor, numItems)) as {
        page: Doc[];
        isDone: boolean;
        continueCursor: string;
      };
      assert.ok(result.page.length <= numItems);
      got.push(...ids(result.page));
      if (result.isDone) break;
      cursor = result.continueCursor;
    }
    assert.deepEqual(got, want, `${label} ${index} ${order} pages of ${numItems} ${JSON.stringify(r)}`);
  }
}

/**
 * One page (a function may page once) from a cursor at a random document of the range, with
 * the transaction's pending writes merged. The cursor is built as convex-test encodes one:
 * the document's index key, each value as JSON text, null for a missing field.
 */
async function checkPageWithin(db: Db, model: Map<string, Doc>, next: () => number, label: string): Promise<void> {
  const index = pick(next, Object.keys(INDEXES));
  const r = randomRange(model, next, index);
  const order = next() < 0.5 ? "asc" : "desc";
  const want = expected(model, index, r, order);
  const at = Math.floor(next() * (want.length + 1));
  const cursor =
    at === 0
      ? null
      : JSON.stringify(
          INDEXES[index]!.map((f) => {
            const value = field(want[at - 1]!, f);
            return value === undefined ? null : JSON.stringify(convexToJson(value));
          }),
        );
  const numItems = 1 + Math.floor(next() * 7);
  const result = await withRange(db, index, r).order(order).paginate({ cursor, numItems });
  const what = `${label} ${index} ${order} from ${at} ${JSON.stringify(r)}`;
  assert.deepEqual(ids(result.page), ids(want.slice(at, at + numItems)), what);
  assert.equal(result.isDone, at + numItems >= want.length, what);
}

function randomFields(next: () => number): Doc {
  const doc: Doc = { tag: pick(next, TAGS) };
  const a = pick(next, A_VALUES);
  if (a !== undefined) doc["a"] = a;
  if (next() < 0.8) doc["b"] = pick(next, B_VALUES);
  if (next() < 0.7) doc["n"] = { x: pick(next, B_VALUES) };
  return doc;
}

for (const seed of [1, 2, 3]) {
  test(`indexed reads equal a scan and sort of the same documents (seed ${seed})`, async () => {
    const next = rng(seed);
    const t = convexTest(schema, { "./_generated/server.js": async () => ({}) });
    const model = new Map<string, Doc>();
    for (let round = 0; round < 14; round++) {
      await t.run(async (ctx) => {
        const db = ctx.db as Db;
        // Another table's rows must never show up in this one's reads.
        await db.insert("other", { tag: pick(next, TAGS) });
        const writes = 3 + Math.floor(next() * 12);
        for (let w = 0; w < writes; w++) {
          const existing = [...model.keys()];
          const op = existing.length === 0 ? 0 : next();
          if (op < 0.45) {
            const id = await db.insert("items", randomFields(next));
            model.set(id, await db.get(id));
          } else if (op < 0.7) {
            const id = pick(next, existing);
            const patch = randomFields(next);
            if (next() < 0.3) patch["a"] = undefined;
            await db.patch(id, patch);
            model.set(id, await db.get(id));
          } else if (op < 0.82) {
            const id = pick(next, existing);
            await db.replace(id, randomFields(next));
            model.set(id, await db.get(id));
          } else {
            const id = pick(next, existing);
            await db.delete(id);
            model.delete(id);
          }
        }
        // Inside the transaction: committed rows merged with its own pending writes.
        await checkReads(db, model, next, `seed ${seed} round ${round} (pending)`);
        await checkPageWithin(db, model, next, `seed ${seed} round ${round} (pending)`);
        return null;
      });
      await t.run(async (ctx) => {
        await checkReads(ctx.db as Db, model, next, `seed ${seed} round ${round} (committed)`);
        return null;
      });
      await checkPages(
        (index, r, order, cursor, numItems) =>
          t.run(async (ctx) => withRange(ctx.db, index, r).order(order).paginate({ cursor, numItems })),
        model,
        next,
        `seed ${seed} round ${round} (committed)`,
      );
    }
    // A transaction that fails leaves the indexes as they were.
    const before = ids(expected(model, "by_a", { eq: [] }, "asc"));
    await assert.rejects(
      t.run(async (ctx) => {
        const db = ctx.db as Db;
        for (const id of [...model.keys()].slice(0, 5)) await db.patch(id, { a: "rolled back" });
        await db.insert("items", { tag: "red", a: "rolled back" });
        throw new Error("abort");
      }),
      /abort/,
    );
    const after = await t.run(async (ctx) => (ctx.db as Db).query("items").withIndex("by_a").collect());
    assert.deepEqual(ids(after as Doc[]), before);
  });
}

/** A random read a query can make: each shape the sync server's read sets must cover. */
function randomRead(model: Map<string, Doc>, gone: string[], next: () => number): [string, (db: Db) => Promise<unknown>] {
  const index = pick(next, Object.keys(INDEXES));
  const r = randomRange(model, next, index);
  const order = next() < 0.5 ? "asc" : "desc";
  const n = 1 + Math.floor(next() * 4);
  const tag = pick(next, TAGS);
  const id = pick(next, [...model.keys(), ...gone]);
  const what = `${index} ${order} ${JSON.stringify(r)}`;
  const shapes: [string, (db: Db) => Promise<unknown>][] = [
    [`collect ${what}`, (db) => withRange(db, index, r).order(order).collect()],
    [`take ${n} ${what}`, (db) => withRange(db, index, r).order(order).take(n)],
    [`first ${what}`, (db) => withRange(db, index, r).order(order).first()],
    [`filter ${tag} ${what}`, (db) => withRange(db, index, r).order(order).filter((q: Db) => q.eq(q.field("tag"), tag)).take(n)],
    [`page ${n} ${what}`, async (db) => (await withRange(db, index, r).order(order).paginate({ cursor: null, numItems: n })).page],
    [`scan take ${n}`, (db) => db.query("items").order(order).take(n)],
    [`get ${id}`, (db) => db.get(id)],
  ];
  return pick(next, shapes);
}

for (const seed of [1, 2, 3]) {
  test(`a read set covers every commit that changes the read's result (seed ${seed})`, async () => {
    const next = rng(seed + 100);
    const t = convexTest(schema, { "./_generated/server.js": async () => ({}) });
    const model = new Map<string, Doc>();
    const gone: string[] = [];
    await t.run(async (ctx) => {
      for (let i = 0; i < 40; i++) {
        const id = await (ctx.db as Db).insert("items", randomFields(next));
        model.set(id, await (ctx.db as Db).get(id));
      }
      return null;
    });
    let untouched = 0;
    for (let round = 0; round < 300; round++) {
      const [what, read] = randomRead(model, gone, next);
      const reads = new ReadSet();
      recording = reads;
      let before: unknown;
      try {
        before = await t.run(async (ctx) => read(ctx.db as Db));
      } finally {
        recording = null;
      }
      lastCommit = [];
      await t.run(async (ctx) => {
        const db = ctx.db as Db;
        for (let w = 1 + Math.floor(next() * 2); w > 0; w--) {
          const op = next();
          const id = pick(next, [...model.keys()]);
          if (op < 0.15) await db.insert("other", { tag: pick(next, TAGS) });
          else if (op < 0.45) model.set(await db.insert("items", randomFields(next)), null as never);
          else if (op < 0.75) await db.patch(id, next() < 0.5 ? { b: pick(next, B_VALUES) } : randomFields(next));
          else if (op < 0.9) await db.replace(id, randomFields(next));
          else if (model.size > 10) {
            await db.delete(id);
            model.delete(id);
            gone.push(id);
          }
        }
        for (const id of model.keys()) model.set(id, await db.get(id));
        return null;
      });
      const after = await t.run(async (ctx) => read(ctx.db as Db));
      const touched = reads.touchedBy(lastCommit);
      if (JSON.stringify(convexToJson(after as Value)) !== JSON.stringify(convexToJson(before as Value))) {
        assert.ok(touched, `seed ${seed} round ${round}: ${what} changed, but its read set missed the commit`);
      }
      if (!touched) untouched += 1;
    }
    // Not "everything touches everything": most reads here are of a small range.
    assert.ok(untouched > 50, `only ${untouched} of 300 commits left a read untouched`);
  });
}

test("compareField orders as compareValues does, fast paths included", async () => {
  const { compareField } = await import("../src/indexes.ts");
  const next = rng(7);
  const chars = ["a", "b", "Z", "0", "é", "\u00ff", "\ud7ff", "\ue000", "\uffff", "😀", "𝄞", "\u0000"];
  const str = () => Array.from({ length: Math.floor(next() * 4) }, () => pick(next, chars)).join("");
  const values: (Value | undefined)[] = [undefined, null, 0, -0, NaN, -Infinity, Infinity, 1, -1, 2.5, true, false, 3n];
  for (let i = 0; i < 60; i++) values.push(str());
  for (const a of values) {
    for (const b of values) {
      assert.equal(Math.sign(compareField(a, b)), Math.sign(compareValues(a, b)), `${String(a)} vs ${String(b)}`);
    }
  }
});
