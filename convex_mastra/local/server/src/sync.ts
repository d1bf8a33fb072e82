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
// After each commit (HTTP, sync, actions' and scheduled functions' writes alike: the engine
// reports every top-level commit) every subscribed query is re-run, and each session gets one
// Transition with the results that changed. Re-running all of them is the simple rule; what
// it costs with many subscriptions is in docs/benchmarks.md.
import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import type { UserIdentity } from "convex/server";
import { jsonToConvex, type JSONValue, type Value } from "convex/values";
import { WebSocketServer, type WebSocket } from "ws";
import type { Engine, RunResult } from "./engine.ts";
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
const KIND_NAMES: Record<FunctionKind, string> = { query: "Query", mutation: "Mutation", action: "Action" };

/** `ts` on the wire: base64 of a little-endian u64. */
export function encodeTs(ts: bigint): string {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(ts);
  return b.toString("base64");
}

interface Subscription {
  udfPath: string;
  args: JSONValue;
  /** The last modification sent for it (its JSON text), to send only what changed. */
  last: string | null;
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
  /** A mutation answered since the last Transition: the next one goes out even if empty. */
  transitionOwed = false;
  readonly queries = new Map<number, Subscription>();
  /** Messages and refreshes of one session run one after another, so versions chain. */
  private chain: Promise<void> = Promise.resolve();

  constructor(readonly socket: WebSocket) {}

  enqueue(task: () => Promise<void>): void {
    this.chain = this.chain.then(task).catch((e: unknown) => {
      process.stderr.write(`convex-mastra: sync session ${this.id}: ${e instanceof Error ? e.stack : String(e)}\n`);
    });
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
  private refreshing = false;
  private readonly pinger: NodeJS.Timeout;

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

  /** A top-level transaction committed at `ts`: re-run the subscriptions. */
  onCommit(ts: bigint): void {
    if (ts > this.latestTs) this.latestTs = ts;
    if (!this.refreshing) {
      this.refreshing = true;
      setImmediate(() => this.refreshAll());
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
      case "Action":
        return this.request(s, m);
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
    // A new identity may see other results: every query runs again under it.
    const modifications = await this.evaluate(s, [...s.queries.keys()], true);
    this.transition(s, start, modifications);
  }

  private async modifyQuerySet(s: Session, m: Record<string, unknown>): Promise<void> {
    const start = s.version();
    const added: number[] = [];
    const modifications: string[] = [];
    for (const mod of (m["modifications"] as Record<string, unknown>[] | undefined) ?? []) {
      const queryId = Number(mod["queryId"]);
      if (mod["type"] === "Add") {
        const args = mod["args"] as JSONValue[] | undefined;
        s.queries.set(queryId, { udfPath: String(mod["udfPath"]), args: args?.[0] ?? {}, last: null });
        added.push(queryId);
      } else if (mod["type"] === "Remove") {
        s.queries.delete(queryId);
        modifications.push(`{"type":"QueryRemoved","queryId":${queryId}}`);
      }
    }
    s.querySet = Number(m["newVersion"] ?? s.querySet + 1);
    modifications.push(...(await this.evaluate(s, added, true)));
    this.transition(s, start, modifications);
  }

  private async request(s: Session, m: Record<string, unknown>): Promise<void> {
    const kind: FunctionKind = m["type"] === "Mutation" ? "mutation" : "action";
    const requestId = Number(m["requestId"]);
    const args = (m["args"] as JSONValue[] | undefined)?.[0] ?? {};
    const result = await this.run(s, kind, String(m["udfPath"]), args);
    await this.ctx.waitDurable();
    const type = kind === "mutation" ? "MutationResponse" : "ActionResponse";
    const logLines = JSON.stringify(result.logLines);
    if (result.ok) {
      const ts = kind === "mutation" ? `,"ts":"${encodeTs(this.latestTs)}"` : "";
      s.send(
        `{"type":"${type}","requestId":${requestId},"success":true,"result":${writeValue(result.value, "convex_encoded_json")}${ts},"logLines":${logLines}}`,
      );
    } else {
      const errorData = result.data === undefined ? "" : `,"errorData":${writeValue(result.data, "convex_encoded_json")}`;
      s.send(
        `{"type":"${type}","requestId":${requestId},"success":false,"result":${JSON.stringify(result.message)}${errorData},"logLines":${logLines}}`,
      );
    }
    // The client completes the mutation on the first Transition at or past its ts: the
    // session's next refresh (the one its commit queued, if it wrote) sends one whatever changed.
    if (kind === "mutation") this.queueRefresh(s, true);
  }

  /** Runs a function as this session may; refusals read as the HTTP API's do. */
  private async run(
    s: Session,
    kind: FunctionKind,
    udfPath: string,
    rawArgs: JSONValue,
  ): Promise<RunResult | { ok: false; message: string; data?: Value; logLines: string[] }> {
    const refuse = (message: string) => ({ ok: false as const, message, logLines: [] });
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
    return this.ctx.engine.run(kind, udf.key, args as Record<string, Value>, s.user);
  }

  /** Runs the given queries; returns the modifications of those whose result changed (all if `all`). */
  private async evaluate(s: Session, queryIds: number[], all: boolean): Promise<string[]> {
    const out: string[] = [];
    for (const queryId of queryIds) {
      const q = s.queries.get(queryId);
      if (q === undefined) continue;
      const result = await this.run(s, "query", q.udfPath, q.args);
      const logLines = JSON.stringify(result.logLines);
      const errorData =
        result.ok || result.data === undefined ? "" : `,"errorData":${writeValue(result.data, "convex_encoded_json")}`;
      // What decides "changed" is the answer; log lines differ between runs.
      const key = result.ok
        ? `"value":${writeValue(result.value, "convex_encoded_json")}`
        : `"errorMessage":${JSON.stringify(result.message)}${errorData}`;
      const type = result.ok ? "QueryUpdated" : "QueryFailed";
      const text = `{"type":"${type}","queryId":${queryId},${key},"logLines":${logLines},"journal":null}`;
      if (all || q.last !== key) out.push(text);
      q.last = key;
    }
    return out;
  }

  private transition(s: Session, start: string, modifications: string[], always = false): void {
    const ts = this.latestTs > s.ts ? this.latestTs : s.ts;
    if (!always && modifications.length === 0 && ts === s.ts && start === s.version(undefined, undefined, ts)) return;
    s.ts = ts;
    s.send(`{"type":"Transition","startVersion":${start},"endVersion":${s.version()},"modifications":[${modifications.join(",")}]}`);
  }

  private refreshAll(): void {
    this.refreshing = false;
    for (const s of this.sessions) if (s.queries.size > 0) this.queueRefresh(s, false);
  }

  /**
   * One re-run of the session's queries behind what it is doing (its Transitions must chain).
   * A session that already has one waiting needs no second: it reads the state as of when it
   * runs. `owed`: send a Transition even if nothing changed.
   */
  private queueRefresh(s: Session, owed: boolean): void {
    if (owed) s.transitionOwed = true;
    if (s.refreshQueued) return;
    s.refreshQueued = true;
    s.enqueue(async () => {
      s.refreshQueued = false;
      await this.ctx.waitDurable();
      const always = s.transitionOwed;
      s.transitionOwed = false;
      const start = s.version();
      const modifications = await this.evaluate(s, [...s.queries.keys()], false);
      this.transition(s, start, modifications, always);
    });
  }
}
