// HTTP API behaviour: envelopes, value formats, auth, limits, stats, delay.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  admin,
  call,
  getJson,
  makeFunctionsDir,
  post,
  startServer,
  stopServer,
  tempDir,
  type RunningServer,
} from "./helpers.ts";

let server: RunningServer;

before(async () => {
  server = await startServer(makeFunctionsDir(), tempDir("data"));
});
after(async () => {
  assert.equal(await stopServer(server), 0);
});

describe("envelopes", () => {
  test("success carries value and logLines", async () => {
    const r = await call(server, "query", "errors:logs", { n: 2 });
    assert.equal(r.status, 200);
    assert.deepEqual(r.json, { status: "success", value: 2, logLines: ["[LOG] 'hello' 2", "[WARN] { a: 1 }"] });
    assert.match(r.text, /"value":2\.0/, "floats are written like the Rust backend");
  });

  test("plain error: HTTP 200, errorMessage, no errorData", async () => {
    const r = await call(server, "query", "errors:fail");
    assert.equal(r.status, 200);
    assert.equal(r.json.status, "error");
    assert.match(r.json.errorMessage, /^\[Request ID: [0-9a-f]{16}\] Server Error\nUncaught Error: plain failure\n/);
    assert.ok(!("errorData" in r.json));
  });

  test("ConvexError: errorData in the requested format, writes rolled back", async () => {
    const before = (await call(server, "query", "messages:docs")).json.value.length;
    const clean = await call(server, "mutation", "errors:convexFail");
    assert.equal(clean.json.status, "error");
    assert.match(clean.json.errorMessage, /Uncaught ConvexError: /);
    assert.deepEqual(clean.json.errorData, { code: "NOT_FOUND", n: "5" });
    const encoded = await call(server, "mutation", "errors:convexFail", {}, { format: "convex_encoded_json" });
    assert.deepEqual(encoded.json.errorData, { code: "NOT_FOUND", n: { $integer: "BQAAAAAAAAA=" } });
    assert.equal((await call(server, "query", "messages:docs")).json.value.length, before);
  });

  test("path forms: mod:fn, mod.js:fn, mod (default export), one-element args array", async () => {
    await call(server, "mutation", "messages:send", { author: "p", body: "x" });
    const a = await call(server, "query", "messages.js:byAuthor", [{ author: "p" }]);
    assert.equal(a.json.value.length, 1);
    assert.equal((await call(server, "query", "messages")).json.value, "default export");
    assert.equal((await call(server, "function", "messages:echo", { value: "any kind" })).json.value, "any kind");
  });

  test("wrong kind, unknown function, bad arguments", async () => {
    const kind = await call(server, "query", "messages:send", {});
    assert.match(
      kind.json.errorMessage,
      /Trying to execute messages\.js:send as Query, but it is defined as Mutation\./,
    );
    const missing = await call(server, "query", "nope:nothing");
    assert.match(missing.json.errorMessage, /Could not find public function for 'nope:nothing'\./);
    const types = await call(server, "mutation", "messages:send", { author: 5, body: "x" });
    assert.equal(types.status, 200);
    assert.equal(types.json.status, "error");
    const notObject = await call(server, "query", "messages:echo", 5);
    assert.equal(notObject.json.status, "error");
    const twoArgs = await call(server, "query", "messages:echo", [{}, {}]);
    assert.equal(twoArgs.json.status, "error");
    const deep = await post(
      `${server.url}/api/query`,
      `{"path":"messages:echo","args":{"value":${"[".repeat(100_000)}${"]".repeat(100_000)}}}`,
    );
    assert.match(deep.json.errorMessage, /Value is too nested/);
  });

  test("malformed requests get the backend's 4xx answers", async () => {
    const api = `${server.url}/api/query`;
    const bad = await post(api, "{not json");
    assert.equal(bad.status, 400);
    assert.equal(bad.json.code, "BadJsonBody");
    assert.equal((await post(api, { args: {} })).json.code, "BadJsonBody");
    const contentType = await post(api, { path: "messages:list", args: {} }, { "Content-Type": "text/plain" });
    assert.equal(contentType.status, 400);
    assert.equal(contentType.json.code, "BadJsonBody");
    const path = await post(api, { path: "../x:y", args: {} });
    assert.equal(path.status, 400);
    assert.equal(path.json.code, "BadConvexFunctionIdentifier");
    const format = await post(api, { path: "messages:list", args: {}, format: "xml" });
    assert.equal(format.json.code, "BadFormat");
    const huge = await post(api, { path: "messages:echo", args: { value: "x".repeat(17 * 1024 * 1024) } });
    assert.equal(huge.status, 400);
    assert.equal(huge.json.message, "Failed to buffer the request body: length limit exceeded");
    assert.equal((await fetch(`${server.url}/api/nothing`, { method: "POST" })).status, 404);
    assert.equal((await fetch(`${server.url}/api/query`)).status, 405);
    assert.equal((await fetch(`${server.url}/version`)).status, 200);
  });
});

describe("value formats", () => {
  const value = {
    i: { $integer: "AAAAAAAAAEA=" },
    b: { $bytes: "AAH/" },
    f: 1.5,
    g: 3,
    nan: { $float: "AAAAAAAA+H8=" },
  };

  test("convex_encoded_json round-trips int64, bytes and special floats", async () => {
    const r = await call(server, "query", "messages:echo", { value }, { format: "convex_encoded_json" });
    assert.deepEqual(r.json.value, value);
    assert.match(r.text, /"g":3\.0/);
  });

  test("json writes int64 as a string and bytes as base64", async () => {
    const r = await call(server, "query", "messages:echo", { value });
    assert.deepEqual(r.json.value, { i: String(2n ** 62n), b: "AAH/", f: 1.5, g: 3, nan: "NaN" });
  });

  test("documents come back with float _creationTime and sorted keys", async () => {
    const r = await call(server, "query", "messages:list", {}, { format: "convex_encoded_json" });
    assert.match(r.text, /"_creationTime":\d+(\.\d+)?,"_id"/);
    assert.doesNotMatch(r.text, /"_creationTime":\d+,/);
  });
});

describe("auth", () => {
  test("internal functions: refused without admin key, run with it", async () => {
    const none = await call(server, "mutation", "messages:internalAdd", { body: "x" });
    assert.equal(none.status, 200);
    assert.match(none.json.errorMessage, /Could not find public function for 'messages:internalAdd'\./);
    assert.ok(!("errorData" in none.json));
    const ok = await call(server, "mutation", "messages:internalAdd", { body: "x" }, admin);
    assert.equal(ok.json.status, "success");
    const act = await call(server, "action", "actions:hidden", {});
    assert.match(act.json.errorMessage, /Could not find public function for 'actions:hidden'\./);
  });

  test("a wrong admin key is rejected like the backend does", async () => {
    const r = await call(server, "query", "messages:list", {}, { auth: "Convex not-the-key" });
    assert.equal(r.status, 401);
    assert.deepEqual(r.json, { code: "BadAdminKey", message: "The provided admin key was invalid for this instance" });
    const garbage = await call(server, "query", "messages:list", {}, { auth: "Basic xyz" });
    assert.equal(garbage.status, 400);
  });

  test("bearer tokens give an identity but no admin rights", async () => {
    const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString("base64url");
    const jwt = `${b64({ alg: "none" })}.${b64({ sub: "user-1", iss: "https://issuer.example", email: "u@example.com" })}.`;
    const who = await call(server, "query", "auth:whoami", {}, { auth: `Bearer ${jwt}` });
    assert.equal(who.json.value.subject, "user-1");
    assert.equal(who.json.value.tokenIdentifier, "https://issuer.example|user-1");
    assert.equal(who.json.value.email, "u@example.com");
    const internal = await call(server, "query", "messages:internalCount", {}, { auth: `Bearer ${jwt}` });
    assert.match(internal.json.errorMessage, /Could not find public function/);
    const bad = await call(server, "query", "auth:whoami", {}, { auth: "Bearer not-a-jwt" });
    assert.equal(bad.status, 401);
    assert.equal((await call(server, "query", "auth:whoami")).json.value, null);
  });

  test("functions from a package in the functions folder's node_modules share our convex", async () => {
    const r = await call(server, "mutation", "lib:insert", { x: "from-lib" }, admin);
    assert.equal(r.json.status, "success");
  });

  test("actions run internal functions", async () => {
    const r = await call(server, "action", "actions:addViaAction", { body: "a" });
    assert.equal(r.json.status, "success");
    assert.ok(r.json.value >= 1);
  });
});

describe("limits", () => {
  const docsCount = async () => (await call(server, "query", "messages:docs")).json.value.length as number;

  test("a 1.5 MiB document is refused and the whole mutation rolled back", async () => {
    const before = await docsCount();
    const big = "x".repeat(1.5 * 1024 * 1024);
    const r = await call(server, "mutation", "messages:putDoc", { doc: { big }, before: true });
    assert.equal(r.json.status, "error");
    assert.match(r.json.errorMessage, /Value is too large \(1\.50 MiB > maximum size 1 MiB\)/);
    assert.equal(await docsCount(), before);
  });

  test("reserved and invalid field names are refused", async () => {
    const before = await docsCount();
    for (const doc of [{ $bad: 1 }, { _bad: 1 }, { ok: { "": 1 } }, { "caf\u00e9": 1 }]) {
      const r = await call(server, "mutation", "messages:putDoc", { doc });
      assert.equal(r.json.status, "error", JSON.stringify(doc));
    }
    const id = (await call(server, "mutation", "messages:putDoc", { doc: { fine: 1 } })).json.value;
    const patch = await call(server, "mutation", "messages:patchDoc", { id, patch: { _hidden: 1 } });
    assert.match(patch.json.errorMessage, /starts with an underscore/);
    assert.equal(await docsCount(), before + 1);
  });

  test("nesting deeper than 16 is refused", async () => {
    let deep: unknown = 1;
    for (let i = 0; i < 16; i++) deep = [deep];
    const r = await call(server, "mutation", "messages:putDoc", { doc: { deep } });
    assert.match(r.json.errorMessage, /Document is too nested/);
  });

  test("convex-test transaction limits are on", async () => {
    const before = await docsCount();
    const r = await call(server, "mutation", "messages:bulk", { count: 17, size: 1_000_000 });
    assert.match(r.json.errorMessage, /Wrote too much data in a single function execution/);
    assert.equal(await docsCount(), before);
  });
});

describe("local endpoints", () => {
  test("stats header and ring buffer", async () => {
    const { json: first } = await getJson(`${server.url}/_local/calls?since=0`);
    const r = await call(server, "mutation", "messages:storageOp", { op: "saveThread" });
    const header = JSON.parse(r.headers.get("Convex-Mastra-Stats")!);
    assert.equal(header.documentsWritten, 1);
    assert.ok(header.documentsRead >= 1);
    assert.ok(header.bytesWritten > 0 && header.engineMs >= 0);
    const { status, json } = await getJson(`${server.url}/_local/calls?since=${first.nextSeq}`);
    assert.equal(status, 200);
    const entry = json.calls.find((c: { seq: number }) => c.seq === header.seq);
    assert.deepEqual(
      { path: entry.path, kind: entry.kind, ok: entry.ok, op: entry.op, documentsWritten: entry.documentsWritten },
      { path: "messages:storageOp", kind: "mutation", ok: true, op: "saveThread", documentsWritten: 1 },
    );
    assert.equal(json.nextSeq, header.seq + 1);
    assert.equal((await getJson(`${server.url}/_local/calls`, "")).status, 401);
    assert.equal((await getJson(`${server.url}/_local/calls`, "Convex wrong")).status, 401);
  });

  test("functions list", async () => {
    const { json } = await getJson(`${server.url}/_local/functions`);
    assert.deepEqual(
      json.find((f: { path: string }) => f.path === "messages:internalAdd"),
      { path: "messages:internalAdd", kind: "mutation", visibility: "internal" },
    );
    assert.ok(json.some((f: { path: string }) => f.path === "lib:insert"));
  });

  test("response delay is added after the work, outside the lock", async () => {
    const set = (ms: number) => post(`${server.url}/_local/delay`, { ms }, { Authorization: admin.auth });
    assert.equal((await set(300)).status, 200);
    const start = Date.now();
    const replies = await Promise.all(
      Array.from({ length: 5 }, (_, i) => call(server, "mutation", "messages:send", { author: "d", body: `${i}` })),
    );
    const elapsed = Date.now() - start;
    await set(0);
    assert.ok(replies.every((r) => r.json.status === "success"));
    assert.ok(elapsed >= 300, `took ${elapsed} ms`);
    assert.ok(elapsed < 1200, `delays ran in parallel: ${elapsed} ms`);
    assert.equal((await post(`${server.url}/_local/delay`, { ms: 1 })).status, 401);
  });

  test("hundreds of concurrent calls are all answered", async () => {
    const replies = await Promise.all(
      Array.from({ length: 300 }, (_, i) =>
        i % 3 === 0
          ? call(server, "query", "messages:byAuthor", { author: "c" })
          : call(server, "mutation", "messages:send", { author: "c", body: `${i}` }),
      ),
    );
    assert.ok(replies.every((r) => r.json.status === "success"));
    assert.equal((await call(server, "query", "messages:byAuthor", { author: "c" })).json.value.length, 200);
  });
});
