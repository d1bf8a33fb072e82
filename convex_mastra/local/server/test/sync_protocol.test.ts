// The sync protocol message by message, with a raw WebSocket: which commits re-run which
// subscriptions, scheduled functions' writes, authentication, removal, and the version chain.
// (Real clients are driven in sync.test.ts and tests/local/test_sync.py.)
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import WebSocket from "ws";
import {
  ADMIN_KEY,
  call,
  getJson,
  makeFunctionsDir,
  startServer,
  stopServer,
  tempDir,
  type RunningServer,
} from "./helpers.ts";

type Message = Record<string, any>;

/** One protocol session: sends client messages and awaits server ones in arrival order. */
class RawSession {
  private readonly inbox: Message[] = [];
  private wake: (() => void) | null = null;
  private querySet = 0;
  private constructor(readonly ws: WebSocket) {
    ws.on("message", (data) => {
      this.inbox.push(JSON.parse(String(data)) as Message);
      this.wake?.();
    });
  }

  static async open(url: string, sessionId = "00000000-0000-4000-8000-000000000001", connectionCount = 0): Promise<RawSession> {
    const ws = new WebSocket(`${url.replace(/^http/, "ws")}/api/sync`);
    await new Promise((resolve, reject) => ws.once("open", resolve).once("error", reject));
    const s = new RawSession(ws);
    s.send({ type: "Connect", sessionId, connectionCount, lastCloseReason: null });
    assert.equal((await s.next(5000, true)).type, "Ping", "Connect is answered at once");
    return s;
  }

  send(m: Message): void {
    this.ws.send(JSON.stringify(m));
  }

  /** The next message other than a Ping. */
  async next(timeoutMs = 5000, pings = false): Promise<Message> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = this.inbox.shift();
      if (m !== undefined && (pings || m.type !== "Ping")) return m;
      if (m !== undefined) continue;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error("no message");
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = null;
    }
  }

  /** Asserts nothing but Pings arrives for `ms`. */
  async quiet(ms: number): Promise<void> {
    await assert.rejects(this.next(ms), /no message/);
  }

  async subscribe(queries: Record<number, [string, Record<string, unknown>]>): Promise<Message> {
    const baseVersion = this.querySet;
    this.querySet += 1;
    const modifications = Object.entries(queries).map(([id, [udfPath, args]]) => ({
      type: "Add",
      queryId: Number(id),
      udfPath,
      args: [args],
    }));
    this.send({ type: "ModifyQuerySet", baseVersion, newVersion: this.querySet, modifications });
    return this.next();
  }

  async unsubscribe(queryIds: number[]): Promise<Message> {
    const baseVersion = this.querySet;
    this.querySet += 1;
    const modifications = queryIds.map((queryId) => ({ type: "Remove", queryId }));
    this.send({ type: "ModifyQuerySet", baseVersion, newVersion: this.querySet, modifications });
    return this.next();
  }

  close(): void {
    this.ws.close();
  }
}

/** QueryUpdated values of a Transition by query id. */
function updates(t: Message): Map<number, unknown> {
  assert.equal(t.type, "Transition", JSON.stringify(t));
  return new Map(t.modifications.filter((m: Message) => m.type === "QueryUpdated").map((m: Message) => [m.queryId, m.value]));
}

const tsOf = (version: Message): bigint => Buffer.from(version.ts, "base64").readBigUInt64LE();

describe("sync protocol", () => {
  let server: RunningServer;
  before(async () => {
    server = await startServer(makeFunctionsDir(), tempDir("sync-protocol"));
  });
  after(async () => {
    assert.equal(await stopServer(server), 0);
  });

  test("a commit re-runs only the subscriptions whose reads it wrote", async () => {
    const s = await RawSession.open(server.url);
    try {
      const first = updates(
        await s.subscribe({
          1: ["messages:countedByAuthor", { author: "ann" }],
          2: ["messages:countedByAuthor", { author: "bob" }],
        }),
      );
      const runsOf = (id: number, u: Map<number, unknown>) => (u.get(id) as { runs: number }).runs;
      const bobRuns = runsOf(2, first);

      assert.equal((await call(server, "mutation", "messages:send", { author: "ann", body: "hi" })).json.status, "success");
      const t = await s.next();
      const u = updates(t);
      assert.deepEqual([...u.keys()], [1], "bob's subscription did not re-run: its range was not written");
      assert.deepEqual((u.get(1) as { bodies: string[] }).bodies, ["hi"]);
      assert.ok(tsOf(t.endVersion) > tsOf(t.startVersion));

      // Another table: nothing re-runs, so nothing is sent.
      assert.equal((await call(server, "mutation", "messages:pair", { token: "t" })).json.status, "success");
      await s.quiet(300);

      assert.equal((await call(server, "mutation", "messages:send", { author: "bob", body: "yo" })).json.status, "success");
      const v = updates(await s.next());
      assert.deepEqual([...v.keys()], [2]);
      assert.equal(runsOf(2, v), bobRuns + 1, "re-run once for one commit");
    } finally {
      s.close();
    }
  });

  test("a scheduled function's write reaches the subscription", async () => {
    const s = await RawSession.open(server.url);
    try {
      const before = updates(await s.subscribe({ 1: ["messages:byAuthor", { author: "internal" }] })).get(1) as unknown[];
      const r = await call(server, "mutation", "messages:scheduleAdd", { body: "later" });
      assert.equal(r.json.status, "success");
      const after = updates(await s.next()).get(1) as { body: string }[];
      assert.equal(after.length, before.length + 1);
      assert.equal(after[after.length - 1]!.body, "later");
    } finally {
      s.close();
    }
  });

  test("a mutation over the socket: its response's ts is reached by the Transition carrying it", async () => {
    const s = await RawSession.open(server.url);
    try {
      await s.subscribe({ 7: ["messages:byAuthor", { author: "sock" }] });
      s.send({ type: "Mutation", requestId: 0, udfPath: "messages:send", args: [{ author: "sock", body: "m" }] });
      const response = await s.next();
      assert.equal(response.type, "MutationResponse");
      assert.equal(response.success, true);
      const t = await s.next();
      assert.ok(tsOf(t.endVersion) >= Buffer.from(response.ts, "base64").readBigUInt64LE());
      assert.deepEqual((updates(t).get(7) as { body: string }[]).map((m) => m.body), ["m"]);
    } finally {
      s.close();
    }
  });

  test("authentication: a wrong admin key is an AuthError; a user JWT is an identity without admin rights", async () => {
    const s = await RawSession.open(server.url);
    try {
      s.send({ type: "Authenticate", tokenType: "Admin", value: "not-the-key", baseVersion: 0 });
      const refused = await s.next();
      assert.equal(refused.type, "AuthError");
      assert.equal(refused.error, "The provided admin key was invalid for this instance");
      assert.ok(!JSON.stringify(refused).includes(ADMIN_KEY));
    } finally {
      s.close();
    }
    const u = await RawSession.open(server.url);
    try {
      const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString("base64url");
      const jwt = `${b64({ alg: "none" })}.${b64({ sub: "user-1", iss: "https://issuer.example" })}.`;
      u.send({ type: "Authenticate", tokenType: "User", value: jwt, baseVersion: 0 });
      const t = await u.next();
      assert.equal(t.type, "Transition");
      assert.equal(t.endVersion.identity, 1);
      const results = await u.subscribe({ 1: ["auth:whoami", {}], 2: ["messages:internalCount", {}] });
      assert.equal((updates(results).get(1) as { subject: string }).subject, "user-1");
      const failed = results.modifications.find((m: Message) => m.queryId === 2);
      assert.equal(failed.type, "QueryFailed");
      assert.match(failed.errorMessage, /Could not find public function for 'messages:internalCount'/);
    } finally {
      u.close();
    }
  });

  test("a mutation resent after a reconnect (same session id and request id) is answered, not run again", async () => {
    const mutation = { type: "Mutation", requestId: 0, udfPath: "messages:send", args: [{ author: "resent", body: "once" }] };
    const count = async () => (await call(server, "query", "messages:byAuthor", { author: "resent" })).json.value.length;
    const first = await RawSession.open(server.url, "00000000-0000-4000-8000-00000000000a");
    first.send(mutation);
    const answer = await first.next();
    assert.equal(answer.type, "MutationResponse");
    first.close();
    const again = await RawSession.open(server.url, "00000000-0000-4000-8000-00000000000a", 1);
    try {
      again.send(mutation);
      const resent = await again.next();
      assert.deepEqual(resent, answer, "the first run's answer: same id, same ts");
      assert.equal(await count(), 1);
    } finally {
      again.close();
    }
    const other = await RawSession.open(server.url, "00000000-0000-4000-8000-00000000000b");
    try {
      other.send(mutation);
      assert.equal((await other.next()).success, true);
      assert.equal(await count(), 2, "another session's request 0 is another mutation");
    } finally {
      other.close();
    }
  });

  test("a long action does not hold back the session's updates", async () => {
    const s = await RawSession.open(server.url);
    try {
      await s.subscribe({ 1: ["messages:byAuthor", { author: "during-action" }] });
      s.send({ type: "Action", requestId: 0, udfPath: "actions:sleep", args: [{ ms: 1500 }] });
      await new Promise((resolve) => setTimeout(resolve, 100));
      assert.equal((await call(server, "mutation", "messages:send", { author: "during-action", body: "x" })).json.status, "success");
      const t = await s.next();
      assert.equal(t.type, "Transition", "the update comes before the action's answer");
      assert.equal((updates(t).get(1) as unknown[]).length, 1);
      const done = await s.next();
      assert.equal(done.type, "ActionResponse");
      assert.equal(done.result, 1500);
    } finally {
      s.close();
    }
  });

  test("Remove answers QueryRemoved and the subscription is gone from /_local/subscriptions", async () => {
    const s = await RawSession.open(server.url);
    try {
      await s.subscribe({ 3: ["messages:byAuthor", { author: "gone" }] });
      const listed = async () =>
        ((await getJson(`${server.url}/_local/subscriptions`)).json as Message[]).filter((q) => q.args.author === "gone");
      assert.equal((await listed()).length, 1);
      const t = await s.unsubscribe([3]);
      assert.deepEqual(t.modifications, [{ type: "QueryRemoved", queryId: 3 }]);
      assert.equal((await listed()).length, 0);
    } finally {
      s.close();
    }
  });
});
