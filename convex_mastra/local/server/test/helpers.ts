// Test helpers: a temporary functions folder built from test/fixtures, and a
// server process started exactly the way the Python side starts it.
import { spawn, type ChildProcess } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export const SERVER_DIR = fileURLToPath(new URL("..", import.meta.url));
export const FIXTURES = join(SERVER_DIR, "test", "fixtures");
export const ADMIN_KEY = "test-admin-key";

// Every temporary folder of one test process lives under one root, removed when it exits.
const TEMP_ROOT = mkdtempSync(join(tmpdir(), "convex-mastra-test-"));
process.on("exit", () => rmSync(TEMP_ROOT, { recursive: true, force: true }));

export function tempDir(prefix: string): string {
  return mkdtempSync(join(TEMP_ROOT, `${prefix}-`));
}

/**
 * A functions folder outside this package: no package.json ("type" unknown) and a
 * node_modules holding `fake-lib` but no `convex`, like a user's folder would.
 */
export function makeFunctionsDir(): string {
  const dir = tempDir("functions");
  cpSync(join(FIXTURES, "functions"), dir, { recursive: true });
  mkdirSync(join(dir, "node_modules"));
  cpSync(join(FIXTURES, "fake-lib"), join(dir, "node_modules", "fake-lib"), { recursive: true });
  return dir;
}

export interface RunningServer {
  url: string;
  proc: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  /** Resolves with the exit code (or signal name). */
  exited: Promise<number | string>;
}

export function serverArgs(functionsDir: string, dataDir: string, extra: string[] = []): string[] {
  return [
    "--import",
    "./node_modules/tsx/dist/esm/index.mjs",
    "src/main.ts",
    "--functions",
    functionsDir,
    "--data-dir",
    dataDir,
    "--host",
    "127.0.0.1",
    "--port",
    "0",
    "--admin-key",
    ADMIN_KEY,
    ...extra,
  ];
}

export function spawnServer(
  args: string[],
  env: Record<string, string> = {},
): RunningServer & { ready: Promise<string> } {
  const proc = spawn(process.execPath, args, {
    cwd: SERVER_DIR,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, ...env },
  });
  let stdout = "";
  let stderr = "";
  proc.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | string>((resolve) =>
    proc.on("exit", (code, signal) => resolve(code ?? signal ?? -1)),
  );
  const ready = new Promise<string>((resolve, reject) => {
    proc.stdout!.on("data", (d: Buffer) => {
      stdout += d.toString();
      const m = /^CONVEX_MASTRA_READY (.*)$/m.exec(stdout);
      if (m !== null) resolve((JSON.parse(m[1]!) as { url: string }).url);
    });
    void exited.then((code) => reject(new Error(`server exited (${code}) before READY:\n${stderr}`)));
  });
  return { url: "", proc, stdout: () => stdout, stderr: () => stderr, exited, ready };
}

export async function startServer(
  functionsDir: string,
  dataDir: string,
  options: { extra?: string[]; env?: Record<string, string> } = {},
): Promise<RunningServer> {
  const server = spawnServer(serverArgs(functionsDir, dataDir, options.extra), options.env);
  server.url = await server.ready;
  return server;
}

export async function stopServer(server: RunningServer, signal: NodeJS.Signals = "SIGTERM"): Promise<number | string> {
  server.proc.kill(signal);
  return server.exited;
}

export interface Reply {
  status: number;
  headers: Headers;
  text: string;
  json: any;
}

export async function post(url: string, body: unknown, headers: Record<string, string> = {}): Promise<Reply> {
  const res = await fetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json: unknown = undefined;
  try {
    json = JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: res.status, headers: res.headers, text, json };
}

export function call(
  server: { url: string },
  kind: "query" | "mutation" | "action" | "function",
  path: string,
  args: unknown = {},
  options: { format?: string; auth?: string } = {},
): Promise<Reply> {
  const headers: Record<string, string> = {};
  if (options.auth !== undefined) headers["Authorization"] = options.auth;
  return post(`${server.url}/api/${kind}`, { path, args, format: options.format ?? "json" }, headers);
}

export const admin = { auth: `Convex ${ADMIN_KEY}` };

export async function getJson(url: string, auth = admin.auth): Promise<{ status: number; json: any }> {
  const res = await fetch(url, { headers: auth === "" ? {} : { Authorization: auth } });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : undefined };
}
