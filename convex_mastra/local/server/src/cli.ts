import { resolve } from "node:path";
import { parseArgs } from "node:util";

export interface CliOptions {
  functionsDir: string;
  dataDir: string;
  host: string;
  port: number;
  adminKey: string;
  responseDelayMs: number;
  exitOnStdinClose: boolean;
}

export const USAGE =
  "usage: node --import ./node_modules/tsx/dist/esm/index.mjs src/main.ts " +
  "--functions DIR --data-dir DIR [--admin-key KEY] [--host 127.0.0.1] [--port 0] [--response-delay-ms N] " +
  "[--exit-on-stdin-close]  (the admin key may come from env CONVEX_MASTRA_ADMIN_KEY instead)";

function nonNegativeInt(name: string, text: string, max: number): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n > max) throw new Error(`--${name} must be an integer between 0 and ${max}`);
  return n;
}

function nonNegativeNumber(name: string, text: string, max: number): number {
  const n = Number(text);
  if (!Number.isFinite(n) || n < 0 || n > max) throw new Error(`--${name} must be a number between 0 and ${max}`);
  return n;
}

/** Parses argv (without node and script); throws Error with a message for the user. */
export function parseCli(argv: string[], env: NodeJS.ProcessEnv = {}): CliOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      functions: { type: "string" },
      "data-dir": { type: "string" },
      host: { type: "string", default: "127.0.0.1" },
      port: { type: "string", default: "0" },
      "admin-key": { type: "string" },
      "response-delay-ms": { type: "string", default: "0" },
      "exit-on-stdin-close": { type: "boolean", default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  for (const required of ["functions", "data-dir"] as const) {
    if (!values[required]) throw new Error(`missing --${required}`);
  }
  // The environment keeps the key out of `ps` output; the flag stays for manual runs.
  const adminKey = values["admin-key"] ?? env["CONVEX_MASTRA_ADMIN_KEY"];
  if (!adminKey) throw new Error("missing --admin-key (or env CONVEX_MASTRA_ADMIN_KEY)");
  return {
    functionsDir: resolve(values.functions!),
    dataDir: resolve(values["data-dir"]!),
    host: values.host!,
    port: nonNegativeInt("port", values.port!, 65535),
    adminKey,
    responseDelayMs: nonNegativeNumber("response-delay-ms", values["response-delay-ms"]!, 600_000),
    exitOnStdinClose: values["exit-on-stdin-close"] === true,
  };
}
