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
//
// Restore writes `_documents`, `_nextDocId`, `_lastCreationTime` and the
// manager's `_lastCommitTs` directly, between transactions.
import type { Value } from "convex/values";

export const CONVEX_TEST_VERSION = "0.0.60";

export const EXPORT_SUFFIX =
  "\n;export { DatabaseFake as __cmDatabaseFake, TransactionManager as __cmTransactionManager, " +
  "TransactionMetricsTracker as __cmTransactionMetricsTracker };\n";

export type Doc = Record<string, Value | undefined>;

export interface Metrics {
  bytesRead: number;
  bytesWritten: number;
  documentsRead: number;
  documentsWritten: number;
}

export interface CommittedWrite {
  id: string;
  /** The committed document, or null when it was deleted. */
  doc: Doc | null;
}

export interface InternalHooks {
  /** A top-level transaction of the root component committed these changes. */
  onCommit(commitTs: bigint, writes: CommittedWrite[], counters: Counters): void;
  /** A new document version is about to be staged; throw to refuse it. */
  validateWrite(table: string, doc: Doc): void;
  /** A top-level transaction ended; `metrics` covers all of it (nested calls included). */
  onTransactionEnd(metrics: Metrics, committed: boolean): void;
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
  _queryResults: Record<number, unknown>;
  _writes: Record<string, Doc | null>[];
}
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

let rootDb: DatabaseFake | undefined;
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
        const ids = Object.keys(topLevel);
        const index = tableIds.get(this);
        if (index !== undefined) {
          // As `_documents` changed: a new id goes last, an updated one keeps its place.
          for (const id of ids) {
            const table = idSet(index, tableNameFromId(id));
            if (this._documents[id] === undefined) table.delete(id);
            else table.add(id);
          }
        }
        if (this._componentPath === "" && commitTs !== null && ids.length > 0) {
          hooks.onCommit(
            commitTs,
            ids.map((id) => ({ id, doc: this._documents[id] ?? null })),
            { nextDocId: this._nextDocId, lastCreationTime: this._lastCreationTime },
          );
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
        const committed = idsByTable(this).get(tableName);
        const get = (id: string) => (this as unknown as DbReads).get(tableName, id);
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
      db._nextDocId = state.nextDocId;
      db._lastCreationTime = state.lastCreationTime;
      tm._lastCommitTs = state.lastCommitTs;
    },
  };
}
