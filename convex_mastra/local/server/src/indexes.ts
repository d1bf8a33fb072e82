// Sorted indexes over a table's committed documents, so an index range read costs
// O(log n + rows read) instead of a scan and sort of the whole table.
//
// One B+ tree (sorted-btree) per index, keyed by the documents themselves and ordered as
// convex-test and Convex order an index: its fields, then `_creationTime`, then `_id` (the
// caller passes the full field list). Documents are never copied: a tree holds the same
// objects as the database's `_documents`, so memory per index is a pointer per document.
// A range is two `Bound`s, points between keys, which is how Convex's index ranges are
// shaped: equalities on a prefix of the fields, then at most one lower and one upper
// bound on the next field.
import sortedBtree from "sorted-btree";
import bulkLoadModule from "sorted-btree/extended/bulkLoad.js";
import { compareValues, type Value } from "convex/values";

// A CommonJS package: Node's ESM loader gives its `module.exports`, the class is `.default`.
const BTree = sortedBtree.default;
const { bulkLoad } = bulkLoadModule;
const MAX_NODE_SIZE = 64;
type BTree<K, V> = InstanceType<typeof BTree<K, V>>;

export type Doc = Record<string, Value | undefined>;
export type FieldValue = Value | undefined;
export type Order = "asc" | "desc";

/**
 * A point between index keys: just before (`tail` -1) or just after (`tail` +1) every key
 * whose leading fields equal `values`.
 */
export class Bound {
  constructor(
    readonly values: readonly FieldValue[],
    readonly tail: -1 | 1,
  ) {}
}

/** The index range a Convex `withIndex` expression selects. */
export interface RangeExpr {
  type: "Eq" | "Gt" | "Gte" | "Lt" | "Lte";
  value: FieldValue;
}

/** Bounds of a range already validated as Convex validates it (eq prefix, then gt/lt). */
export function rangeBounds(range: readonly RangeExpr[]): { lower: Bound; upper: Bound } {
  const eq: FieldValue[] = [];
  let lower: Bound | undefined;
  let upper: Bound | undefined;
  for (const expr of range) {
    if (expr.type === "Eq") eq.push(expr.value);
    else if (expr.type === "Gt" || expr.type === "Gte") lower = new Bound([...eq, expr.value], expr.type === "Gt" ? 1 : -1);
    else upper = new Bound([...eq, expr.value], expr.type === "Lt" ? -1 : 1);
  }
  // Convex ranges put every equality before the gt/lt, so `eq` is the prefix of both bounds.
  return { lower: lower ?? new Bound(eq, -1), upper: upper ?? new Bound(eq, 1) };
}

/**
 * Convex's order of two values (`compareValues`), with fast paths for the two types index
 * keys nearly always hold: `compareValues` allocates a tuple per side on every call, and a
 * tree is built with tens of millions of comparisons.
 */
export function compareField(a: FieldValue, b: FieldValue): number {
  if (typeof a === "string" && typeof b === "string") {
    if (a === b) return 0;
    const n = Math.min(a.length, b.length);
    for (let i = 0; i < n; i++) {
      const x = a.charCodeAt(i);
      const y = b.charCodeAt(i);
      if (x === y) continue;
      // Below the surrogates, UTF-16 code units order as code points (Convex's UTF-8 order) do.
      if (x < 0xd800 && y < 0xd800) return x - y;
      return compareValues(a, b);
    }
    return a.length - b.length;
  }
  // Zeros (-0 sorts before 0) and NaN take Convex's own path.
  if (typeof a === "number" && typeof b === "number" && a !== 0 && b !== 0 && a === a && b === b) {
    return a < b ? -1 : a > b ? 1 : 0;
  }
  return compareValues(a, b);
}

/** Order of two bounds as points on the key line. */
export function compareBounds(a: Bound, b: Bound): number {
  const n = Math.min(a.values.length, b.values.length);
  for (let i = 0; i < n; i++) {
    const c = compareField(a.values[i], b.values[i]);
    if (c !== 0) return c;
  }
  if (a.values.length === b.values.length) return a.tail - b.tail;
  // The shorter bound lies outside every key of the longer one's prefix, on its tail's side.
  return a.values.length < b.values.length ? a.tail : -b.tail;
}

type Reader = (doc: Doc) => FieldValue;

/** Readers of an index's field paths; `readPath` serves dotted (nested) paths. */
export function fieldReaders(fields: readonly string[], readPath: (path: string, doc: Doc) => FieldValue): Reader[] {
  return fields.map((field) => (field.includes(".") ? (doc: Doc) => readPath(field, doc) : (doc: Doc) => doc[field]));
}

export class IndexTree {
  private readonly tree: BTree<Doc | Bound, undefined>;
  private readonly readers: Reader[];

  constructor(
    readonly fields: readonly string[],
    readPath: (path: string, doc: Doc) => FieldValue,
    docs: Iterable<Doc>,
  ) {
    this.readers = fieldReaders(fields, readPath);
    const sorted: (Doc | Bound)[] = [...docs].sort(this.compareDocs);
    this.tree = bulkLoad(sorted, new Array<undefined>(sorted.length), MAX_NODE_SIZE, this.compare);
  }

  get size(): number {
    return this.tree.size;
  }

  compareDocs = (a: Doc, b: Doc): number => {
    for (const read of this.readers) {
      const c = compareField(read(a), read(b));
      if (c !== 0) return c;
    }
    return 0;
  };

  /** Where `doc` lies relative to `bound`: negative before it, positive after (never 0). */
  compareDocBound(doc: Doc, bound: Bound): number {
    const { values } = bound;
    for (let i = 0; i < values.length; i++) {
      const c = compareField(this.readers[i]!(doc), values[i]);
      if (c !== 0) return c;
    }
    return -bound.tail;
  }

  private readonly compare = (a: Doc | Bound, b: Doc | Bound): number => {
    if (a instanceof Bound) return -this.compareDocBound(b as Doc, a);
    if (b instanceof Bound) return this.compareDocBound(a, b);
    return this.compareDocs(a, b);
  };

  /** A committed document changed: `before` is its old version, `after` its new one (null: none). */
  update(before: Doc | undefined, after: Doc | undefined): void {
    if (before !== undefined && after !== undefined && this.compareDocs(before, after) === 0) {
      // Same key: overwrite puts the new object in the old one's slot.
      this.tree.set(after, undefined, true);
      return;
    }
    if (before !== undefined) this.tree.delete(before);
    if (after !== undefined) this.tree.set(after, undefined);
  }

  /**
   * Documents strictly between `lower` and `upper`, in `order`, starting after `start` in that
   * order when given (a cursor), skipping the ids in `skip`.
   */
  *scan(lower: Bound, upper: Bound, order: Order, start: Bound | null, skip: ReadonlySet<string>): Generator<Doc> {
    if (order === "asc") {
      const from = start !== null && compareBounds(start, lower) > 0 ? start : lower;
      for (const [key] of this.tree.entries(from)) {
        const doc = key as Doc;
        if (this.compareDocBound(doc, upper) > 0) return;
        if (!skip.has(doc["_id"] as string)) yield doc;
      }
    } else {
      const from = start !== null && compareBounds(start, upper) < 0 ? start : upper;
      for (const [key] of this.tree.entriesReversed(from)) {
        const doc = key as Doc;
        if (this.compareDocBound(doc, lower) < 0) return;
        if (!skip.has(doc["_id"] as string)) yield doc;
      }
    }
  }
}

/** Merges two streams each sorted by `compare` (in the stream's order) into one. */
export function* mergeSorted(a: Iterator<Doc>, b: readonly Doc[], compare: (x: Doc, y: Doc) => number): Generator<Doc> {
  let i = 0;
  let next = a.next();
  while (!next.done) {
    while (i < b.length && compare(b[i]!, next.value) < 0) yield b[i++]!;
    yield next.value;
    next = a.next();
  }
  while (i < b.length) yield b[i++]!;
}
