// A table's documents are found through the ids of that table alone (src/internals.ts), so
// scans must still see exactly the table: its committed documents, this transaction's own
// inserts, not its own deletes, nothing of other tables, and the same after a restart.
import assert from "node:assert/strict";
import { test } from "node:test";
import { call, makeFunctionsDir, startServer, stopServer, tempDir } from "./helpers.ts";

const functionsDir = makeFunctionsDir();

async function value(
  server: Parameters<typeof call>[0],
  kind: Parameters<typeof call>[1],
  path: string,
  args = {},
) {
  const r = await call(server, kind, path, args);
  assert.equal(r.json.status, "success", r.text);
  return r.json.value;
}

test("scans see one table, with the transaction's own writes, before and after a restart", async () => {
  const dataDir = tempDir("tables");
  let server = await startServer(functionsDir, dataDir);
  for (let i = 0; i < 3; i++) await value(server, "mutation", "messages:putDoc", { doc: { i } });
  const a = await value(server, "mutation", "messages:send", { author: "scan", body: "a" });
  await value(server, "mutation", "messages:send", { author: "other", body: "b" });
  await value(server, "mutation", "messages:putDoc", { doc: { i: 3 } });

  const inside = await value(server, "mutation", "messages:scanWithinTransaction", {
    body: "c",
    deleteId: a,
  });
  assert.deepEqual(inside, { messages: ["b", "c"], byAuthor: ["c"], docs: 4 });
  const committed = (await value(server, "query", "messages:list")) as { body: string }[];
  assert.deepEqual(committed.map((doc) => doc.body), ["b", "c"]);
  assert.equal(((await value(server, "query", "messages:docs")) as unknown[]).length, 4);

  assert.equal(await stopServer(server, "SIGKILL"), "SIGKILL");
  server = await startServer(functionsDir, dataDir);
  const again = await value(server, "mutation", "messages:scanWithinTransaction", { body: "d" });
  assert.deepEqual(again, { messages: ["b", "c", "d"], byAuthor: ["c", "d"], docs: 4 });
  assert.equal(await stopServer(server), 0);
});
