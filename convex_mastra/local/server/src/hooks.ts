// Module customization hooks (node:module `register`). They run on Node's loader
// thread, so this file must stay self-contained: no imports from the rest of src/.
//
// Three jobs:
// 1. Bare `convex` / `convex/*` imports from anywhere (a functions folder, or a
//    package in that folder's node_modules such as @mastra/convex) resolve to this
//    runtime's copy, so convex-test and user code share ONE `convex` instance.
// 2. User source files (.ts anywhere outside node_modules, .js inside the functions
//    folder) are loaded as ES modules even when no package.json says
//    "type": "module"; tsx's ESM-only entry cannot run TypeScript as CommonJS.
// 3. convex-test's dist/index.js gets one export statement appended so that
//    src/internals.ts can reach its (unexported) database and transaction classes.
import type { LoadHook, ResolveHook } from "node:module";

export interface HookData {
  /** A file URL inside this runtime (its package.json); `convex` resolves from here. */
  runtimeAnchorUrl: string;
  /** file URL of the functions folder, with a trailing slash. */
  functionsDirUrl: string;
  /** file URL of convex-test's dist/index.js, which gets `exportSuffix` appended. */
  convexTestIndexUrl: string;
  exportSuffix: string;
}

let data: HookData | undefined;

export function initialize(d: HookData): void {
  data = d;
}

export const resolve: ResolveHook = (specifier, context, nextResolve) => {
  if (data !== undefined && (specifier === "convex" || specifier.startsWith("convex/"))) {
    return nextResolve(specifier, { ...context, parentURL: data.runtimeAnchorUrl });
  }
  return nextResolve(specifier, context);
};

function isUserSource(url: string): boolean {
  if (data === undefined || !url.startsWith("file:") || url.includes("/node_modules/")) {
    return false;
  }
  const path = url.split("?")[0]!;
  if (/\.(ts|tsx|mts)$/.test(path) && !path.endsWith(".d.ts")) return true;
  return path.endsWith(".js") && path.startsWith(data.functionsDirUrl);
}

export const load: LoadHook = async (url, context, nextLoad) => {
  if (data !== undefined && url === data.convexTestIndexUrl) {
    const loaded = await nextLoad(url, context);
    const source =
      typeof loaded.source === "string" ? loaded.source : Buffer.from(loaded.source as ArrayBuffer).toString("utf8");
    return { ...loaded, source: source + data.exportSuffix };
  }
  if (isUserSource(url)) {
    return nextLoad(url, { ...context, format: "module" });
  }
  return nextLoad(url, context);
};
