// Start-up and shutdown: errors go to stderr with a non-zero exit code.
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { makeFunctionsDir, serverArgs, spawnServer, startServer, stopServer, tempDir } from "./helpers.ts";

async function expectStartFailure(args: string[], pattern: RegExp): Promise<void> {
  const server = spawnServer(args);
  await assert.rejects(server.ready);
  const code = await server.exited;
  assert.notEqual(code, 0);
  assert.match(server.stderr(), pattern);
}

test("missing functions directory", async () => {
  await expectStartFailure(serverArgs("/nonexistent/functions", tempDir("data")), /functions directory not found/);
});

test("schema that fails to load", async () => {
  const dir = makeFunctionsDir();
  writeFileSync(join(dir, "schema.ts"), 'throw new Error("schema exploded");\n');
  await expectStartFailure(serverArgs(dir, tempDir("data")), /schema exploded/);
});

test("missing arguments", async () => {
  await expectStartFailure(["--import", "./node_modules/tsx/dist/esm/index.mjs", "src/main.ts"], /missing --functions/);
});

test("port in use, and a data directory in use", async () => {
  const functionsDir = makeFunctionsDir();
  const dataDir = tempDir("data");
  const first = await startServer(functionsDir, dataDir);
  const port = new URL(first.url).port;
  const other = serverArgs(functionsDir, tempDir("data")).map((a, i, all) => (all[i - 1] === "--port" ? port : a));
  await expectStartFailure(other, /port already in use/);
  await expectStartFailure(serverArgs(functionsDir, dataDir), /in use by process/);
  assert.equal(await stopServer(first), 0);
});

test("stdout is exactly the READY line; SIGTERM stops promptly with exit code 0", async () => {
  const server = await startServer(makeFunctionsDir(), tempDir("data"));
  assert.match(
    server.stdout(),
    /^CONVEX_MASTRA_READY \{"url":"http:\/\/127\.0\.0\.1:\d+","port":\d+,"pid":\d+\}\n$/,
  );
  assert.equal(JSON.parse(server.stdout().slice("CONVEX_MASTRA_READY ".length)).pid, server.proc.pid);
  assert.match(server.stderr(), /top-level output from a functions module/);
  const start = Date.now();
  assert.equal(await stopServer(server), 0);
  assert.ok(Date.now() - start < 3000, `took ${Date.now() - start} ms`);
});
