// Convex's WebSocket sync protocol on /api/sync (the Rust client, so the official Python
// client) and /api/<version>/sync (the `convex` npm client). Wire rules from
// `convex/src/browser/sync/protocol.ts` and ../shared/notes/live-updates.md:
// - Client: Connect, Authenticate {tokenType Admin|User|None, baseVersion}, ModifyQuerySet
//   {baseVersion, newVersion, modifications: Add|Remove}, Mutation, Action.
// - Server: Transition {startVersion, endVersion, modifications}, MutationResponse,
//   ActionResponse, AuthError, Ping. A version is {querySet, identity, ts}; each Transition
//   starts where the previous one ended; `ts` is base64 of a little-endian u64 and never
//   decreases. Values are Convex-encoded JSON with floats written as floats (`1.0`).
// - A mutation resolves on the client only once a Transition reaches its `ts`, so one
//   follows every mutation.
// Every top-level commit (HTTP, sync, actions' and scheduled functions' writes alike) is checked
// against what each subscribed query read in its latest run (src/reads.ts: index ranges, ids,
// whole tables); only the queries it touched re-run, and each session gets one Transition with
// the results that changed, at a timestamp all of its results hold at. A session's stale
// queries re-run in one turn of the engine's lock, and while earlier commits are still being
// made durable; the Transition waits for them. A mutation resent after a reconnect (same
// session id and request id) is answered from its first run.
import type { IncomingMessage } from "node:http";
import { performance } from "node:perf_hooks";
import type { Duplex } from "node:stream";
import type { UserIdentity } from "convex/server";
import { jsonToConvex, type JSONValue, type Value } from "convex/values";
import { WebSocketServer, type WebSocket } from "ws";
import type { Engine, RunResult } from "./engine.ts";
import { ReadSet, type Change } from "./reads.ts";
import type { FunctionInfo, FunctionKind } from "./modules.ts";
import { parseUdfPath } from "./udfPath.ts";
import { writeValue } from "./values.ts";

export interface SyncContext {
  /** The last commit's timestamp at start-up: Transition timestamps never go back. */
  initialTs: bigint;
  engine: Engine;
  functions: Map<string, FunctionInfo>;
  /** Whether `key` is the deployment's admin key (compared in constant time). */
  isAdminKey(key: string): boolean;
  /** The identity a user JWT claims (throws when it is not one). */
  identityFromJwt(token: string): Partial<UserIdentity>;
  /** Resolves once every commit so far is durable. */
  waitDurable(): Promise<void>;
}

const SYNC_PATH = /^\/api(\/[^/]+)?\/sync$/;
const PING_MS = 15_000;
/** Rounds of re-runs a Transition waits for one consistent timestamp (see `settle`). */
const MAX_ROUNDS = 4;
/** Answers kept per client session id, and client session ids kept (see `request`). */
const ANSWERS_PER_SESSION = 64;
const ANSWERED_SESSIONS = 1000;
const KIND_NAMES: Record<FunctionKind, string> = { query: "Query", mutation: "Mutation", action: "Action" };

/** `ts` on the wire: base64 of a little-endian u64. */
export function encodeTs(ts: bigint): string {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(ts);
  return b.toString("base64");
}

/** A mutation's or action's response as sent; `ts` is a successful mutation's commit. */
interface Answer {
  text: string;
  ts: bigint | null;
}

type QueryOutcome = RunResult | { ok: false; message: string; data?: Value; logLines: string[] };

interface Subscription {
  queryId: number;
  udfPath: string;
  args: JSONValue;
  /** What its latest run read (filled while it runs); null until it runs (again). */
  reads: ReadSet | null;
  /** A commit its result is known to hold at: no earlier than its latest run's snapshot. */
  runTs: bigint;
  /** The first commit since its latest run that wrote what it read: its result holds before it. */
  dirtyAt: bigint | null;
  /** Its latest result as a modification, and the part of it that decides "changed". */
  text: string;
  key: string | null;
  /** `key` of the result the client has (null: none yet). */
  sentKey: string | null;
}

class Session {
  id = "";
  querySet = 0;
  identity = 0;
  ts = 0n;
  admin = false;
  user: Partial<UserIdentity> | null = null;
  /** A re-run of the queries is queued and has not started. */
  refreshQueued = false;
  /** A mutation answered with this ts: a Transition reaching it is owed even if nothing changed. */
  owedTs: bigint | null = null;
  /** When the first commit that made one of its results stale landed (for the latency figures). */
  staleSince: number | null = null;
  readonly queries = new Map<number, Subscription>();
  /** Messages and refreshes of one session run one after another, so versions chain. */
  private chain: Promise<void> = Promise.resolve();

  constructor(readonly socket: WebSocket) {}

  enqueue(task: () => Promise<void>): void {
    this.chain = this.chain.then(task).catch((e: unknown) => this.fail(e));
  }

  fail(e: unknown): void {
    process.stderr.write(`convex-mastra: sync session ${this.id}: ${e instanceof Error ? e.stack : String(e)}\n`);
  }

  send(text: string): void {
    if (this.socket.readyState === this.socket.OPEN) this.socket.send(text);
  }

  version(querySet = this.querySet, identity = this.identity, ts = this.ts): string {
    return `{"querySet":${querySet},"identity":${identity},"ts":"${encodeTs(ts)}"}`;
  }
}

export class SyncServer {
  private readonly wss = new WebSocketServer({ noServer: true });
  private readonly sessions = new Set<Session>();
  private latestTs = 0n;
  private readonly pinger: NodeJS.Timeout;
  /** Each client session id's latest mutations' answers (see `request`). */
  private readonly answers = new Map<string, Map<number, Promise<Answer>>>();
  /** Commit -> Transition sent, ms, since the last `takeLatencies()`. */
  private latencies: number[] = [];

  constructor(private readonly ctx: SyncContext) {
    this.latestTs = ctx.initialTs;
    this.pinger = setInterval(() => {
      for (const s of this.sessions) s.send('{"type":"Ping"}');
    }, PING_MS);
    this.pinger.unref();
  }

  /** Takes an HTTP upgrade for the sync path; returns false for any other path. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean {
    const path = new URL(req.url ?? "/", "http://localhost").pathname;
    if (!SYNC_PATH.test(path)) return false;
    this.wss.handleUpgrade(req, socket, head, (ws) => this.accept(ws));
    return true;
  }

  /**
   * A top-level transaction committed `changes` at `ts`: the subscriptions whose reads they
   * touch are stale from `ts` on, and their sessions re-run them.
   */
  onCommit(ts: bigint, changes: readonly Change[]): void {
    if (ts > this.latestTs) this.latestTs = ts;
    const now = performance.now();
    for (const s of this.sessions) {
      let stale = false;
      for (const q of s.queries.values()) {
        // A query whose run has not begun reads this commit anyway (its read set is empty).
        if (q.reads === null || q.dirtyAt !== null || !q.reads.touchedBy(changes)) continue;
        q.dirtyAt = ts;
        stale = true;
      }
      if (stale) {
        s.staleSince ??= now;
        this.queueRefresh(s);
      }
    }
  }

  /** The live subscriptions, for GET /_local/subscriptions. */
  subscriptions(): { session: string; queryId: number; udfPath: string; args: JSONValue }[] {
    const out = [];
    for (const s of this.sessions) {
      for (const [queryId, q] of s.queries) out.push({ session: s.id, queryId, udfPath: q.udfPath, args: q.args });
    }
    return out;
  }

  /** Milliseconds from a commit to the Transition it caused, for each one sent since the last call. */
  takeLatencies(): number[] {
    const taken = this.latencies;
    this.latencies = [];
    return taken;
  }

  close(): void {
    clearInterval(this.pinger);
    for (const s of this.sessions) s.socket.terminate();
    this.wss.close();
  }

  private accept(ws: WebSocket): void {
    const session = new Session(ws);
    this.sessions.add(session);
    ws.on("message", (data) => {
      let message: Record<string, unknown>;
      try {
        message = JSON.parse(String(data)) as Record<string, unknown>;
      } catch {
        ws.close(1002, "invalid JSON");
        return;
      }
      session.enqueue(() => this.handle(session, message));
    });
    ws.on("close", () => this.sessions.delete(session));
    ws.on("error", () => this.sessions.delete(session));
  }

  private async handle(s: Session, m: Record<string, unknown>): Promise<void> {
    switch (m["type"]) {
      case "Connect":
        s.id = String(m["sessionId"] ?? "");
        // At once: the Rust client never sets TCP_NODELAY, so its first result would wait
        // for a delayed ACK otherwise.
        s.send('{"type":"Ping"}');
        return;
      case "Authenticate":
        return this.authenticate(s, m);
      case "ModifyQuerySet":
        return this.modifyQuerySet(s, m);
      case "Mutation":
        return this.request(s, m);
      case "Action":
        // Started in order (after an Authenticate sent before it), run beside the session's
        // later work: a long action must not hold back its updates.
        void this.request(s, m).catch((e: unknown) => s.fail(e));
        return;
      default:
        return; // Event and anything newer: nothing to do locally.
    }
  }

  private async authenticate(s: Session, m: Record<string, unknown>): Promise<void> {
    const baseVersion = Number(m["baseVersion"] ?? 0);
    const refuse = (error: string) => {
      s.send(JSON.stringify({ type: "AuthError", error, baseVersion, authUpdateAttempted: true }));
    };
    if (m["tokenType"] === "Admin") {
      if (!this.ctx.isAdminKey(String(m["value"] ?? ""))) return refuse("The provided admin key was invalid for this instance");
      s.admin = true;
      s.user = null;
    } else if (m["tokenType"] === "User") {
      try {
        s.user = this.ctx.identityFromJwt(String(m["value"] ?? ""));
      } catch (e) {
        return refuse((e as Error).message);
      }
      s.admin = false;
    } else {
      s.admin = false;
      s.user = null;
    }
    const start = s.version();
    s.identity = baseVersion + 1;
    // A new identity may see other results: every query runs again and is sent again.
    for (const q of s.queries.values()) {
      q.reads = null;
      q.sentKey = null;
    }
    await this.settle(s, start, []);
  }

  private async modifyQuerySet(s: Session, m: Record<string, unknown>): Promise<void> {
    const start = s.version();
    const removed: string[] = [];
    for (const mod of (m["modifications"] as Record<string, unknown>[] | undefined) ?? []) {
      const queryId = Number(mod["queryId"]);
      if (mod["type"] === "Add") {
        const args = mod["args"] as JSONValue[] | undefined;
        s.queries.set(queryId, {
          queryId,
          udfPath: String(mod["udfPath"]),
          args: args?.[0] ?? {},
          reads: null,
          runTs: 0n,
          dirtyAt: null,
          text: "",
          key: null,
          sentKey: null,
        });
      } else if (mod["type"] === "Remove") {
        s.queries.delete(queryId);
        removed.push(`{"type":"QueryRemoved","queryId":${queryId}}`);
      }
    }
    s.querySet = Number(m["newVersion"] ?? s.querySet + 1);
    await this.settle(s, start, removed);
  }

  private async request(s: Session, m: Record<string, unknown>): Promise<void> {
    const requestId = Number(m["requestId"]);
    if (m["type"] === "Action") {
      s.send((await this.call(s, "action", requestId, m)).text);
      return;
    }
    // A client resends its unanswered mutations after a reconnect, under the same session id and
    // request id: answer those from the first run (waiting for it if it is still running).
    const answers = this.answersOf(s.id);
    let answer = answers.get(requestId);
    if (answer === undefined) {
      answer = this.call(s, "mutation", requestId, m);
      answers.set(requestId, answer);
      answer.catch(() => answers.delete(requestId));
      if (answers.size > ANSWERS_PER_SESSION) answers.delete(answers.keys().next().value!);
    }
    const { text, ts } = await answer;
    s.send(text);
    // The client completes a mutation on the first Transition at or past its ts, so one is
    // owed whether or not the mutation changed a result of this session.
    if (ts !== null) {
      if (s.owedTs === null || ts > s.owedTs) s.owedTs = ts;
      this.queueRefresh(s);
    }
  }

  /** The answers to a client session's latest mutations; the least recently used session's go first. */
  private answersOf(sessionId: string): Map<number, Promise<Answer>> {
    let answers = this.answers.get(sessionId);
    if (answers !== undefined) this.answers.delete(sessionId);
    else if (this.answers.size >= ANSWERED_SESSIONS) this.answers.delete(this.answers.keys().next().value!);
    this.answers.set(sessionId, (answers ??= new Map()));
    return answers;
  }

  /** Runs a mutation or action and words its response; `ts` is a successful mutation's. */
  private async call(s: Session, kind: FunctionKind, requestId: number, m: Record<string, unknown>): Promise<Answer> {
    const args = (m["args"] as JSONValue[] | undefined)?.[0] ?? {};
    const call = this.prepare(s, kind, String(m["udfPath"]), args);
    const result = "refused" in call ? call.refused : await this.ctx.engine.run(kind, call.key, call.args, s.user);
    await this.ctx.waitDurable();
    const type = kind === "mutation" ? "MutationResponse" : "ActionResponse";
    const logLines = JSON.stringify(result.logLines);
    if (!result.ok) {
      const errorData = result.data === undefined ? "" : `,"errorData":${writeValue(result.data, "convex_encoded_json")}`;
      const text = `{"type":"${type}","requestId":${requestId},"success":false,"result":${JSON.stringify(result.message)}${errorData},"logLines":${logLines}}`;
      return { text, ts: null };
    }
    const ts = kind === "mutation" ? this.latestTs : null;
    const tsField = ts === null ? "" : `,"ts":"${encodeTs(ts)}"`;
    const text = `{"type":"${type}","requestId":${requestId},"success":true,"result":${writeValue(result.value, "convex_encoded_json")}${tsField},"logLines":${logLines}}`;
    return { text, ts };
  }

  /** Checks a call as the HTTP API does; refusals read as its errors do. */
  private prepare(
    s: Session,
    kind: FunctionKind,
    udfPath: string,
    rawArgs: JSONValue,
  ): { key: string; args: Record<string, Value> } | { refused: { ok: false; message: string; data?: Value; logLines: string[] } } {
    const refuse = (message: string) => ({ refused: { ok: false as const, message, logLines: [] } });
    const udf = parseUdfPath(udfPath);
    if ("error" in udf) return refuse(udf.error);
    const info = this.ctx.functions.get(udf.key);
    if (info === undefined || (info.visibility === "internal" && !s.admin)) {
      return refuse(`Could not find public function for '${udf.stripped}'.`);
    }
    if (info.kind !== kind) {
      return refuse(`Trying to execute ${udf.canonical} as ${KIND_NAMES[kind]}, but it is defined as ${KIND_NAMES[info.kind]}.`);
    }
    let args: Value;
    try {
      args = jsonToConvex(rawArgs);
    } catch (e) {
      return refuse(`Invalid arguments for ${udf.canonical}: ${(e as Error).message}`);
    }
    if (typeof args !== "object" || args === null || Array.isArray(args) || args instanceof ArrayBuffer) {
      return refuse(`The arguments to a Convex function must be an object. Received: ${JSON.stringify(rawArgs)}`);
    }
    return { key: udf.key, args: args as Record<string, Value> };
  }

  /** Runs the session's queries that never ran or went stale, recording what each reads. */
  private async evaluate(s: Session): Promise<void> {
    const due = [...s.queries.values()].filter((q) => q.reads === null || q.dirtyAt !== null);
    if (due.length === 0) return;
    const batch: { q: Subscription; udfPath: string; args: Record<string, Value>; reads: ReadSet }[] = [];
    const done: [Subscription, QueryOutcome][] = [];
    for (const q of due) {
      // From here a commit that writes what it reads makes it stale again.
      q.reads = new ReadSet();
      q.dirtyAt = null;
      const call = this.prepare(s, "query", q.udfPath, q.args);
      if ("refused" in call) done.push([q, call.refused]);
      else batch.push({ q, udfPath: call.key, args: call.args, reads: q.reads });
    }
    const results = batch.length === 0 ? [] : await this.ctx.engine.runQueries(batch, s.user);
    batch.forEach((b, i) => done.push([b.q, results[i]!]));
    // Every run saw at least the commits before it; none saw a later one.
    const ts = this.latestTs;
    for (const [q, result] of done) {
      const logLines = JSON.stringify(result.logLines);
      const errorData =
        result.ok || result.data === undefined ? "" : `,"errorData":${writeValue(result.data, "convex_encoded_json")}`;
      // What decides "changed" is the answer; log lines differ between runs.
      q.key = result.ok
        ? `"value":${writeValue(result.value, "convex_encoded_json")}`
        : `"errorMessage":${JSON.stringify(result.message)}${errorData}`;
      q.text = `{"type":"${result.ok ? "QueryUpdated" : "QueryFailed"}","queryId":${q.queryId},${q.key},"logLines":${logLines},"journal":null}`;
      q.runTs = ts;
    }
  }

  /**
   * The newest timestamp every result of the session holds at (each from its run until the
   * commit that made it stale), never before the session's last one; null if there is none.
   */
  private consistentTs(s: Session): bigint | null {
    let lo = s.ts;
    let hi = this.latestTs;
    for (const q of s.queries.values()) {
      if (q.reads === null) return null;
      if (q.runTs > lo) lo = q.runTs;
      if (q.dirtyAt !== null && q.dirtyAt - 1n < hi) hi = q.dirtyAt - 1n;
    }
    return lo <= hi ? hi : null;
  }

  /**
   * Re-runs what is stale until one timestamp holds for all of the session's results, then
   * sends one Transition from `start` with the results that changed (and `extra`). Actions'
   * and scheduled functions' commits can land between the runs, so it may take a few rounds;
   * after MAX_ROUNDS it sends at the newest run's timestamp, and the refresh those commits
   * queued corrects what they changed.
   */
  private async settle(s: Session, start: string, extra: string[]): Promise<void> {
    let ts: bigint | null = null;
    for (let round = 0; ts === null && round < MAX_ROUNDS; round++) {
      await this.evaluate(s);
      ts = this.consistentTs(s);
    }
    if (ts === null) {
      ts = s.ts;
      for (const q of s.queries.values()) if (q.runTs > ts) ts = q.runTs;
    }
    const modifications = extra;
    for (const q of s.queries.values()) {
      if (q.key === q.sentKey) continue;
      modifications.push(q.text);
      q.sentKey = q.key;
    }
    const owed = s.owedTs !== null && ts >= s.owedTs;
    const staleSince = s.staleSince;
    if (![...s.queries.values()].some((q) => q.dirtyAt !== null)) s.staleSince = null;
    if (modifications.length === 0 && !owed && start === s.version(undefined, undefined, ts)) return;
    if (owed) s.owedTs = null;
    // Results may be computed before their commits are durable, never sent before.
    await this.ctx.waitDurable();
    s.ts = ts;
    s.send(`{"type":"Transition","startVersion":${start},"endVersion":${s.version()},"modifications":[${modifications.join(",")}]}`);
    if (staleSince !== null) this.latencies.push(performance.now() - staleSince);
  }

  /** One refresh behind what the session is doing; one waiting already reads the newest state. */
  private queueRefresh(s: Session): void {
    if (s.refreshQueued) return;
    s.refreshQueued = true;
    s.enqueue(async () => {
      s.refreshQueued = false;
      await this.settle(s, s.version(), []);
    });
  }
}
