// Durability: WAL order, kill -9, torn WAL tails, compaction, exact restore.
import assert from "node:assert/strict";
import { appendFileSync, existsSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import {
  admin,
  call,
  makeFunctionsDir,
  post,
  startServer,
  stopServer,
  tempDir,
  type RunningServer,
} from "./helpers.ts";

const functionsDir = makeFunctionsDir();

function walRecords(dataDir: string): { seq: number; ts: string; writes: [string, unknown][] }[] {
  return readdirSync(dataDir)
    .filter((n) => /^wal-\d+\.log$/.test(n))
    .sort()
    .flatMap((n) => readFileSync(join(dataDir, n), "utf8").split("\n").filter(Boolean))
    .map((line) => JSON.parse(line.slice(9)));
}

async function allDocs(
  server: RunningServer,
): Promise<{ _id: string; _creationTime: number; token?: string; part?: number }[]> {
  const r = await call(server, "query", "messages:docs");
  assert.equal(r.json.status, "success", r.text);
  return r.json.value;
}

test("restart restores documents, ids, creation times and the id counter exactly", async () => {
  const dataDir = tempDir("restore");
  let server = await startServer(functionsDir, dataDir);
  for (let i = 0; i < 5; i++) await call(server, "mutation", "messages:pair", { token: `t${i}` });
  await call(server, "mutation", "messages:putDoc", {
    doc: { big: { $integer: "AQAAAAAAAAA=" }, raw: { $bytes: "AAE=" } },
  });
  const before = await allDocs(server);
  const lastId = before[before.length - 1]!._id;
  assert.equal(await stopServer(server, "SIGKILL"), "SIGKILL");

  server = await startServer(functionsDir, dataDir);
  const restored = await allDocs(server);
  assert.deepEqual(restored, before);
  const echoed = await call(server, "query", "messages:docs", {}, { format: "convex_encoded_json" });
  assert.ok(echoed.text.includes('"big":{"$integer":"AQAAAAAAAAA="}'));
  const next = (await call(server, "mutation", "messages:putDoc", { doc: { after: true } })).json.value as string;
  assert.equal(Number.parseInt(next, 10), Number.parseInt(lastId, 10) + 1, "id counter continues exactly");
  assert.equal(await stopServer(server), 0);
});

test("concurrent mutations: every one acknowledged, WAL in commit order", async () => {
  const dataDir = tempDir("order");
  const server = await startServer(functionsDir, dataDir);
  const replies = await Promise.all(
    Array.from({ length: 200 }, (_, i) => call(server, "mutation", "messages:pair", { token: `c${i}` })),
  );
  assert.ok(replies.every((r) => r.json.status === "success"));
  const records = walRecords(dataDir);
  assert.equal(records.length, 200);
  records.forEach((r, i) => {
    assert.equal(r.seq, i + 1);
    if (i > 0) assert.ok(BigInt(r.ts) > BigInt(records[i - 1]!.ts), "commit timestamps increase with seq");
  });
  // Each record holds exactly one mutation's two documents.
  const tokens = records.map((r) => new Set(r.writes.map(([, doc]) => (doc as { token: string }).token)));
  assert.ok(tokens.every((s) => s.size === 1));
  assert.equal(await stopServer(server), 0);
});

test("kill -9 under load keeps every acknowledged mutation and nothing half-applied", async () => {
  const dataDir = tempDir("kill");
  let server = await startServer(functionsDir, dataDir);
  const acknowledged = new Set<string>();
  let n = 0;
  let killed = false;
  const worker = async () => {
    while (!killed) {
      const token = `k${n++}`;
      try {
        const r = await call(server, "mutation", "messages:pair", { token });
        if (r.json.status === "success") acknowledged.add(token);
      } catch {
        return; // connection dropped by the kill
      }
      if (acknowledged.size >= 150 && !killed) {
        killed = true;
        server.proc.kill("SIGKILL");
      }
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
  await server.exited;

  server = await startServer(functionsDir, dataDir);
  const byToken = new Map<string, number[]>();
  for (const doc of await allDocs(server)) {
    byToken.set(doc.token!, [...(byToken.get(doc.token!) ?? []), doc.part!]);
  }
  for (const token of acknowledged) assert.deepEqual(byToken.get(token)?.sort(), [1, 2], token);
  for (const [token, parts] of byToken) assert.deepEqual(parts.sort(), [1, 2], `half-applied ${token}`);
  assert.equal(await stopServer(server), 0);
});

test("start-up drops a torn WAL tail and keeps the rest", async () => {
  const dataDir = tempDir("torn");
  let server = await startServer(functionsDir, dataDir);
  for (let i = 0; i < 3; i++) await call(server, "mutation", "messages:pair", { token: `w${i}` });
  await stopServer(server, "SIGKILL");

  const segments = readdirSync(dataDir)
    .filter((n) => /^wal-\d+\.log$/.test(n))
    .sort();
  const last = join(dataDir, segments[segments.length - 1]!);
  assert.ok(statSync(last).size > 0);
  // A record cut short mid-write: no newline and a checksum that cannot match.
  appendFileSync(last, '0badc0de\t{"seq":4,"ts":"1","nextDocId":1,"writes":[["x",{"tok');

  server = await startServer(functionsDir, dataDir);
  assert.match(server.stderr(), /dropping torn WAL tail/);
  assert.equal((await allDocs(server)).length, 6);
  await call(server, "mutation", "messages:pair", { token: "after" });
  await stopServer(server, "SIGKILL");

  server = await startServer(functionsDir, dataDir);
  assert.equal((await allDocs(server)).length, 8);
  assert.equal(await stopServer(server), 0);
});

test("a damaged record before the end of the WAL stops start-up", async () => {
  const dataDir = tempDir("damaged");
  let server = await startServer(functionsDir, dataDir);
  for (let i = 0; i < 3; i++) await call(server, "mutation", "messages:pair", { token: `d${i}` });
  await stopServer(server, "SIGKILL");
  const segment = readdirSync(dataDir)
    .filter((n) => /^wal-\d+\.log$/.test(n))
    .sort()[0]!;
  const path = join(dataDir, segment);
  // Change the first record's JSON so its checksum no longer matches.
  writeFileSync(path, readFileSync(path, "utf8").replace('"token":"d0"', '"token":"dX"'));
  await assert.rejects(startServer(functionsDir, dataDir), /damaged/);
});

test("compaction writes a snapshot, removes covered WAL segments, and restores", async () => {
  const dataDir = tempDir("compact");
  const env = { CONVEX_MASTRA_COMPACT_BYTES: "4000" };
  let server = await startServer(functionsDir, dataDir, { env });
  for (let i = 0; i < 40; i++) await call(server, "mutation", "messages:pair", { token: `s${i}` });
  const before = await allDocs(server);
  // Compaction runs in the background; give it a moment.
  for (let i = 0; i < 50 && !readdirSync(dataDir).includes("snapshot.ndjson"); i++) {
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.ok(readdirSync(dataDir).includes("snapshot.ndjson"));
  await stopServer(server, "SIGKILL");
  const totalWal = readdirSync(dataDir)
    .filter((n) => /^wal-\d+\.log$/.test(n))
    .reduce((sum, n) => sum + statSync(join(dataDir, n)).size, 0);
  assert.ok(totalWal < 40 * 300, `old segments deleted (${totalWal} bytes left)`);

  server = await startServer(functionsDir, dataDir, { env });
  assert.deepEqual(await allDocs(server), before);
  assert.equal(await stopServer(server), 0);
  // A clean stop compacts: the snapshot alone restores everything.
  server = await startServer(functionsDir, dataDir);
  assert.deepEqual(await allDocs(server), before);
  assert.equal(await stopServer(server), 0);
});

test("writes of scheduled functions are persisted too", async () => {
  const dataDir = tempDir("scheduled");
  let server = await startServer(functionsDir, dataDir);
  assert.equal((await call(server, "mutation", "messages:scheduleAdd", { body: "later" })).json.status, "success");
  const seen = async () =>
    ((await call(server, "query", "messages:byAuthor", { author: "internal" })).json.value as { body: string }[]).some(
      (m) => m.body === "later",
    );
  for (let i = 0; i < 100 && !(await seen()); i++) await new Promise((r) => setTimeout(r, 20));
  assert.ok(await seen());
  await stopServer(server, "SIGKILL");
  server = await startServer(functionsDir, dataDir);
  assert.ok(await seen(), "a query answer waited for the WAL, so the write survived kill -9");
  assert.equal(await stopServer(server), 0);
});

test("a compaction waits until the WAL outgrows the last snapshot", async () => {
  const dataDir = tempDir("compact-threshold");
  let server = await startServer(functionsDir, dataDir, { env: { CONVEX_MASTRA_COMPACT_BYTES: "4000" } });
  const snapshot = join(dataDir, "snapshot.ndjson");
  // The WAL position a snapshot covers (its header's walSeq): new with every compaction.
  const snapshotId = () =>
    existsSync(snapshot) ? (JSON.parse(readFileSync(snapshot, "utf8").split("\n")[0]!) as { walSeq: number }).walSeq : null;
  const settle = async () => {
    for (let i = 0; i < 100 && existsSync(`${snapshot}.tmp`); i++) await new Promise((r) => setTimeout(r, 20));
  };
  const imported = await post(
    `${server.url}/_local/import`,
    { table: "docs", documents: Array.from({ length: 100 }, (_, i) => ({ i, pad: "x".repeat(300) })) },
    { Authorization: admin.auth },
  );
  assert.equal(imported.status, 200, imported.text);
  // Past 4,000 bytes of WAL: the first compaction, a snapshot of ~35 KB.
  await call(server, "mutation", "messages:putDoc", { doc: { i: -1 } });
  for (let i = 0; i < 100 && snapshotId() === null; i++) await new Promise((r) => setTimeout(r, 20));
  await settle();
  const first = snapshotId();
  assert.ok(first !== null && statSync(snapshot).size > 30_000);
  // ~10 KB more: past the configured 4,000 bytes, well short of the snapshot's size.
  for (let i = 0; i < 25; i++) await call(server, "mutation", "messages:putDoc", { doc: { i, pad: "y".repeat(300) } });
  await settle();
  assert.equal(snapshotId(), first, "no rewrite of the whole snapshot for a WAL smaller than it");
  // Past the snapshot's size: compacted again.
  for (let i = 0; i < 100 && snapshotId() === first; i++) {
    await call(server, "mutation", "messages:putDoc", { doc: { i, pad: "z".repeat(300) } });
  }
  await settle();
  assert.notEqual(snapshotId(), first);
  assert.equal(await stopServer(server), 0);
  server = await startServer(functionsDir, dataDir);
  assert.equal(await stopServer(server), 0);
});
