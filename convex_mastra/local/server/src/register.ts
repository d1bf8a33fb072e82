// The loader hooks every process running functions on convex-test needs (the server, and
// tests that load the engine in-process): one `convex` instance for the functions folder and
// convex-test, and convex-test's internals exported (src/internals.ts). Must run before
// anything imports convex-test or a functions module.
import { realpathSync } from "node:fs";
import { createRequire, register } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { HookData } from "./hooks.ts";
import { EXPORT_SUFFIX } from "./internals.ts";

/** This package's folder, whose node_modules serve `convex` and convex-test. */
export const RUNTIME_DIR = dirname(dirname(fileURLToPath(import.meta.url)));

export function registerHooks(functionsDir: string): void {
  const require = createRequire(join(RUNTIME_DIR, "package.json"));
  const data: HookData = {
    runtimeAnchorUrl: pathToFileURL(join(RUNTIME_DIR, "package.json")).href,
    functionsDirUrl: `${pathToFileURL(functionsDir).href}/`,
    convexTestIndexUrl: pathToFileURL(realpathSync(require.resolve("convex-test"))).href,
    exportSuffix: EXPORT_SUFFIX,
  };
  register("./hooks.ts", import.meta.url, { data });
}
