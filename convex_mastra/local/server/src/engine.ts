// Runs Convex functions on convex-test, one call at a time for queries and
// mutations, and reports each call's result, log lines and read/write counters.
import { AsyncLocalStorage } from "node:async_hooks";
import { Console } from "node:console";
import { basename } from "node:path";
import { performance } from "node:perf_hooks";
import { setImmediate } from "node:timers";
import { pathToFileURL } from "node:url";
import { inspect } from "node:util";
import type { UserIdentity } from "convex/server";
import type { Value } from "convex/values";
import {
  captureInternals,
  loadConvexTest,
  type CommittedWrite,
  type Counters,
  type EngineState,
  type InternalHandle,
  type Metrics,
} from "./internals.ts";
import { validateDocument } from "./limits.ts";
import type { ReadSet } from "./reads.ts";
import type { FunctionKind, LoadedFunctions } from "./modules.ts";
import type { CallStats } from "./stats.ts";

export type RunResult =
  | { ok: true; value: Value; stats: CallStats; logLines: string[] }
  | {
      ok: false;
      /** "Uncaught Error: boom", as the backend words uncaught exceptions. */
      message: string;
      /** Stack frames inside the functions folder, backend style ("    at f (../convex/a.ts:1:2)"). */
      frames: string;
      /** Present only for ConvexError. */
      data?: Value;
      stats: CallStats;
      logLines: string[];
    };

interface CallContext extends CallStats {
  closed: boolean;
  logLines: string[];
  /** Where a query records what it reads (the sync server's subscriptions need it). */
  reads: ReadSet | null;
}

type FunctionPath = { componentPath: string; udfPath: string };
type Runner = (path: FunctionPath, args: Record<string, Value>) => Promise<Value>;
interface Accessor {
  queryFromPath: Runner;
  mutationFromPath: Runner;
  actionFromPath: Runner;
  withIdentity(identity: Partial<UserIdentity>): Accessor;
  run(handler: (ctx: ImportCtx) => Promise<null>): Promise<unknown>;
}
interface ImportCtx {
  db: { insert(table: string, doc: Record<string, Value>): Promise<string> };
}

const MAX_LOG_LINES = 256;
const callStorage = new AsyncLocalStorage<CallContext>();

/**
 * Function code's console output becomes the call's logLines (formatted like the
 * Convex runtime: "[LOG] 'text' 42"); everything else goes to stderr, since
 * stdout carries only the READY line. Call before importing any user module.
 */
export function installConsole(): void {
  const fallback = new Console({ stdout: process.stderr, stderr: process.stderr });
  const captured = Object.create(fallback) as Record<string, unknown>;
  const levels = { log: "LOG", info: "INFO", warn: "WARN", error: "ERROR", debug: "DEBUG" } as const;
  for (const [method, level] of Object.entries(levels)) {
    captured[method] = (...args: unknown[]) => {
      const call = callStorage.getStore();
      if (call === undefined || call.closed) {
        (fallback[method as keyof typeof levels] as (...a: unknown[]) => void)(...args);
        return;
      }
      if (call.logLines.length < MAX_LOG_LINES) {
        const text = args.map((a) => (typeof a === "string" ? `'${a}'` : inspect(a, { depth: 5 }))).join(" ");
        call.logLines.push(`[${level}] ${text}`);
      } else if (call.logLines.length === MAX_LOG_LINES) {
        call.logLines.push(`[WARN] Log overflow (maximum ${MAX_LOG_LINES}). Remaining log lines omitted.`);
      }
    };
  }
  globalThis.console = captured as unknown as Console;
}

/**
 * Serializes queries and mutations in arrival order (convex-test would too, but unfairly).
 *
 * Each one starts in an event-loop turn of its own. Chained directly, queued transactions ran
 * back to back in microtasks, so while a queue of them drained the server accepted no
 * connection and read no request: under steady load from keep-alive clients, a new connection
 * waited behind hundreds of calls (tens of seconds) and hit its client's timeout.
 */
class FifoLock {
  private tail: Promise<unknown> = Promise.resolve();
  run<T>(fn: () => Promise<T>): Promise<T> {
    const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));
    const result = this.tail.then(nextTurn).then(fn);
    this.tail = result.catch(() => undefined);
    return result;
  }
}

function userFrames(stack: string | undefined, functionsDir: string): string {
  if (stack === undefined) return "";
  const dirUrl = `${pathToFileURL(functionsDir).href}/`;
  const dirPath = `${functionsDir}/`;
  const shown = `../${basename(functionsDir)}/`;
  return stack
    .split("\n")
    .filter((l) => /^\s+at /.test(l) && (l.includes(dirUrl) || l.includes(dirPath)) && !l.includes("/node_modules/"))
    .map((l) => `${l.replaceAll(dirUrl, shown).replaceAll(dirPath, shown)}\n`)
    .join("");
}

function describeError(e: unknown, functionsDir: string): { message: string; frames: string; data?: Value } {
  if (typeof e !== "object" || e === null) return { message: `Uncaught ${String(e)}`, frames: "" };
  const err = e as { name?: unknown; message?: unknown; stack?: string; data?: Value };
  const name = typeof err.name === "string" ? err.name : "";
  const text = typeof err.message === "string" ? err.message : "";
  const message = name && text ? `Uncaught ${name}: ${text}` : `Uncaught ${name || text}`.trimEnd();
  const frames = userFrames(err.stack, functionsDir);
  if (Symbol.for("ConvexError") in err) return { message, frames, data: err.data ?? null };
  return { message, frames };
}

export interface EngineOptions {
  functionsDir: string;
  loaded: LoadedFunctions;
  /** Receives every committed top-level transaction, in commit order. */
  onCommit: (commitTs: bigint, writes: CommittedWrite[], counters: Counters) => void;
}

export class Engine {
  private readonly lock = new FifoLock();
  private readonly identities = new Map<string, Accessor>();

  private constructor(
    private readonly root: Accessor,
    private readonly internals: InternalHandle,
    private readonly functionsDir: string,
  ) {}

  static async create(options: EngineOptions): Promise<Engine> {
    const convexTest = await loadConvexTest({
      onCommit: options.onCommit,
      validateWrite: validateDocument,
      onTransactionEnd: (metrics: Metrics, committed: boolean) => {
        const call = callStorage.getStore();
        if (call === undefined || call.closed) return;
        call.documentsRead += metrics.documentsRead;
        call.bytesRead += metrics.bytesRead;
        if (committed) {
          call.documentsWritten += metrics.documentsWritten;
          call.bytesWritten += metrics.bytesWritten;
        }
      },
      currentReads: () => {
        const call = callStorage.getStore();
        return call === undefined || call.closed ? null : call.reads;
      },
    });
    const t = convexTest({
      schema: options.loaded.schema,
      modules: options.loaded.modules,
      transactionLimits: true,
    }) as unknown as Accessor;
    const internals = await captureInternals(t);
    return new Engine(t, internals, options.functionsDir);
  }

  exportState(): EngineState {
    return this.internals.exportState();
  }

  restoreState(state: EngineState): void {
    this.internals.restoreState(state);
  }

  private accessor(identity: Partial<UserIdentity> | null): Accessor {
    if (identity === null) return this.root;
    const key = JSON.stringify(identity);
    let accessor = this.identities.get(key);
    if (accessor === undefined) {
      if (this.identities.size >= 1000) this.identities.clear();
      accessor = this.root.withIdentity(identity);
      this.identities.set(key, accessor);
    }
    return accessor;
  }

  /**
   * Insert `documents` into `table` in one transaction without running any
   * function, like `npx convex import --append`: a fast way to seed big
   * datasets (a function inserting them would look each row up first).
   */
  async importDocuments(table: string, documents: Record<string, Value>[]): Promise<number> {
    await this.lock.run(() =>
      this.root.run(async (ctx) => {
        for (const doc of documents) await ctx.db.insert(table, doc);
        return null;
      }),
    );
    return documents.length;
  }

  async run(
    kind: FunctionKind,
    udfPath: string,
    args: Record<string, Value>,
    identity: Partial<UserIdentity> | null,
  ): Promise<RunResult> {
    const execute = () => this.execute(kind, udfPath, args, identity, null);
    return kind === "action" ? execute() : this.lock.run(execute);
  }

  /**
   * Runs queries one after another in one turn of the lock, so no HTTP or sync mutation commits
   * between them (actions' and scheduled functions' can: they do not take this lock). Each
   * records what it reads in its `reads`.
   */
  async runQueries(
    queries: { udfPath: string; args: Record<string, Value>; reads: ReadSet }[],
    identity: Partial<UserIdentity> | null,
  ): Promise<RunResult[]> {
    return this.lock.run(async () => {
      const results: RunResult[] = [];
      for (const q of queries) {
        // Queries chain in microtasks: let connections in and requests be read between them.
        if (results.length % 32 === 31) await new Promise<void>((resolve) => setImmediate(resolve));
        results.push(await this.execute("query", q.udfPath, q.args, identity, q.reads));
      }
      return results;
    });
  }

  private async execute(
    kind: FunctionKind,
    udfPath: string,
    args: Record<string, Value>,
    identity: Partial<UserIdentity> | null,
    reads: ReadSet | null,
  ): Promise<RunResult> {
    const accessor = this.accessor(identity);
    const runner =
      kind === "query"
        ? accessor.queryFromPath
        : kind === "mutation"
          ? accessor.mutationFromPath
          : accessor.actionFromPath;
    const call: CallContext = {
      closed: false,
      logLines: [],
      reads,
      documentsRead: 0,
      documentsWritten: 0,
      bytesRead: 0,
      bytesWritten: 0,
      engineMs: 0,
    };
    const result = await callStorage.run(call, async (): Promise<RunResult> => {
      const start = performance.now();
      try {
        const value = await runner({ componentPath: "", udfPath }, args);
        call.engineMs = performance.now() - start;
        return { ok: true, value: value ?? null, stats: call, logLines: call.logLines };
      } catch (e) {
        call.engineMs = performance.now() - start;
        return { ok: false, ...describeError(e, this.functionsDir), stats: call, logLines: call.logLines };
      } finally {
        // Scheduled functions inherit this context; they must not count here.
        call.closed = true;
      }
    });
    result.stats = {
      documentsRead: call.documentsRead,
      documentsWritten: call.documentsWritten,
      bytesRead: call.bytesRead,
      bytesWritten: call.bytesWritten,
      engineMs: Math.round(call.engineMs * 1000) / 1000,
    };
    return result;
  }
}
