// What a query read, so that a commit can tell whether it may have changed the query's
// result: the sync server re-runs a subscription only when one did (Convex's read sets, at
// the grain this emulator can give). A read is one of
// - an index range (two `Bound`s of one index): a write changes it when the document's old or
//   new version lies inside;
// - a document by id;
// - a whole table (a scan, an index read with no range, a search: convex-test's scans);
// - anything, when a component's database was read (component commits are not reported).
// The grain is coarser than the backend's in one way: a range counts whole even when the
// query stopped early (`.take(n)`, `.first()`), so a write past the rows it used still re-runs it.
import type { Bound, Doc, IndexTree } from "./indexes.ts";

/** One committed change of a document, as the read check needs it. */
export interface Change {
  id: string;
  table: string;
  /** The version before the commit (null: it was inserted). */
  prev: Doc | null;
  /** The version after it (null: it was deleted). */
  doc: Doc | null;
}

interface RangeRead {
  tree: IndexTree;
  lower: Bound;
  upper: Bound;
}

export class ReadSet {
  /** A read no range or table describes: every commit may change the result. */
  any = false;
  private readonly tables = new Set<string>();
  private readonly ids = new Set<string>();
  private readonly ranges = new Map<string, RangeRead[]>();

  table(table: string): void {
    this.tables.add(table);
  }

  id(id: string): void {
    this.ids.add(id);
  }

  range(table: string, tree: IndexTree, lower: Bound, upper: Bound): void {
    let list = this.ranges.get(table);
    if (list === undefined) this.ranges.set(table, (list = []));
    list.push({ tree, lower, upper });
  }

  /** Whether committing `changes` may change what was read. */
  touchedBy(changes: readonly Change[]): boolean {
    if (this.any) return true;
    for (const c of changes) {
      if (this.tables.has(c.table) || this.ids.has(c.id)) return true;
      const ranges = this.ranges.get(c.table);
      if (ranges === undefined) continue;
      for (const r of ranges) {
        if ((c.prev !== null && inside(r, c.prev)) || (c.doc !== null && inside(r, c.doc))) return true;
      }
    }
    return false;
  }
}

function inside(r: RangeRead, doc: Doc): boolean {
  return r.tree.compareDocBound(doc, r.lower) > 0 && r.tree.compareDocBound(doc, r.upper) < 0;
}
