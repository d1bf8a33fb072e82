// Finds the Convex modules of a functions folder, imports them, and builds
// (a) the module map convex-test wants and (b) our registry of exported functions.
import { readdirSync } from "node:fs";
import { join, relative, sep } from "node:path";
import { pathToFileURL } from "node:url";
import type { SchemaDefinition } from "convex/server";

export type FunctionKind = "query" | "mutation" | "action";
export type Visibility = "public" | "internal";

export interface FunctionInfo {
  /** Registry key, "module:export" (module without extension). */
  path: string;
  kind: FunctionKind;
  visibility: Visibility;
}

export interface LoadedFunctions {
  /** For convexTest({ modules }): keys "./convex/<module>.<ext>". */
  modules: Record<string, () => Promise<unknown>>;
  schema: SchemaDefinition<any, boolean> | undefined;
  functions: Map<string, FunctionInfo>;
}

// Prefix for convex-test's module keys. convex-test finds the root of the
// functions folder through a key containing "_generated", so a fake one is added.
const PREFIX = "./convex/";
const GENERATED_KEY = `${PREFIX}_generated/api.js`;

function isModuleFile(name: string): boolean {
  if (name.startsWith(".") || name.startsWith("#") || name.endsWith(".d.ts")) return false;
  // The Convex CLI does not push test files either.
  if (/\.(test|spec)\.[jt]s$/.test(name)) return false;
  return name.endsWith(".ts") || name.endsWith(".js");
}

function walk(dir: string, out: string[]): void {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name === "node_modules" || entry.name === "_generated" || entry.name.startsWith(".")) continue;
    const full = join(dir, entry.name);
    if (entry.isDirectory()) walk(full, out);
    else if (entry.isFile() && isModuleFile(entry.name)) out.push(full);
  }
}

function describe(value: unknown): Omit<FunctionInfo, "path"> | null {
  if ((typeof value !== "function" && typeof value !== "object") || value === null) return null;
  const f = value as Record<string, unknown>;
  const kind: FunctionKind | null = f["isQuery"]
    ? "query"
    : f["isMutation"]
      ? "mutation"
      : f["isAction"]
        ? "action"
        : null;
  if (kind === null) return null;
  return { kind, visibility: f["isInternal"] ? "internal" : "public" };
}

/** Imports every module eagerly, so broken modules fail at start-up, not on first call. */
export async function loadFunctions(functionsDir: string): Promise<LoadedFunctions> {
  const files: string[] = [];
  walk(functionsDir, files);
  files.sort();

  const modules: Record<string, () => Promise<unknown>> = {
    [GENERATED_KEY]: async () => ({}),
  };
  const functions = new Map<string, FunctionInfo>();
  let schema: SchemaDefinition<any, boolean> | undefined;
  const seen = new Map<string, string>();

  for (const file of files) {
    const rel = relative(functionsDir, file).split(sep).join("/");
    const modulePath = rel.replace(/\.(ts|js)$/, "");
    const url = pathToFileURL(file).href;
    const previous = seen.get(modulePath);
    if (previous !== undefined) {
      throw new Error(`two files define module "${modulePath}": ${previous} and ${rel}`);
    }
    seen.set(modulePath, rel);

    let exports: Record<string, unknown>;
    try {
      exports = (await import(url)) as Record<string, unknown>;
    } catch (e) {
      throw new Error(`failed to import ${rel}: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    }
    if (modulePath === "schema") {
      const def = exports["default"] as SchemaDefinition<any, boolean> | undefined;
      if (def === undefined || typeof def !== "object" || !("tables" in def)) {
        throw new Error("schema.ts must default-export defineSchema(...)");
      }
      schema = def;
      continue;
    }
    // Already imported: hand convex-test the namespace directly, because every
    // import() would go through the loader hooks' thread again (~1 ms per call).
    modules[`${PREFIX}${rel}`] = async () => exports;
    for (const [name, value] of Object.entries(exports)) {
      const info = describe(value);
      if (info !== null) functions.set(`${modulePath}:${name}`, { path: `${modulePath}:${name}`, ...info });
    }
  }
  return { modules, schema, functions };
}
