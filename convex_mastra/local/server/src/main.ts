// Entry point: node --import ./node_modules/tsx/dist/esm/index.mjs src/main.ts --functions DIR ...
// One process: loads the functions, recovers the data directory, serves HTTP and
// prints one READY line on stdout. Start-up errors go to stderr with exit code 1.
import { mkdirSync, readFileSync, realpathSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { parseCli, USAGE, type CliOptions } from "./cli.ts";
import { Engine, installConsole } from "./engine.ts";
import { createHttpServer, identityFromJwt, sameKey, type ServerContext } from "./http.ts";
import { CONVEX_TEST_VERSION } from "./internals.ts";
import { loadFunctions } from "./modules.ts";
import { Store } from "./persistence.ts";
import { registerHooks, RUNTIME_DIR as runtimeDir } from "./register.ts";
import { CallLog } from "./stats.ts";
import { SyncServer } from "./sync.ts";

const COMPACT_BYTES = Number(process.env["CONVEX_MASTRA_COMPACT_BYTES"] ?? 64 * 1024 * 1024);

function fail(message: string, code = 1): never {
  process.stderr.write(`convex-mastra: ${message}\n`);
  process.exit(code);
}

function packageVersion(name: string): string {
  const require = createRequire(join(runtimeDir, "package.json"));
  return (JSON.parse(readFileSync(require.resolve(`${name}/package.json`), "utf8")) as { version: string }).version;
}

async function start(cli: CliOptions): Promise<void> {
  const convexTestVersion = packageVersion("convex-test");
  if (convexTestVersion !== CONVEX_TEST_VERSION) {
    fail(`convex-test ${CONVEX_TEST_VERSION} is required (src/internals.ts), found ${convexTestVersion}`);
  }
  if (!statSync(cli.functionsDir, { throwIfNoEntry: false })?.isDirectory()) {
    fail(`functions directory not found: ${cli.functionsDir}`);
  }
  const functionsDir = realpathSync(cli.functionsDir);
  installConsole();
  registerHooks(functionsDir);
  const loaded = await loadFunctions(functionsDir);

  mkdirSync(cli.dataDir, { recursive: true });
  const { store, state, replayedRecords } = await Store.open(cli.dataDir, {
    compactBytes: COMPACT_BYTES,
    onFatal: (e) => fail(`cannot write the WAL, stopping: ${e.message}`),
  });
  // Every commit, whatever made it (HTTP, sync, actions, scheduled functions), reaches the
  // sync server's subscriptions.
  let sync: SyncServer | null = null;
  const engine = await Engine.create({
    functionsDir,
    loaded,
    onCommit: (ts, writes, counters) => {
      store.append(ts, writes, counters);
      sync?.onCommit(ts, writes);
    },
  });
  if (state !== null) engine.restoreState(state);
  store.setStateSource(() => engine.exportState());

  sync = new SyncServer({
    initialTs: state?.lastCommitTs ?? 0n,
    engine,
    functions: loaded.functions,
    isAdminKey: (key) => sameKey(key, cli.adminKey),
    identityFromJwt,
    waitDurable: () => store.waitDurable(),
  });
  const ctx: ServerContext = {
    engine,
    functions: loaded.functions,
    store,
    calls: new CallLog(100_000),
    adminKey: cli.adminKey,
    version: `convex-mastra-local/0.1.0 convex/${packageVersion("convex")} convex-test/${convexTestVersion}`,
    responseDelayMs: cli.responseDelayMs,
    sync,
  };
  const server = createHttpServer(ctx);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(cli.port, cli.host, () => {
        server.off("error", reject);
        resolve();
      });
    });
  } catch (e) {
    await store.close({ compact: false });
    throw e;
  }
  let stopping = false;
  const stop = async () => {
    if (stopping) process.exit(1);
    stopping = true;
    sync?.close();
    server.close();
    server.closeIdleConnections();
    // In-flight requests get a moment to finish; their WAL records are flushed below.
    await Promise.race([new Promise((r) => server.once("close", r)), delay(5000)]);
    server.closeAllConnections();
    await store.close({ compact: true });
    process.exit(0);
  };
  // Before the READY line: whoever reads it may signal us at once.
  process.on("SIGTERM", () => void stop());
  process.on("SIGINT", () => void stop());
  if (cli.exitOnStdinClose) {
    // The parent keeps our stdin open for its lifetime; EOF means it is gone, even after SIGKILL.
    process.stdin.on("end", () => void stop());
    process.stdin.on("error", () => void stop());
    process.stdin.resume();
  }

  const port = (server.address() as AddressInfo).port;
  const host = cli.host.includes(":") ? `[${cli.host}]` : cli.host;
  // The pid lets a launcher tell our READY line from another server's in a shared log.
  process.stdout.write(
    `CONVEX_MASTRA_READY ${JSON.stringify({ url: `http://${host}:${port}`, port, pid: process.pid })}\n`,
  );
  // Keep restarts fast: fold a replayed WAL into a new snapshot in the background.
  if (replayedRecords > 0) void store.compact();
}

// Function code may leave promises or timers that fail; that must not stop the server.
process.on("unhandledRejection", (e) => {
  process.stderr.write(`convex-mastra: unhandled rejection: ${e instanceof Error ? e.stack : String(e)}\n`);
});
process.on("uncaughtException", (e) => {
  process.stderr.write(`convex-mastra: uncaught exception: ${e.stack ?? String(e)}\n`);
});

let cli: CliOptions;
try {
  cli = parseCli(process.argv.slice(2), process.env);
} catch (e) {
  fail(`${(e as Error).message}\n${USAGE}`, 2);
}
start(cli).catch((e: unknown) => {
  if ((e as NodeJS.ErrnoException).code === "EADDRINUSE") fail(`port already in use: ${(e as Error).message}`);
  fail(e instanceof Error ? e.message : String(e));
});
