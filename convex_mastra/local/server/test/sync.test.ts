// The `convex` npm package's ConvexClient over the sync protocol (/api/<version>/sync), unchanged:
// it subscribes, sees a mutation made over the HTTP API, mutates, acts, and is refused internal
// functions without the admin key. (The Python client's side is tests/local/test_sync.py.)
import assert from "node:assert/strict";
import { test } from "node:test";
import { ConvexClient } from "convex/browser";
import { makeFunctionReference } from "convex/server";
import WebSocket from "ws";
import { ADMIN_KEY, call, getJson, makeFunctionsDir, startServer, stopServer, tempDir } from "./helpers.ts";

const functionsDir = makeFunctionsDir();
type Message = { author: string; body: string };
const byAuthor = makeFunctionReference<"query", { author: string }, Message[]>("messages:byAuthor");
const send = makeFunctionReference<"mutation", { author: string; body: string }>("messages:send");
const addViaAction = makeFunctionReference<"action", { body: string }, number>("actions:addViaAction");
const internalCount = makeFunctionReference<"query", Record<string, never>, number>("messages:internalCount");

async function until(condition: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 500 && !condition(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(condition(), `timed out waiting for ${what}`);
}

test("the convex npm ConvexClient subscribes, mutates and acts", async () => {
  const server = await startServer(functionsDir, tempDir("sync"));
  const client = new ConvexClient(server.url, { webSocketConstructor: WebSocket as unknown as typeof globalThis.WebSocket });
  try {
    const seen: Message[][] = [];
    const unsubscribe = client.onUpdate(byAuthor, { author: "npm" }, (messages) => seen.push(messages));
    await until(() => seen.length >= 1, "the first result");
    assert.deepEqual(seen[0], []);

    const r = await call(server, "mutation", "messages:send", { author: "npm", body: "over http" });
    assert.equal(r.json.status, "success", r.text);
    await until(() => seen.some((m) => m.map((x) => x.body).join() === "over http"), "the pushed update");

    await client.mutation(send, { author: "npm", body: "from the client" });
    // A mutation resolves only after the Transition that includes it: the result is there.
    assert.deepEqual(seen[seen.length - 1]!.map((m) => m.body), ["over http", "from the client"]);
    assert.ok((await client.action(addViaAction, { body: "from an action" })) >= 1);

    await assert.rejects(client.query(internalCount, {}), /Could not find public function for 'messages:internalCount'/);
    const admin = new ConvexClient(server.url, { webSocketConstructor: WebSocket as unknown as typeof globalThis.WebSocket });
    // Admin auth is an internal method of the npm client (the dashboard and CLI use it).
    (admin as unknown as { setAdminAuth(key: string): void }).setAdminAuth(ADMIN_KEY);
    assert.equal(typeof (await admin.query(internalCount, {})), "number");
    await admin.close();
    const npmSubscriptions = async () =>
      ((await getJson(`${server.url}/_local/subscriptions`)).json as { args: { author?: string } }[]).filter(
        (q) => q.args.author === "npm",
      ).length;
    assert.equal(await npmSubscriptions(), 1);
    unsubscribe();
    // The client sends Remove; the deployment drops the subscription.
    for (let i = 0; i < 200 && (await npmSubscriptions()) > 0; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(await npmSubscriptions(), 0);
  } finally {
    await client.close();
    assert.equal(await stopServer(server), 0);
  }
});
