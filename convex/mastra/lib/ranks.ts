// Order statistics for paged listings: counted B-trees in `mastra_ranks`.
//
// Convex indexes have no OFFSET: reaching row o of an index range means reading the o rows
// before it. For the listings users page through (a thread's messages, a resource's threads)
// we keep, per index group (one thread, one resource), a B-tree of the rows' sort values in
// which every inner node knows how many values each child holds. Finding the value at rank r,
// or how many values lie below a value, then reads one node per level (3 for 20,000 rows, 4 for
// about a million), and the page itself is read from the real index starting at that value.
//
// The tree holds sort values only, not rows: rows sharing a sort value sort by _creationTime in
// the index, so a reader skips the equal values that come before its rank (usually none).
//
// Trees follow the row counters (counters.ts): the Writer changes them exactly where it changes
// counts, a counter rebuild rebuilds them, and they are trusted only while the table's counters
// are READY. A value missing from its tree on delete proves it wrong: the table goes STALE.
//
// Nodes are edited in memory and written once per transaction (`flush`), so saving 100 messages
// writes each touched node once. Underfull nodes are not merged; empty ones are removed, and a
// root with one child hands the root role down, so depth never exceeds what the row count needs.
import type { GenericId, Value } from "convex/values";
import { type Ctx, type Doc, type ReadCtx, groupKey } from "./common";
import { byIndex, indexesOf, RANKS } from "./tables";

export { RANKS };

/** A sort value as the tree orders it: missing and null first, then numbers, then strings. */
export type RankKey = string | number | null;

/** Most values in a leaf and children of an inner node: nodes stay a few KiB. */
const LEAF_MAX = 64;
const INNER_MAX = 32;

/** Indexes that keep a rank tree: every leading field is an equality, the last one the sort. */
const RANKED_INDEXES: Record<string, readonly string[]> = {
  mastra_messages: ["by_thread_created"],
  mastra_threads: ["by_resource_created", "by_resource_updated"],
};

export type RankedIndex = { index: string; eq: string[]; sort: string };

const RANKED: Record<string, RankedIndex[]> = Object.fromEntries(
  Object.entries(RANKED_INDEXES).map(([table, names]) => [
    table,
    names.map((index) => {
      const fields = indexesOf(table)[index]!;
      return { index, eq: fields.slice(0, -1), sort: fields[fields.length - 1]! };
    }),
  ]),
);

/** For `info`: table -> ranked index -> the equality fields a listing must give. */
export const RANKED_INFO: Record<string, Record<string, string[]>> = Object.fromEntries(
  Object.entries(RANKED).map(([table, specs]) => [
    table,
    Object.fromEntries(specs.map((spec) => [spec.index, spec.eq])),
  ]),
);

export const rankedIndexesOf = (table: string): RankedIndex[] => RANKED[table] ?? [];

export const isRanked = (table: string): boolean => table in RANKED;

/** Tree name for `doc` in `spec`, or null when an equality field has no value. */
export function treeOf(spec: RankedIndex, doc: Record<string, unknown>): string | null {
  const group = groupKey(spec.eq, doc);
  return group === null ? null : `${spec.index}:${group}`;
}

export function keyOf(spec: RankedIndex, doc: Record<string, unknown>): RankKey {
  const value = doc[spec.sort];
  // NaN has no place in this order (the schemas make these sort fields strings anyway).
  return typeof value === "string" || (typeof value === "number" && !Number.isNaN(value))
    ? value
    : null;
}

const typeRank = (key: RankKey) => (key === null ? 0 : typeof key === "number" ? 1 : 2);

/** Convex's order: strings by code point (JavaScript's `<` compares UTF-16 units). */
export function compareKeys(a: RankKey, b: RankKey): number {
  const ta = typeRank(a);
  const tb = typeRank(b);
  if (ta !== tb) return ta - tb;
  if (a === b || a === null || b === null) return 0;
  if (typeof a === "number") return a < (b as number) ? -1 : 1;
  const sa = a as string;
  const sb = b as string;
  const n = Math.min(sa.length, sb.length);
  for (let i = 0; i < n; i++) {
    const ca = sa.codePointAt(i)!;
    const cb = sb.codePointAt(i)!;
    if (ca !== cb) return ca < cb ? -1 : 1;
    if (ca > 0xffff) i++;
  }
  return sa.length - sb.length;
}

type NodeId = GenericId<string>;
type Kid = { id: NodeId; n: number; max: RankKey };
type Node = {
  _id: NodeId;
  tree: string;
  root: boolean;
  keys?: RankKey[]; // leaf
  kids?: Kid[]; // inner node
};

const sizeOf = (node: Node): number =>
  node.keys ? node.keys.length : node.kids!.reduce((sum, kid) => sum + kid.n, 0);
const maxOf = (node: Node): RankKey =>
  node.keys ? node.keys[node.keys.length - 1]! : node.kids![node.kids!.length - 1]!.max;
const kidFor = (node: Node): Kid => ({ id: node._id, n: sizeOf(node), max: maxOf(node) });

/** First position in sorted `keys` whose value is >= `key` (or > `key` when `after`). */
function bound(keys: RankKey[], key: RankKey, after: boolean): number {
  let lo = 0;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    const c = compareKeys(keys[mid]!, key);
    if (c < 0 || (after && c === 0)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * The rank trees of one table, as one transaction sees them. Reads work on a query context;
 * `add`, `remove` and `flush` need a mutation context.
 */
export class RankForest {
  private nodes = new Map<string, Node>();
  private roots = new Map<string, Node | null>();
  private dirty = new Set<Node>();
  private removed = new Set<Node>();

  constructor(
    private readonly ctx: ReadCtx | Ctx,
    readonly table: string,
  ) {}

  // ---- reads ----

  /** How many values the tree holds. */
  async size(tree: string): Promise<number> {
    const root = await this.root(tree);
    return root ? sizeOf(root) : 0;
  }

  /** How many values are below `key` (or at most `key` when `inclusive`). */
  async countBelow(tree: string, key: RankKey, inclusive: boolean): Promise<number> {
    let node = await this.root(tree);
    let below = 0;
    while (node) {
      if (node.keys) return below + bound(node.keys, key, inclusive);
      let next: Node | null = null;
      for (const kid of node.kids!) {
        const c = compareKeys(kid.max, key);
        if (c < 0 || (inclusive && c === 0)) {
          below += kid.n;
        } else {
          // Later children hold only values >= this child's largest, so none count.
          next = await this.node(kid.id);
          break;
        }
      }
      node = next;
    }
    return below;
  }

  /** The value at `rank` (0-based, ascending), or undefined past the end. */
  async select(tree: string, rank: number): Promise<RankKey | undefined> {
    let node = await this.root(tree);
    let r = rank;
    while (node && r >= 0) {
      if (node.keys) return r < node.keys.length ? node.keys[r] : undefined;
      let next: Node | null = null;
      for (const kid of node.kids!) {
        if (r < kid.n) {
          next = await this.node(kid.id);
          break;
        }
        r -= kid.n;
      }
      node = next;
    }
    return undefined;
  }

  // ---- edits (buffered until flush) ----

  async add(tree: string, key: RankKey): Promise<void> {
    const root = await this.root(tree);
    if (!root) {
      this.roots.set(tree, await this.create(tree, true, { keys: [key] }));
      return;
    }
    const path: [Node, number][] = [];
    let node = root;
    while (node.kids) {
      // The first child whose largest value is > key, else the last: values stay sorted, and
      // a run of equal values (messages saved together) appends to the last leaf instead of
      // splitting one-value leaves off a full one.
      let i = node.kids.findIndex((kid) => compareKeys(key, kid.max) < 0);
      if (i < 0) i = node.kids.length - 1;
      const kid = node.kids[i]!;
      kid.n += 1;
      if (compareKeys(key, kid.max) > 0) kid.max = key;
      this.touch(node);
      path.push([node, i]);
      node = await this.node(kid.id);
    }
    const keys = node.keys!;
    const at = bound(keys, key, true);
    keys.splice(at, 0, key);
    this.touch(node);
    await this.splitUp(node, path, at === keys.length - 1);
  }

  /** Remove one occurrence of `key`; false (nothing changed) when the tree lacks it. */
  async remove(tree: string, key: RankKey): Promise<boolean> {
    let node = await this.root(tree);
    const path: [Node, number][] = [];
    while (node?.kids) {
      // A present key lies in the first child whose largest value is >= it.
      const i = node.kids.findIndex((kid) => compareKeys(key, kid.max) <= 0);
      if (i < 0) return false;
      path.push([node, i]);
      node = await this.node(node.kids[i]!.id);
    }
    if (!node) return false;
    const at = bound(node.keys!, key, false);
    if (at >= node.keys!.length || compareKeys(node.keys![at]!, key) !== 0) return false;
    node.keys!.splice(at, 1);
    this.touch(node);
    let child = node;
    for (let level = path.length - 1; level >= 0; level--) {
      const [parent, i] = path[level]!;
      if (sizeOf(child) === 0) {
        parent.kids!.splice(i, 1);
        this.drop(child);
      } else {
        parent.kids![i] = kidFor(child);
      }
      this.touch(parent);
      child = parent;
    }
    await this.settleRoot(tree);
    return true;
  }

  /** Write every changed node. */
  async flush(): Promise<void> {
    const db = (this.ctx as Ctx).db;
    for (const node of this.removed) await db.delete(node._id);
    for (const node of this.dirty) {
      await db.patch(
        node._id,
        node.keys
          ? { root: node.root, keys: node.keys }
          : {
              root: node.root,
              kids: node.kids as unknown as Value,
            },
      );
    }
    this.removed.clear();
    this.dirty.clear();
  }

  // ---- internals ----

  private async root(tree: string): Promise<Node | null> {
    if (!this.roots.has(tree)) {
      const doc = (await byIndex(this.ctx, RANKS, "by_tree", [
        ["table", this.table],
        ["tree", tree],
        ["root", true],
      ]).first()) as Node | null;
      this.roots.set(tree, doc ? this.remember(doc) : null);
    }
    return this.roots.get(tree)!;
  }

  private async node(id: NodeId): Promise<Node> {
    const known = this.nodes.get(id);
    if (known) return known;
    const doc = (await this.ctx.db.get(id)) as Node | null;
    if (!doc) throw new Error(`${RANKS}: node ${id} of ${this.table} is missing`);
    return this.remember(doc);
  }

  private remember(doc: Node): Node {
    const node: Node = {
      _id: doc._id,
      tree: doc.tree,
      root: doc.root,
      ...(doc.keys ? { keys: [...doc.keys] } : { kids: doc.kids!.map((kid) => ({ ...kid })) }),
    };
    this.nodes.set(node._id, node);
    return node;
  }

  private async create(
    tree: string,
    root: boolean,
    items: { keys: RankKey[] } | { kids: Kid[] },
  ): Promise<Node> {
    const body = { table: this.table, tree, root, ...items } as Record<string, Value>;
    const id = (await (this.ctx as Ctx).db.insert(RANKS, body)) as NodeId;
    const node: Node = { _id: id, tree, root, ...items };
    this.nodes.set(id, node);
    return node;
  }

  private touch(node: Node) {
    this.dirty.add(node);
  }

  private drop(node: Node) {
    this.dirty.delete(node);
    this.removed.add(node);
    this.nodes.delete(node._id);
  }

  /**
   * Split `node` while it is over its bound, then its parents. When the value that overflowed
   * it went to its end (appends: new messages, touched threads), the new node takes only that
   * value, so trees grown by appending have full nodes instead of half-full ones.
   */
  private async splitUp(node: Node, path: [Node, number][], atEnd: boolean): Promise<void> {
    let current = node;
    let appended = atEnd;
    for (let level = path.length; ; level--) {
      const items: unknown[] = current.keys ?? current.kids!;
      if (items.length <= (current.keys ? LEAF_MAX : INNER_MAX)) return;
      const cut = appended ? items.length - 1 : items.length >> 1;
      const right = await this.create(
        current.tree,
        false,
        current.keys ? { keys: current.keys.splice(cut) } : { kids: current.kids!.splice(cut) },
      );
      this.touch(current);
      if (level === 0) {
        current.root = false;
        const root = await this.create(current.tree, true, {
          kids: [kidFor(current), kidFor(right)],
        });
        this.roots.set(current.tree, root);
        return;
      }
      const [parent, i] = path[level - 1]!;
      parent.kids!.splice(i, 1, kidFor(current), kidFor(right));
      this.touch(parent);
      appended = i + 1 === parent.kids!.length - 1;
      current = parent;
    }
  }

  /** Remove an empty root; hand the root role to an only child. */
  private async settleRoot(tree: string): Promise<void> {
    let root = await this.root(tree);
    while (root) {
      if (sizeOf(root) === 0 && (root.keys || root.kids!.length === 0)) {
        this.drop(root);
        this.roots.set(tree, null);
        return;
      }
      if (!root.kids || root.kids.length !== 1) return;
      const only = await this.node(root.kids[0]!.id);
      this.drop(root);
      only.root = true;
      this.touch(only);
      this.roots.set(tree, only);
      root = only;
    }
  }
}

/** Delete up to `batch` tree nodes of `table`; true when nodes remain. */
export async function clearRanks(ctx: Ctx, table: string, batch: number): Promise<boolean> {
  const nodes = (await byIndex(ctx, RANKS, "by_tree", [["table", table]]).take(batch + 1)) as Doc[];
  for (const node of nodes.slice(0, batch)) await ctx.db.delete(node._id);
  return nodes.length > batch;
}
