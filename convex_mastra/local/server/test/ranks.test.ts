// RankForest (convex/mastra/lib/ranks.ts) against a sorted-array model, on the real convex-test
// engine with the mastra schema, loaded the way the server loads a functions folder: every
// answer (size, select, countBelow) and every node of `mastra_ranks` is checked after each batch.
import assert from "node:assert/strict";
import { realpathSync } from "node:fs";
import { join } from "node:path";
import { before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { loadConvexTest } from "../src/internals.ts";
import { validateDocument } from "../src/limits.ts";
import { loadFunctions, type LoadedFunctions } from "../src/modules.ts";
import { registerHooks } from "../src/register.ts";

const SERVER_DIR = fileURLToPath(new URL("..", import.meta.url));
const CONVEX_DIR = realpathSync(join(SERVER_DIR, "..", "..", "..", "convex"));

const RANKS = "mastra_ranks";
const MESSAGES = "mastra_messages";
const THREADS = "mastra_threads";
const LEAF_MAX = 64;
const INNER_MAX = 32;

type RankKey = string | number | null;

/** The part of ranks.ts under test (imported at run time: it is not part of this tsc project). */
interface Forest {
  size(tree: string): Promise<number>;
  countBelow(tree: string, key: RankKey, inclusive: boolean): Promise<number>;
  select(tree: string, rank: number): Promise<RankKey | undefined>;
  add(tree: string, key: RankKey): Promise<void>;
  remove(tree: string, key: RankKey): Promise<boolean>;
  flush(): Promise<void>;
}
interface RanksModule {
  RANKS: string;
  RankForest: new (ctx: unknown, table: string) => Forest;
  clearRanks(ctx: unknown, table: string, batch: number): Promise<boolean>;
  compareKeys(a: RankKey, b: RankKey): number;
}

type Kid = { id: string; n: number; max: RankKey };
type NodeDoc = {
  _id: string;
  _creationTime: number;
  table: string;
  tree: string;
  root: boolean;
  keys?: RankKey[];
  kids?: Kid[];
};

type ConvexTest = Awaited<ReturnType<typeof loadConvexTest>>;
type T = ReturnType<ConvexTest>;
type Ctx = Parameters<Parameters<T["run"]>[0]>[0];

let convexTest: ConvexTest;
let loaded: LoadedFunctions;
let ranks: RanksModule;
/** Documents written by committed transactions, all convex-test instances together. */
let committedWrites = 0;

/** The server's set-up: loader hooks (one `convex` instance), patched convex-test, modules. */
before(async () => {
  registerHooks(CONVEX_DIR);
  loaded = await loadFunctions(CONVEX_DIR);
  assert.ok(loaded.schema, "convex/schema.ts builds the schema from mastraTables");
  convexTest = await loadConvexTest({
    onCommit: (_ts, writes) => (committedWrites += writes.length),
    validateWrite: validateDocument,
    onTransactionEnd: () => {},
    currentReads: () => null,
  });
  const load = loaded.modules["./convex/mastra/lib/ranks.ts"];
  assert.ok(load, "ranks.ts is one of the loaded modules");
  ranks = (await load()) as RanksModule;
  assert.equal(ranks.RANKS, RANKS);
});

const newT = (): T =>
  convexTest({
    schema: loaded.schema,
    modules: loaded.modules,
    transactionLimits: true,
  });

// ---- the model: one sorted array per tree, ordered independently of compareKeys ----

const typeRank = (k: RankKey) => (k === null ? 0 : typeof k === "number" ? 1 : 2);

/** Convex's order; strings by UTF-8 bytes, which is code point order. */
function modelCompare(a: RankKey, b: RankKey): number {
  const ta = typeRank(a);
  const tb = typeRank(b);
  if (ta !== tb) return ta < tb ? -1 : 1;
  if (typeof a === "number" && typeof b === "number") return a < b ? -1 : a > b ? 1 : 0;
  if (typeof a === "string" && typeof b === "string") {
    return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
  }
  return 0;
}

/** First position whose key is >= `key` (> `key` when `after`). */
function bound(keys: RankKey[], key: RankKey, after: boolean): number {
  let lo = 0;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    const c = modelCompare(keys[mid]!, key);
    if (c < 0 || (after && c === 0)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

const treeName = (table: string, tree: string) => `${table}\n${tree}`;

class Model {
  readonly trees = new Map<string, RankKey[]>();

  keys(table: string, tree: string): RankKey[] {
    const name = treeName(table, tree);
    let keys = this.trees.get(name);
    if (!keys) this.trees.set(name, (keys = []));
    return keys;
  }

  add(table: string, tree: string, key: RankKey): void {
    const keys = this.keys(table, tree);
    keys.splice(bound(keys, key, true), 0, key);
  }

  remove(table: string, tree: string, key: RankKey): boolean {
    const keys = this.keys(table, tree);
    const at = bound(keys, key, false);
    if (at >= keys.length || modelCompare(keys[at]!, key) !== 0) return false;
    keys.splice(at, 1);
    return true;
  }

  has(table: string, tree: string, key: RankKey): boolean {
    const keys = this.keys(table, tree);
    const at = bound(keys, key, false);
    return at < keys.length && modelCompare(keys[at]!, key) === 0;
  }
}

// ---- deterministic randomness and keys ----

class Rand {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }
  /** mulberry32 */
  next(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<V>(items: readonly V[]): V {
    return items[this.int(items.length)]!;
  }
}

/** Pieces whose code point order differs from UTF-16 order: astral vs U+E000..U+FFFF. */
const PIECES = [
  "a",
  "b",
  "z",
  "A",
  "0",
  " ",
  "é",
  "ÿ",
  "中",
  "\uE000",
  "\uFFFD",
  "\uFFFF",
  "\u{10000}",
  "\u{1F600}",
  "\u{10FFFF}",
];
/** Larger than every generated string (those have at most 3 pieces). */
const ABOVE_ALL = "\u{10FFFF}".repeat(8);

const strKey = (r: Rand): string => {
  let s = "";
  for (let n = r.int(4); n > 0; n--) s += r.pick(PIECES);
  return s;
};
/** Numbers with many duplicates, some fractions, negatives and large values. */
const numKey = (r: Rand): number => {
  const roll = r.next();
  if (roll < 0.6) return r.int(400) - 50;
  if (roll < 0.9) return (r.int(4000) - 1000) / 4;
  return 1e15 + r.int(1000);
};
const mixedKey = (r: Rand): RankKey => {
  const roll = r.next();
  return roll < 0.08 ? null : roll < 0.5 ? numKey(r) : strKey(r);
};

/** Query keys that may sit anywhere: equal, between, beyond, or of another type. */
const probeKeys = (r: Rand): RankKey[] => [
  null,
  -Infinity,
  Infinity,
  -1e300,
  1e300,
  "",
  ABOVE_ALL,
  0.5 + r.int(300),
  numKey(r),
  strKey(r),
];

// ---- the harness: edits in transactions, checks in fresh ones ----

type Op = { table: string; tree: string; remove: boolean; key: RankKey };
const add = (table: string, tree: string, key: RankKey): Op => ({
  table,
  tree,
  remove: false,
  key,
});
const del = (table: string, tree: string, key: RankKey): Op => ({
  table,
  tree,
  remove: true,
  key,
});

/** Shares of appends, random inserts and removes of present keys; the rest removes absent ones. */
type Mix = { append: number; insert: number; remove: number };
const GROW: Mix = { append: 0.45, insert: 0.35, remove: 0.12 };
const CHURN: Mix = { append: 0.1, insert: 0.3, remove: 0.5 };
const STEADY: Mix = { append: 0.2, insert: 0.35, remove: 0.4 };
const DRAIN: Mix = { append: 0.02, insert: 0.03, remove: 0.9 };

type TreeStats = {
  depth: number;
  leafSizes: number[];
  innerSizes: number[];
  nodes: number;
};

type Checks = {
  /** Ranks read with select: "all", or a random sample of this many (plus both ends). */
  ranks?: number | "all";
  /** Present and absent keys given to countBelow. */
  keys?: number;
};

class Harness {
  /** What the database holds once every edit so far has committed. */
  readonly model = new Model();
  /** Ops are generated against this copy, which runs ahead of `model` until `edit` runs them. */
  readonly plan = new Model();
  readonly t = newT();
  readonly r: Rand;
  /** Most depth seen per tree over all checks. */
  readonly maxDepth = new Map<string, number>();

  constructor(seed: number) {
    this.r = new Rand(seed);
  }

  /**
   * One transaction: every op on fresh forests (one per table), the model alongside, reads of
   * the buffered state now and then, one flush per forest at the end (and some in between when
   * `midFlush`).
   */
  async edit(ops: Op[], opts: { readChance?: number; midFlush?: number } = {}): Promise<void> {
    const { readChance = 0.01, midFlush = 0 } = opts;
    await this.t.run(async (ctx) => {
      const forests = new Map<string, Forest>();
      for (const [i, op] of ops.entries()) {
        let forest = forests.get(op.table);
        if (!forest) forests.set(op.table, (forest = new ranks.RankForest(ctx, op.table)));
        const where = `op ${i} of ${ops.length}: ${op.remove ? "remove" : "add"} ${show(op.key)}`;
        if (op.remove) {
          const want = this.model.remove(op.table, op.tree, op.key);
          assert.equal(await forest.remove(op.tree, op.key), want, `${where} returns ${want}`);
        } else {
          await forest.add(op.tree, op.key);
          this.model.add(op.table, op.tree, op.key);
        }
        if (this.r.chance(readChance)) {
          await this.checkReads(forest, op.table, op.tree, { ranks: 20, keys: 5 }, `${where}`);
        }
        if (midFlush > 0 && this.r.chance(midFlush)) await forest.flush();
      }
      for (const forest of forests.values()) await forest.flush();
    });
  }

  /** A fresh transaction: the table's nodes, then every tree's answers, against the model. */
  async verify(checks: Checks = {}, where = ""): Promise<Map<string, TreeStats>> {
    assert.deepEqual(this.model.trees, this.plan.trees, `${where}: every planned op ran`);
    let stats = new Map<string, TreeStats>();
    await this.t.run(async (ctx) => {
      stats = checkStructure((await ctx.db.query(RANKS).collect()) as NodeDoc[], this.model, where);
      const forests = new Map<string, Forest>();
      for (const name of this.model.trees.keys()) {
        const [table, tree] = name.split("\n") as [string, string];
        let forest = forests.get(table);
        if (!forest) forests.set(table, (forest = new ranks.RankForest(ctx, table)));
        await this.checkReads(forest, table, tree, checks, where);
      }
    });
    for (const [name, s] of stats) {
      this.maxDepth.set(name, Math.max(this.maxDepth.get(name) ?? 0, s.depth));
    }
    return stats;
  }

  async checkReads(forest: Forest, table: string, tree: string, checks: Checks, where: string) {
    const { ranks: rankCount = 200, keys: keyCount = 40 } = checks;
    const keys = this.model.keys(table, tree);
    const at = `${where} ${table} ${show(tree)} (${keys.length} keys)`;
    assert.equal(await forest.size(tree), keys.length, `${at}: size`);
    const sample =
      rankCount === "all" || rankCount >= keys.length
        ? keys.map((_, i) => i)
        : [0, keys.length - 1, ...Array.from({ length: rankCount }, () => this.r.int(keys.length))];
    for (const rank of sample) {
      assert.equal(await forest.select(tree, rank), keys[rank], `${at}: select(${rank})`);
    }
    for (const rank of [keys.length, keys.length + 1 + this.r.int(100), -1]) {
      assert.equal(await forest.select(tree, rank), undefined, `${at}: select(${rank})`);
    }
    const probes = probeKeys(this.r);
    for (let i = 0; i < keyCount && keys.length > 0; i++) probes.push(this.r.pick(keys));
    for (let i = 0; i < keyCount; i++) probes.push(mixedKey(this.r));
    for (const key of probes) {
      for (const inclusive of [false, true]) {
        assert.equal(
          await forest.countBelow(tree, key, inclusive),
          bound(keys, key, inclusive),
          `${at}: countBelow(${show(key)}, ${inclusive})`,
        );
      }
    }
  }

  /** Append `op` to `ops` and to the plan. */
  queue(ops: Op[], op: Op): void {
    ops.push(op);
    if (op.remove) this.plan.remove(op.table, op.tree, op.key);
    else this.plan.add(op.table, op.tree, op.key);
  }

  /** A key the planned tree lacks, from `gen` when it finds one. */
  absent(table: string, tree: string, gen: (r: Rand) => RankKey): RankKey {
    for (let i = 0; i < 20; i++) {
      const key = gen(this.r);
      if (!this.plan.has(table, tree, key)) return key;
    }
    for (;;) {
      const key = this.r.chance(0.5) ? 0.5 + this.r.int(1e6) : `absent ${this.r.int(1e9)}`;
      if (!this.plan.has(table, tree, key)) return key;
    }
  }

  /** A random op on one tree of the plan. */
  randomOp(table: string, tree: string, mix: Mix, gen: (r: Rand) => RankKey): Op {
    const keys = this.plan.keys(table, tree);
    let roll = this.r.next();
    if ((roll -= mix.append) < 0) {
      const last = keys.length ? keys[keys.length - 1]! : null;
      if (this.r.chance(0.15) || last === null) return add(table, tree, last ?? gen(this.r));
      return add(table, tree, typeof last === "number" ? last + 1 + this.r.int(3) : `${last}a`);
    }
    if ((roll -= mix.insert) < 0) return add(table, tree, gen(this.r));
    if ((roll -= mix.remove) < 0 && keys.length > 0) return del(table, tree, this.r.pick(keys));
    return del(table, tree, this.absent(table, tree, gen));
  }

  async nodes(): Promise<NodeDoc[]> {
    return (await this.t.run(async (ctx: Ctx) => await ctx.db.query(RANKS).collect())) as NodeDoc[];
  }
}

const show = (key: unknown) => JSON.stringify(key) ?? String(key);

/** Every invariant of the stored trees; the in-order keys of each equal the model's. */
function checkStructure(docs: NodeDoc[], model: Model, where: string): Map<string, TreeStats> {
  const byId = new Map(docs.map((doc) => [doc._id, doc]));
  const groups = new Map<string, NodeDoc[]>();
  for (const doc of docs) {
    const name = treeName(doc.table, doc.tree);
    const group = groups.get(name);
    if (group) group.push(doc);
    else groups.set(name, [doc]);
  }
  for (const [name, group] of groups) {
    assert.ok(
      (model.trees.get(name)?.length ?? 0) > 0,
      `${where}: ${group.length} nodes left for empty tree ${show(name)}`,
    );
  }
  const stats = new Map<string, TreeStats>();
  for (const [name, keys] of model.trees) {
    if (keys.length === 0) continue;
    const at = `${where} ${show(name)}`;
    const group = groups.get(name) ?? [];
    const roots = group.filter((doc) => doc.root);
    assert.equal(roots.length, 1, `${at}: one root`);
    const seen = new Set<string>([roots[0]!._id]);
    const inOrder: RankKey[] = [];
    const s: TreeStats = {
      depth: 0,
      leafSizes: [],
      innerSizes: [],
      nodes: group.length,
    };
    const walk = (node: NodeDoc, depth: number): { n: number; max: RankKey } => {
      const nodeAt = `${at} node ${node._id} (depth ${depth})`;
      if (node.keys !== undefined) {
        assert.equal(node.kids, undefined, `${nodeAt}: a leaf has no kids`);
        assert.ok(node.keys.length >= 1 && node.keys.length <= LEAF_MAX, `${nodeAt}: leaf size`);
        for (let i = 1; i < node.keys.length; i++) {
          assert.ok(modelCompare(node.keys[i - 1]!, node.keys[i]!) <= 0, `${nodeAt}: sorted`);
        }
        if (s.depth === 0) s.depth = depth;
        assert.equal(depth, s.depth, `${nodeAt}: every leaf at one depth`);
        s.leafSizes.push(node.keys.length);
        inOrder.push(...node.keys);
        return { n: node.keys.length, max: node.keys[node.keys.length - 1]! };
      }
      const kids = node.kids;
      assert.ok(kids, `${nodeAt}: keys or kids`);
      assert.ok(kids.length >= (node.root ? 2 : 1), `${nodeAt}: ${kids.length} kids`);
      assert.ok(kids.length <= INNER_MAX, `${nodeAt}: ${kids.length} kids`);
      s.innerSizes.push(kids.length);
      let n = 0;
      let max: RankKey = null;
      for (const kid of kids) {
        const child = byId.get(kid.id);
        assert.ok(child, `${nodeAt}: kid ${kid.id} exists`);
        assert.equal(treeName(child.table, child.tree), name, `${nodeAt}: kid in the same tree`);
        assert.equal(child.root, false, `${nodeAt}: kid is no root`);
        assert.ok(!seen.has(child._id), `${nodeAt}: kid ${kid.id} referenced once`);
        seen.add(child._id);
        const sub = walk(child, depth + 1);
        assert.equal(kid.n, sub.n, `${nodeAt}: kid ${kid.id} n`);
        assert.equal(kid.max, sub.max, `${nodeAt}: kid ${kid.id} max`);
        n += sub.n;
        max = sub.max;
      }
      return { n, max };
    };
    walk(roots[0]!, 1);
    assert.equal(seen.size, group.length, `${at}: no orphan nodes`);
    assert.deepEqual(inOrder, keys, `${at}: in-order keys`);
    stats.set(name, s);
  }
  return stats;
}

const snapshot = (docs: NodeDoc[]) => [...docs].sort((a, b) => (a._id < b._id ? -1 : 1));

// ---- the tests ----

describe("RankForest on convex-test", () => {
  test("compareKeys orders by code point, like the model", () => {
    assert.ok("\u{1F600}" < "\uFFFF", "JavaScript's < compares UTF-16 units");
    assert.ok(ranks.compareKeys("\u{1F600}", "\uFFFF") > 0);
    assert.ok(ranks.compareKeys("\uFFFF", "\u{1F600}") < 0);
    assert.ok(ranks.compareKeys(null, -Infinity) < 0);
    assert.ok(ranks.compareKeys(1e300, "") < 0);
    assert.equal(ranks.compareKeys("a\u{1F600}", "a\u{1F600}"), 0);
    assert.ok(ranks.compareKeys("a\u{1F600}", "a\u{1F600}b") < 0);
    const r = new Rand(7);
    for (let i = 0; i < 5000; i++) {
      const a = mixedKey(r);
      const b = r.chance(0.2) ? a : mixedKey(r);
      assert.equal(
        Math.sign(ranks.compareKeys(a, b)),
        Math.sign(modelCompare(a, b)),
        `${show([a, b])}`,
      );
    }
  });

  test("appends fill their nodes: 6,400 increasing keys make 100 full leaves", async () => {
    const h = new Harness(1);
    const tree = "by_thread_created:thread-1";
    let key = 1_700_000_000_000;
    for (let done = 0, batch = 0; done < 6400; batch++) {
      const n = Math.min(6400 - done, 1 + h.r.int(300));
      const ops: Op[] = [];
      for (let i = 0; i < n; i++) h.queue(ops, add(MESSAGES, tree, (key += 1 + h.r.int(1000))));
      await h.edit(ops);
      done += n;
      if (batch % 4 === 0) await h.verify({ ranks: 100, keys: 20 }, `batch ${batch}`);
    }
    const s = (await h.verify({ ranks: "all", keys: 200 }, "end")).get(treeName(MESSAGES, tree))!;
    assert.deepEqual(s.leafSizes, Array(100).fill(LEAF_MAX));
    assert.equal(s.depth, 3);
    // Root over 4 inner nodes: 32 + 32 + 32 + 4 leaves.
    assert.deepEqual(s.innerSizes, [4, 32, 32, 32, 4]);
    assert.equal(s.nodes, 105);
  });

  test("appends in one transaction, and appended strings, fill their nodes too", async () => {
    const h = new Harness(2);
    const numbers = "by_resource_created:r1";
    const strings = "by_resource_updated:r1";
    const ops: Op[] = [];
    for (let i = 0; i < 3000; i++) {
      h.queue(ops, add(THREADS, numbers, i * 10));
      h.queue(ops, add(THREADS, strings, `2024-01-01T00:${String(i).padStart(6, "0")}Z`));
    }
    await h.edit(ops, { readChance: 0.005 });
    const stats = await h.verify({ ranks: "all", keys: 100 });
    for (const tree of [numbers, strings]) {
      const s = stats.get(treeName(THREADS, tree))!;
      assert.deepEqual(s.leafSizes, [...Array(46).fill(LEAF_MAX), 3000 - 46 * LEAF_MAX]);
      assert.equal(s.depth, 3);
    }
  });

  test("removing oldest or newest first hands the root role down", async () => {
    const h = new Harness(10);
    const oldest = "by_thread_created:oldest-first";
    const newest = "by_thread_created:newest-first";
    let ops: Op[] = [];
    for (let n = 0; n < 5000; n++) h.queue(ops, add(MESSAGES, oldest, n));
    for (let n = 0; n < 3000; n++)
      h.queue(ops, add(MESSAGES, newest, `k${String(n).padStart(5, "0")}`));
    await h.edit(ops);
    const depths = new Map<string, number[]>([
      [oldest, []],
      [newest, []],
    ]);
    for (let batch = 0; ; batch++) {
      const a = h.plan.keys(MESSAGES, oldest);
      const b = h.plan.keys(MESSAGES, newest);
      if (a.length === 0 && b.length === 0) break;
      ops = [];
      // Batches shrink with the trees, so every depth is seen on the way down.
      const most = (keys: RankKey[]) => 1 + h.r.int(Math.min(300, keys.length >> 2) + 1);
      for (let n = most(a); n > 0 && a.length > 0; n--) {
        h.queue(ops, del(MESSAGES, oldest, a[0]!));
      }
      for (let n = most(b); n > 0 && b.length > 0; n--) {
        h.queue(ops, del(MESSAGES, newest, b[b.length - 1]!));
      }
      await h.edit(ops);
      const stats = await h.verify({ ranks: 100, keys: 20 }, `batch ${batch}`);
      for (const [tree, seen] of depths) {
        const s = stats.get(treeName(MESSAGES, tree));
        if (s) seen.push(s.depth);
      }
    }
    for (const [tree, seen] of depths) {
      assert.equal(seen[0], 3, tree);
      assert.deepEqual([...seen].sort().reverse(), seen, `${tree}: depth never grows`);
      assert.ok(seen.includes(2) && seen.includes(1), `${tree}: depths ${seen}`);
    }
  });

  test("random edits over many transactions: depth 3, drained to empty, regrown", async () => {
    const h = new Harness(3);
    const big = "by_thread_created:big";
    const small = "by_thread_created:small";
    const size = () => h.plan.keys(MESSAGES, big).length;
    const phase = async (label: string, mix: Mix, done: () => boolean) => {
      for (let batch = 0; !done(); batch++) {
        const ops: Op[] = [];
        for (let n = 1 + h.r.int(400); n > 0 && !done(); n--) {
          const tree = h.r.chance(0.1) ? small : big;
          h.queue(ops, h.randomOp(MESSAGES, tree, tree === small ? STEADY : mix, numKey));
        }
        await h.edit(ops, { midFlush: 0.002 });
        await h.verify({ ranks: 150, keys: 30 }, `${label} batch ${batch}`);
      }
      await h.verify({ ranks: "all", keys: 200 }, `${label} end`);
    };
    await phase("grow", GROW, () => size() >= 5000);
    assert.ok(h.maxDepth.get(treeName(MESSAGES, big))! >= 3, "5,000 keys need depth 3");
    await phase("drain", DRAIN, () => size() === 0);
    assert.equal(h.model.keys(MESSAGES, big).length, 0);
    assert.ok(h.model.keys(MESSAGES, small).length > 0);
    await phase("regrow", GROW, () => size() >= 2500);
    await phase("churn", CHURN, () => size() < 2300);
  });

  test("mixed keys in several trees of two tables do not interfere", async () => {
    const h = new Harness(4);
    const trees: [string, string][] = [
      [MESSAGES, "t:a"],
      [MESSAGES, "t:b"],
      [MESSAGES, "t:\u{1F600}"],
      [THREADS, "t:a"],
      [THREADS, "r:\uFFFF"],
    ];
    const mixed = { append: 0.15, insert: 0.5, remove: 0.25 };
    for (let batch = 0; batch < 40; batch++) {
      const ops: Op[] = [];
      for (let n = 1 + h.r.int(300); n > 0; n--) {
        const [table, tree] = h.r.pick(trees);
        h.queue(ops, h.randomOp(table, tree, mixed, mixedKey));
      }
      await h.edit(ops, { midFlush: 0.002 });
      await h.verify({ ranks: 100, keys: 30 }, `batch ${batch}`);
    }
    // Drain one tree while its namesake in the other table gets the very same keys removed
    // and re-added: the two never share a node.
    const drained = h.plan.keys(MESSAGES, "t:a");
    assert.ok(drained.length > 200);
    while (drained.length > 0) {
      const ops: Op[] = [];
      for (let n = 1 + h.r.int(200); n > 0 && drained.length > 0; n--) {
        const key = h.r.pick(drained);
        h.queue(ops, del(MESSAGES, "t:a", key));
        h.queue(
          ops,
          h.plan.has(THREADS, "t:a", key) ? del(THREADS, "t:a", key) : add(THREADS, "t:a", key),
        );
      }
      await h.edit(ops);
      await h.verify({ ranks: 100, keys: 30 }, "drain");
    }
    const ops: Op[] = [];
    for (let n = 0; n < 500; n++) h.queue(ops, h.randomOp(MESSAGES, "t:a", GROW, mixedKey));
    await h.edit(ops);
    await h.verify({ ranks: "all", keys: 200 }, "regrown");
  });

  test("thousands of edits in one transaction before one flush", async () => {
    const h = new Harness(5);
    const a = "by_thread_created:a";
    const b = "by_resource_updated:b";
    const c = "by_thread_created:c";
    let ops: Op[] = [];
    for (let n = 0; n < 6000; n++) {
      if (h.r.chance(0.75)) h.queue(ops, h.randomOp(MESSAGES, a, GROW, numKey));
      else h.queue(ops, h.randomOp(THREADS, b, GROW, mixedKey));
    }
    await h.edit(ops, { readChance: 0.01 });
    const stats = await h.verify({ ranks: "all", keys: 200 }, "grown");
    assert.ok(h.plan.keys(MESSAGES, a).length > 2048);
    assert.equal(stats.get(treeName(MESSAGES, a))!.depth, 3);

    // Most of a removed in one transaction: emptied nodes go, the root role moves down.
    ops = [];
    const left = h.plan.keys(MESSAGES, a);
    while (left.length > 30) {
      h.queue(ops, del(MESSAGES, a, h.r.pick(left)));
      if (h.r.chance(0.1)) h.queue(ops, h.randomOp(THREADS, b, CHURN, mixedKey));
      if (h.r.chance(0.02)) h.queue(ops, del(MESSAGES, a, h.absent(MESSAGES, a, numKey)));
    }
    await h.edit(ops, { readChance: 0.01 });
    await h.verify({ ranks: "all", keys: 200 }, "shrunk");

    // A tree born, split to depth 2 and emptied within one transaction leaves no node behind.
    ops = [];
    for (let n = 0; n < 300; n++) h.queue(ops, h.randomOp(MESSAGES, c, GROW, numKey));
    while (h.plan.keys(MESSAGES, c).length > 0) {
      h.queue(ops, del(MESSAGES, c, h.r.pick(h.plan.keys(MESSAGES, c))));
    }
    h.queue(ops, del(MESSAGES, c, 1));
    await h.edit(ops, { readChance: 0.02 });
    await h.verify({ ranks: "all", keys: 200 }, "born and emptied");
  });

  test("removing absent keys returns false and writes nothing", async () => {
    const h = new Harness(6);
    const x = "t:x";
    const y = "t:y";
    for (let batch = 0; batch < 6; batch++) {
      const ops: Op[] = [];
      for (let n = 0; n < 500; n++) h.queue(ops, add(MESSAGES, x, mixedKey(h.r)));
      for (let n = 0; n < 20; n++) h.queue(ops, add(THREADS, y, numKey(h.r)));
      await h.edit(ops);
    }
    await h.verify({ ranks: 100, keys: 50 });
    const before = snapshot(await h.nodes());
    const ops: Op[] = [];
    const xKeys = h.plan.keys(MESSAGES, x);
    for (let n = 0; n < 300; n++) h.queue(ops, del(MESSAGES, x, h.absent(MESSAGES, x, mixedKey)));
    for (const key of [-Infinity, Infinity, ABOVE_ALL, "", 0.5]) {
      if (!h.plan.has(MESSAGES, x, key)) h.queue(ops, del(MESSAGES, x, key));
    }
    for (let n = 0; n < 100; n++) {
      const key = h.r.pick(xKeys); // present in x, but not in these trees
      if (!h.plan.has(THREADS, y, key)) h.queue(ops, del(THREADS, y, key));
      h.queue(ops, del(THREADS, x, key));
      h.queue(ops, del(MESSAGES, "t:none", key));
    }
    assert.ok(ops.length > 500);
    const written = committedWrites;
    await h.edit(ops, { readChance: 0.05 });
    assert.equal(committedWrites, written, "no document written, not even unchanged");
    assert.deepEqual(snapshot(await h.nodes()), before);
    await h.verify({ ranks: "all", keys: 50 });
  });

  test("clearRanks deletes one table's nodes in bounded batches", async () => {
    const h = new Harness(7);
    for (let batch = 0; batch < 3; batch++) {
      const ops: Op[] = [];
      for (const tree of ["t:1", "t:2", "t:3"]) {
        for (let n = 0; n < 500; n++) h.queue(ops, h.randomOp(MESSAGES, tree, GROW, numKey));
      }
      for (const tree of ["t:1", "r:1"]) {
        for (let n = 0; n < 250; n++) h.queue(ops, h.randomOp(THREADS, tree, GROW, mixedKey));
      }
      await h.edit(ops);
    }
    await h.verify({ ranks: 100, keys: 30 });
    const count = async () => (await h.nodes()).filter((doc) => doc.table === MESSAGES).length;
    const threads = async () => snapshot((await h.nodes()).filter((doc) => doc.table === THREADS));
    const threadsBefore = await threads();
    let remaining = await count();
    assert.ok(remaining > 60, `${remaining} nodes`);
    const clear = (batch: number) => h.t.run((ctx: Ctx) => ranks.clearRanks(ctx, MESSAGES, batch));
    for (let i = 0; remaining > 20; i++) {
      const batch = [1, 7, 13][i % 3]!;
      const more = await clear(batch);
      const now = await count();
      assert.equal(now, remaining - batch, `batch ${batch} deletes ${batch}`);
      assert.equal(more, true);
      remaining = now;
    }
    // A batch larger than what is left, then exactly what is left.
    assert.equal(await clear(remaining - 5), true);
    assert.equal(await count(), 5);
    assert.equal(await clear(5), false);
    assert.equal(await count(), 0);
    assert.equal(await clear(10), false);
    assert.deepEqual(await threads(), threadsBefore);
    for (const name of h.model.trees.keys()) {
      if (name.startsWith(`${MESSAGES}\n`)) {
        h.model.trees.set(name, []);
        h.plan.trees.set(name, []);
      }
    }
    await h.verify({ ranks: "all", keys: 50 }, "cleared");
    const ops: Op[] = [];
    for (let n = 0; n < 300; n++) h.queue(ops, h.randomOp(MESSAGES, "t:2", GROW, numKey));
    await h.edit(ops);
    await h.verify({ ranks: "all", keys: 50 }, "regrown");
  });

  // Runs of equal keys (messages saved together with one createdAt) must append to the last
  // leaf, not split one-key leaves off a full one (a bug this suite found).
  test("66 equal keys make two leaves, 64 + 2", async () => {
    const h = new Harness(8);
    const tree = "by_thread_created:same";
    for (let n = 0; n < 66; n++) {
      const ops: Op[] = [];
      h.queue(ops, add(MESSAGES, tree, 1_700_000_000_000));
      await h.edit(ops);
    }
    const s = (await h.verify({ ranks: "all" })).get(treeName(MESSAGES, tree))!;
    assert.deepEqual(s.leafSizes, [64, 2]);
  });

  test("appending runs of equal keys fills leaves", async () => {
    // 64 runs of 100 equal keys, one transaction each: 6,400 keys fit in 100 leaves.
    const h = new Harness(9);
    const tree = "by_thread_created:runs";
    for (let run = 0; run < 64; run++) {
      const ops: Op[] = [];
      for (let n = 0; n < 100; n++) h.queue(ops, add(MESSAGES, tree, 1_700_000_000_000 + run));
      await h.edit(ops);
    }
    const s = (await h.verify({ ranks: "all", keys: 100 })).get(treeName(MESSAGES, tree))!;
    const sizes = s.leafSizes;
    assert.ok(
      sizes.length <= 110,
      `${sizes.length} leaves, depth ${s.depth}: ${sizes.slice(0, 40)}`,
    );
  });
});
