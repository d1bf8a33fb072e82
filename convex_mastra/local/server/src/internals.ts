// The ONLY module that touches convex-test internals.
//
// Read from convex-test 0.0.60 (dist/index.js and dist/transactionMetrics.js).
// convex-test keeps all data in a `DatabaseFake` per component and runs every
// top-level query/mutation between `TransactionManager.begin` and `commit`/
// `rollback`, with a `TransactionMetricsTracker` driven in lockstep. None of
// these classes are exported, so src/hooks.ts appends EXPORT_SUFFIX to
// dist/index.js. We then wrap a few prototype methods:
//
// - DatabaseFake.commit(commitTs): when the outermost write layer is applied
//   (`_writes.length === 1` before the call), the ids in that layer are exactly
//   the documents the transaction changed; after the call `_documents[id]` holds
//   the committed version (or nothing for a delete). That is the WAL record.
// - DatabaseFake._addWrite(id, doc): every insert/patch/replace stages the full
//   new document here, so the Convex document limits are checked here, before
//   anything is staged. (It is also used to merge nested layers on commit; that
//   path is skipped.)
// - DatabaseFake.startTransaction / TransactionManager.begin: capture the root
//   database and the transaction manager (for restore and snapshots).
// - TransactionMetricsTracker.commit/rollback: when the root layer pops, its
//   counters are the whole top-level transaction's reads and writes.
// - DatabaseFake.startQuery/queryNext/paginate: table scans and index ranges read a
//   sorted index (src/indexes.ts) lazily, as far as the caller pulls, instead of
//   collecting and sorting the table's matching documents first; pending writes of the
//   transaction are merged in. Search queries keep convex-test's path. The helpers that
//   give a range, filter or field its meaning are convex-test's own (exported below),
//   so a document matches exactly when it did before.
//
// Restore writes `_documents`, `_nextDocId`, `_lastCreationTime` and the
// manager's `_lastCommitTs` directly, between transactions.
import { getDocumentSize, jsonToConvex, type JSONValue, type Value } from "convex/values";
import {
  Bound,
  compareField,
  IndexTree,
  mergeSorted,
  rangeBounds,
  type FieldValue,
  type Order,
  type RangeExpr,
} from "./indexes.ts";
import { ReadSet, type Change } from "./reads.ts";

export const CONVEX_TEST_VERSION = "0.0.60";

export const EXPORT_SUFFIX =
  "\n;export { DatabaseFake as __cmDatabaseFake, TransactionManager as __cmTransactionManager, " +
  "TransactionMetricsTracker as __cmTransactionMetricsTracker, evaluateFieldPath as __cmEvaluateFieldPath, " +
  "evaluateRangeFilter as __cmEvaluateRangeFilter, evaluateFilter as __cmEvaluateFilter, " +
  "evaluateQueryValue as __cmEvaluateQueryValue, " +
  "validateIndexRangeExpression as __cmValidateIndexRangeExpression };\n";

export type Doc = Record<string, Value | undefined>;

export interface Metrics {
  bytesRead: number;
  bytesWritten: number;
  documentsRead: number;
  documentsWritten: number;
}

/** A committed change: `doc` is the new version (null: deleted), `prev` the old one (null: inserted). */
export type CommittedWrite = Change;

export interface InternalHooks {
  /** A top-level transaction of the root component committed these changes. */
  onCommit(commitTs: bigint, writes: CommittedWrite[], counters: Counters): void;
  /** A new document version is about to be staged; throw to refuse it. */
  validateWrite(table: string, doc: Doc): void;
  /** A top-level transaction ended; `metrics` covers all of it (nested calls included). */
  onTransactionEnd(metrics: Metrics, committed: boolean): void;
  /** Where the running query records what it reads (null: nobody needs to know). */
  currentReads(): ReadSet | null;
}

/** The database's id and creation-time counters right after a commit. */
export interface Counters {
  nextDocId: number;
  lastCreationTime: number;
}

export interface EngineState {
  documents: Doc[];
  nextDocId: number;
  lastCreationTime: number;
  lastCommitTs: bigint;
}

// Shapes of the internal objects, as far as this module uses them.
interface DatabaseFake {
  _componentPath: string;
  _documents: Record<string, Doc>;
  _nextDocId: number;
  _lastCreationTime: number;
  _nextQueryId: number;
  _queryResults: Record<number, unknown>;
  _writes: Record<string, Doc | null>[];
  _schema: { tables: Map<string, { indexes: { indexDescriptor: string; fields: string[] }[] }> } | null;
  _encodeCursor(doc: Doc, fieldPaths: string[]): string;
  _docIsAfterCursor(doc: Doc, cursorKeys: FieldValue[], fieldPaths: string[], order: Order): number;
}

// A query as the `1.0/queryStream` and `1.0/queryPage` syscalls pass it.
interface RangeFilter extends RangeExpr {
  fieldPath: string;
}
type QuerySource =
  | { type: "FullTableScan"; tableName: string; order?: Order | null }
  | { type: "IndexRange"; indexName: string; range: RangeFilter[]; order?: Order | null }
  | { type: "Search" };
interface Query {
  source: QuerySource;
  operators: ({ filter: unknown } | { limit: number })[];
}
interface PageArgs {
  query: Query;
  cursor: string | null;
  endCursor?: string | null;
  pageSize: number;
  maximumRowsRead?: number;
  maximumBytesRead?: number;
}
interface Page {
  page: Doc[];
  isDone: boolean;
  continueCursor: string;
  splitCursor: string | null;
  pageStatus: "SplitRequired" | "SplitRecommended" | null;
}

// convex-test's own helpers (module functions, exported by EXPORT_SUFFIX).
interface Helpers {
  evaluateFieldPath(fieldPath: string, doc: Doc): FieldValue;
  evaluateRangeFilter(doc: Doc, expr: RangeFilter): boolean;
  evaluateFilter(doc: Doc, filter: unknown): boolean;
  evaluateQueryValue(value: unknown): FieldValue;
  validateIndexRangeExpression(source: QuerySource, fields: string[]): void;
}
let helpers: Helpers | undefined;
interface DbReads {
  get(tableName: string, id: string): Doc | null;
}
interface TransactionManager {
  _lastCommitTs: bigint;
}
interface MetricsLayer {
  metrics: Metrics;
}
interface MetricsTracker {
  _layers: MetricsLayer[];
}
type Method<T> = (this: T, ...args: never[]) => unknown;
interface Proto<T> {
  prototype: Record<string, Method<T>>;
}

/** Table name of a convex-test id ("<digits><table>"). */
export function tableNameFromId(id: string): string {
  return id.replace(/^[0-9]+/, "");
}

/**
 * Ids of each table's committed documents, in `_documents` key order, per database: convex-test
 * finds a table's documents by testing every id of every table on every query, so a call's
 * cost grew with the whole database. Built on first use, kept by `commit`, dropped on restore.
 */
const tableIds = new WeakMap<DatabaseFake, Map<string, Set<string>>>();

function idsByTable(db: DatabaseFake): Map<string, Set<string>> {
  let index = tableIds.get(db);
  if (index === undefined) {
    index = new Map();
    for (const id of Object.keys(db._documents)) idSet(index, tableNameFromId(id)).add(id);
    tableIds.set(db, index);
  }
  return index;
}

function idSet(index: Map<string, Set<string>>, table: string): Set<string> {
  let ids = index.get(table);
  if (ids === undefined) index.set(table, (ids = new Set()));
  return ids;
}

/** Each table's index trees per database, built on a query's first use, kept by `commit`. */
const indexTrees = new WeakMap<DatabaseFake, Map<string, Map<string, IndexTree>>>();

function indexTree(db: DatabaseFake, table: string, index: string, fields: string[]): IndexTree {
  let tables = indexTrees.get(db);
  if (tables === undefined) indexTrees.set(db, (tables = new Map()));
  let trees = tables.get(table);
  if (trees === undefined) tables.set(table, (trees = new Map()));
  let tree = trees.get(index);
  if (tree === undefined) {
    const ids = idsByTable(db).get(table) ?? new Set<string>();
    const docs = (function* () {
      for (const id of ids) yield db._documents[id]!;
    })();
    tree = new IndexTree(fields, (path, doc) => helpers!.evaluateFieldPath(path, doc), docs);
    trees.set(index, tree);
  }
  return tree;
}

/** A table scan or index range, ready to stream in order from any cursor. */
interface IndexedSource {
  /** convex-test's sort fields for this source (cursors encode these, plus `_id`). */
  sortFields: string[];
  order: Order;
  filterFn(doc: Doc): boolean;
  limit: number | null;
  /** The source's documents strictly after `cursorKeys` (all when null), in order. */
  stream(cursorKeys: FieldValue[] | null): Iterator<Doc>;
}

function indexedSource(db: DatabaseFake, query: Query): IndexedSource | null {
  const h = helpers!;
  const source = query.source;
  let table: string;
  let index: string;
  let fields: string[];
  let sortFields: string[];
  let range: RangeFilter[];
  if (source.type === "FullTableScan") {
    table = source.tableName;
    index = "by_creation_time";
    fields = ["_creationTime", "_id"];
    // convex-test sorts a scan by creation time alone; ids break no ties a table can have.
    sortFields = ["_creationTime"];
    range = [];
  } else if (source.type === "IndexRange") {
    const [tableName, indexName] = source.indexName.split(".") as [string, string];
    table = tableName;
    index = indexName;
    if (indexName === "by_creation_time") fields = ["_creationTime", "_id"];
    else if (indexName === "by_id") fields = ["_id"];
    else {
      const declared = db._schema?.tables.get(tableName)?.indexes.find((i) => i.indexDescriptor === indexName);
      if (declared === undefined) {
        throw new Error(
          `Cannot use index "${indexName}" for table "${tableName}" because it is not declared in the schema.`,
        );
      }
      fields = declared.fields.concat(["_creationTime", "_id"]);
    }
    h.validateIndexRangeExpression(source, fields);
    sortFields = fields;
    range = source.range;
  } else {
    return null;
  }
  const order: Order = source.order ?? "asc";
  const { lower, upper } = rangeBounds(range.map((r) => ({ type: r.type, value: h.evaluateQueryValue(r.value) })));
  const filters = query.operators.flatMap((op) => ("filter" in op ? [op.filter] : []));
  const limitOp = query.operators.find((op): op is { limit: number } => "limit" in op);
  const cursorFields = sortFields.includes("_id") ? sortFields : [...sortFields, "_id"];
  return {
    sortFields,
    order,
    limit: limitOp?.limit ?? null,
    filterFn: (doc) => filters.every((f) => h.evaluateFilter(doc, f)),
    stream(cursorKeys) {
      const tree = indexTree(db, table, index, fields);
      const reads = readsOf(db);
      if (reads !== null) {
        if (range.length === 0) reads.table(table);
        else reads.range(table, tree, lower, upper);
      }
      // Documents this transaction wrote, as it sees them now: they replace the tree's versions.
      const pending = new Set<string>();
      for (const layer of db._writes) {
        for (const id of Object.keys(layer)) if (tableNameFromId(id) === table) pending.add(id);
      }
      const start = cursorKeys === null ? null : new Bound(cursorKeys, order === "asc" ? 1 : -1);
      const committed = tree.scan(lower, upper, order, start, pending);
      if (pending.size === 0) return committed;
      const sign = order === "asc" ? 1 : -1;
      const compare = (a: Doc, b: Doc): number => {
        for (const fp of fields) {
          const c = compareField(h.evaluateFieldPath(fp, a), h.evaluateFieldPath(fp, b));
          if (c !== 0) return c * sign;
        }
        return 0;
      };
      const staged: Doc[] = [];
      for (const id of pending) {
        const doc = (db as unknown as DbReads).get(table, id);
        if (doc === null || !range.every((r) => h.evaluateRangeFilter(doc, r))) continue;
        if (cursorKeys !== null && db._docIsAfterCursor(doc, cursorKeys, cursorFields, order) <= 0) continue;
        staged.push(doc);
      }
      staged.sort(compare);
      return mergeSorted(committed, staged, compare);
    },
  };
}

/** A query stream that reads its source only as far as `queryNext` pulls. */
class LazyResults {
  private readonly docs: Iterator<Doc>;
  private returned = 0;
  constructor(private readonly source: IndexedSource) {
    this.docs = source.stream(null);
  }
  next(): { value: Doc | null; done: boolean } {
    const { limit, filterFn } = this.source;
    if (limit !== null && this.returned >= limit) return { value: null, done: true };
    for (let r = this.docs.next(); !r.done; r = this.docs.next()) {
      if (filterFn(r.value)) {
        this.returned += 1;
        return { value: r.value, done: false };
      }
    }
    return { value: null, done: true };
  }
}

/**
 * convex-test's `paginate`, over a stream that starts at the cursor instead of a sorted
 * copy of the whole range; the page, cursors, split and status come out the same.
 */
function paginateIndexed(db: DatabaseFake, source: IndexedSource, args: PageArgs): Page {
  const { cursor, endCursor, pageSize, maximumRowsRead, maximumBytesRead } = args;
  const { sortFields, order, filterFn } = source;
  const cursorFields = sortFields.includes("_id") ? sortFields : [...sortFields, "_id"];
  const parseCursor = (c: string | null | undefined): FieldValue[] | null =>
    c ? (JSON.parse(c) as (string | null)[]).map((k) => (k === null ? undefined : jsonToConvex(JSON.parse(k) as JSONValue))) : null;
  if (cursor === "_end_cursor") {
    return { page: [], isDone: true, continueCursor: "_end_cursor", splitCursor: null, pageStatus: null };
  }
  const hasEndBoundary = !!endCursor && endCursor !== "_end_cursor";
  const endCursorKeys = hasEndBoundary ? parseCursor(endCursor) : null;
  const docs = source.stream(parseCursor(cursor));
  const page: Doc[] = [];
  let continueCursor = "_end_cursor";
  let pageStatus: Page["pageStatus"] = null;
  let rowsRead = 0;
  let bytesRead = 0;
  const readDocCursors: string[] = [];
  let next = docs.next();
  while (!next.done) {
    const doc = next.value;
    next = docs.next();
    const isLastDoc = next.done === true;
    if (endCursorKeys !== null) {
      const cmp = db._docIsAfterCursor(doc, endCursorKeys, cursorFields, order);
      if (cmp >= 0) {
        if (cmp === 0) {
          rowsRead += 1;
          bytesRead += getDocumentSize(doc as Record<string, Value>);
          readDocCursors.push(db._encodeCursor(doc, cursorFields));
          if (filterFn(doc)) page.push(doc);
          continueCursor = db._encodeCursor(doc, cursorFields);
        }
        break;
      }
    }
    rowsRead += 1;
    bytesRead += getDocumentSize(doc as Record<string, Value>);
    readDocCursors.push(db._encodeCursor(doc, cursorFields));
    const hitLimit =
      (!!maximumRowsRead && rowsRead >= maximumRowsRead) || (!!maximumBytesRead && bytesRead >= maximumBytesRead);
    if (filterFn(doc)) page.push(doc);
    if (hitLimit) {
      pageStatus = "SplitRequired";
      continueCursor = db._encodeCursor(doc, cursorFields);
      break;
    }
    if (!endCursor && page.length >= pageSize) {
      if (!isLastDoc) continueCursor = db._encodeCursor(doc, cursorFields);
      break;
    }
  }
  let splitCursor: string | null = null;
  const middle = readDocCursors[Math.floor((readDocCursors.length - 1) / 2)];
  if (pageStatus === "SplitRequired" && readDocCursors.length >= 2) {
    splitCursor = middle!;
  } else if (pageStatus === null && rowsRead > pageSize + 1 && readDocCursors.length >= 2) {
    pageStatus = "SplitRecommended";
    splitCursor = middle!;
  }
  return { page, isDone: continueCursor === "_end_cursor", continueCursor, splitCursor, pageStatus };
}

let rootDb: DatabaseFake | undefined;
let readHook: (() => ReadSet | null) | undefined;

/** The running query's read set when it reads `db`; a component's reads count as "any". */
function readsOf(db: DatabaseFake): ReadSet | null {
  const reads = readHook?.() ?? null;
  if (reads !== null && db._componentPath !== "") {
    reads.any = true;
    return null;
  }
  return reads;
}
let manager: TransactionManager | undefined;

function wrap<T>(cls: Proto<T>, name: string, make: (orig: Method<T>) => Method<T>): void {
  const orig = cls.prototype[name];
  if (typeof orig !== "function") {
    throw new Error(`convex-test ${CONVEX_TEST_VERSION} internals changed: missing ${name}()`);
  }
  cls.prototype[name] = make(orig);
}

/**
 * Imports convex-test (already patched by the loader hook) and installs the hooks.
 * Must be called once, before any convexTest() instance runs a function.
 */
export async function loadConvexTest(hooks: InternalHooks): Promise<typeof import("convex-test").convexTest> {
  const mod = (await import("convex-test")) as Record<string, unknown>;
  const Db = mod["__cmDatabaseFake"] as Proto<DatabaseFake> | undefined;
  const Tm = mod["__cmTransactionManager"] as Proto<TransactionManager> | undefined;
  const Tracker = mod["__cmTransactionMetricsTracker"] as Proto<MetricsTracker> | undefined;
  if (Db === undefined || Tm === undefined || Tracker === undefined) {
    throw new Error("convex-test internals are not exposed; is the module hook registered?");
  }
  const helper = <F>(name: string): F => {
    const fn = mod[`__cm${name}`];
    if (typeof fn !== "function") throw new Error(`convex-test ${CONVEX_TEST_VERSION} internals changed: missing ${name}()`);
    return fn as F;
  };
  helpers = {
    evaluateFieldPath: helper("EvaluateFieldPath"),
    evaluateRangeFilter: helper("EvaluateRangeFilter"),
    evaluateFilter: helper("EvaluateFilter"),
    evaluateQueryValue: helper("EvaluateQueryValue"),
    validateIndexRangeExpression: helper("ValidateIndexRangeExpression"),
  };

  readHook = hooks.currentReads;
  let plainGet: Method<DatabaseFake> | undefined;
  let mergingNested = false;
  wrap(
    Db,
    "startTransaction",
    (orig) =>
      function (this: DatabaseFake, ...args) {
        if (this._componentPath === "") rootDb = this;
        return orig.apply(this, args);
      },
  );
  wrap(
    Db,
    "get",
    (orig) => {
      plainGet = orig;
      return function (this: DatabaseFake, ...args) {
        const [, id] = args as unknown as [string, string];
        readsOf(this)?.id(id);
        return orig.apply(this, args);
      };
    },
  );
  wrap(
    Db,
    "_addWrite",
    (orig) =>
      function (this: DatabaseFake, ...args) {
        const [id, doc] = args as unknown as [string, Doc | null];
        const table = tableNameFromId(id);
        if (!mergingNested && doc !== null && !table.startsWith("_")) hooks.validateWrite(table, doc);
        return orig.apply(this, args);
      },
  );
  wrap(
    Db,
    "commit",
    (orig) =>
      function (this: DatabaseFake, ...args) {
        const [commitTs] = args as unknown as [bigint | null];
        const topLevel = this._writes.length === 1 ? this._writes[0] : undefined;
        // The ids this commit changes, and their committed versions before it.
        const ids = topLevel === undefined ? [] : Object.keys(topLevel);
        const before = ids.map((id) => this._documents[id] ?? null);
        mergingNested = true;
        try {
          orig.apply(this, args);
        } finally {
          mergingNested = false;
        }
        if (topLevel === undefined) return;
        // Query streams never outlive a top-level transaction; convex-test keeps
        // their (partially consumed) result arrays forever otherwise.
        this._queryResults = {};
        // Each change once, for the id lists, the index trees, the WAL and the subscriptions.
        const changes: Change[] = ids.map((id, i) => ({
          id,
          table: tableNameFromId(id),
          prev: before[i]!,
          doc: this._documents[id] ?? null,
        }));
        const index = tableIds.get(this);
        if (index !== undefined) {
          // As `_documents` changed: a new id goes last, an updated one keeps its place.
          for (const c of changes) {
            const table = idSet(index, c.table);
            if (c.doc === null) table.delete(c.id);
            else table.add(c.id);
          }
        }
        const trees = indexTrees.get(this);
        if (trees !== undefined) {
          for (const c of changes) {
            const tableTrees = trees.get(c.table);
            if (tableTrees === undefined) continue;
            for (const tree of tableTrees.values()) tree.update(c.prev ?? undefined, c.doc ?? undefined);
          }
        }
        if (this._componentPath === "" && commitTs !== null && changes.length > 0) {
          hooks.onCommit(commitTs, changes, { nextDocId: this._nextDocId, lastCreationTime: this._lastCreationTime });
        }
      },
  );
  wrap(
    Db,
    "_iterateDocs",
    () =>
      // convex-test's order: committed documents in `_documents` order, then ids first
      // written in this transaction, layer by layer (Search results keep this order).
      function (this: DatabaseFake, ...args) {
        const [tableName, callback] = args as unknown as [string, (doc: Doc) => void];
        // Search and vector search read here: the whole table counts as read.
        readsOf(this)?.table(tableName);
        const committed = idsByTable(this).get(tableName);
        // The table is recorded whole: not each id again.
        const get = (id: string) => plainGet!.call(this, tableName as never, id as never) as Doc | null;
        if (committed !== undefined) {
          for (const id of committed) {
            const doc = get(id);
            if (doc !== null) callback(doc);
          }
        }
        const seen = new Set<string>();
        for (const layer of this._writes) {
          for (const id of Object.keys(layer)) {
            if (seen.has(id) || committed?.has(id) || tableNameFromId(id) !== tableName) continue;
            seen.add(id);
            const doc = get(id);
            if (doc !== null) callback(doc);
          }
        }
      },
  );
  wrap(
    Db,
    "startQuery",
    (orig) =>
      function (this: DatabaseFake, ...args) {
        const [query] = args as unknown as [Query];
        const source = indexedSource(this, query);
        if (source === null) return orig.apply(this, args);
        const id = this._nextQueryId;
        this._queryResults[id] = new LazyResults(source);
        this._nextQueryId += 1;
        return id;
      },
  );
  wrap(
    Db,
    "queryNext",
    (orig) =>
      function (this: DatabaseFake, ...args) {
        const [queryId] = args as unknown as [number];
        const results = this._queryResults[queryId];
        return results instanceof LazyResults ? results.next() : orig.apply(this, args);
      },
  );
  wrap(
    Db,
    "paginate",
    (orig) =>
      function (this: DatabaseFake, ...args) {
        const [pageArgs] = args as unknown as [PageArgs];
        const source = indexedSource(this, pageArgs.query);
        return source === null ? orig.apply(this, args) : paginateIndexed(this, source, pageArgs);
      },
  );
  wrap(
    Db,
    "rollbackWrites",
    (orig) =>
      function (this: DatabaseFake, ...args) {
        const topLevel = this._writes.length === 1;
        const result = orig.apply(this, args);
        if (topLevel) this._queryResults = {};
        return result;
      },
  );
  wrap(
    Tm,
    "begin",
    (orig) =>
      function (this: TransactionManager, ...args) {
        manager = this;
        return orig.apply(this, args);
      },
  );
  for (const [name, committed] of [
    ["commit", true],
    ["rollback", false],
  ] as const) {
    wrap(
      Tracker,
      name,
      (orig) =>
        function (this: MetricsTracker, ...args) {
          const root = this._layers.length === 1 ? { ...this._layers[0]!.metrics } : undefined;
          const result = orig.apply(this, args);
          if (root !== undefined) hooks.onTransactionEnd(root, committed);
          return result;
        },
    );
  }
  return mod["convexTest"] as typeof import("convex-test").convexTest;
}

export interface InternalHandle {
  exportState(): EngineState;
  restoreState(state: EngineState): void;
}

/**
 * Runs one empty transaction so the hooks above capture the root database and the
 * transaction manager of `t`, and returns accessors for them.
 */
export async function captureInternals(t: {
  run(handler: () => Promise<null>): Promise<unknown>;
}): Promise<InternalHandle> {
  rootDb = undefined;
  manager = undefined;
  await t.run(async () => null);
  const db = rootDb as DatabaseFake | undefined;
  const tm = manager as TransactionManager | undefined;
  if (db === undefined || tm === undefined) {
    throw new Error(`could not capture convex-test ${CONVEX_TEST_VERSION} internals`);
  }
  return {
    // Synchronous, so it is one consistent committed state: pending writes live in
    // `_writes`, and committed documents are never mutated in place.
    exportState: () => ({
      documents: Object.values(db._documents),
      nextDocId: db._nextDocId,
      lastCreationTime: db._lastCreationTime,
      lastCommitTs: tm._lastCommitTs,
    }),
    restoreState: (state) => {
      if (db._writes.length !== 0) throw new Error("cannot restore during a transaction");
      const documents: Record<string, Doc> = {};
      for (const doc of state.documents) documents[doc["_id"] as string] = doc;
      db._documents = documents;
      tableIds.delete(db);
      indexTrees.delete(db);
      db._nextDocId = state.nextDocId;
      db._lastCreationTime = state.lastCreationTime;
      tm._lastCommitTs = state.lastCommitTs;
    },
  };
}
