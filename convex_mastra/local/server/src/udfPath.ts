// Function paths as the backend parses them (crates/convex/sync_types:
// udf_path.rs, module_path.rs, identifier.rs). "mod:fn", "mod.js:fn" and "mod"
// (the default export) all name the same kind of thing.

export interface UdfPath {
  /** Module path without ".js", e.g. "mastra/storage". */
  module: string;
  /** Export name; "default" when the path had none. */
  name: string;
  /** Canonical form used in most backend messages: "mastra/storage.js:handle". */
  canonical: string;
  /** Stripped form used in "Could not find public function" ("mod:fn", or "mod"). */
  stripped: string;
  /** The key convex-test and our registry use: "mastra/storage:handle". */
  key: string;
}

const MAX_IDENTIFIER_LEN = 64;

function checkIdentifier(s: string): string | null {
  if (s.length === 0) return "Identifier cannot be empty";
  if (!/^[A-Za-z_]/.test(s)) {
    return `Invalid first character ${JSON.stringify(s[0])} in ${s}: Identifiers must start with an alphabetic character or underscore`;
  }
  if (!/^[A-Za-z0-9_]*$/.test(s)) {
    return `Identifier ${s} has invalid character: Identifiers can only contain alphanumeric characters or underscores`;
  }
  if (s.length > MAX_IDENTIFIER_LEN) return `Identifier is too long (${s.length} > maximum ${MAX_IDENTIFIER_LEN})`;
  if (/^_+$/.test(s)) return `Identifier ${s} cannot have exclusively underscores`;
  return null;
}

function checkModule(p: string): string | null {
  if (p.length === 0) return "Module paths must be nonempty.";
  if (p.startsWith("/")) return `Module paths must be relative (${p} is absolute).`;
  const last = p.split("/").pop() ?? "";
  const dot = last.lastIndexOf(".");
  if (dot > 0 && last.slice(dot + 1) !== "js") {
    return `Module path (${p}) has an extension that isn't 'js'.`;
  }
  for (const component of p.split("/")) {
    if (component === "" || component === "." || component === "..") {
      return `Invalid path component ${JSON.stringify(component)} in ${p}.`;
    }
    if (component.length > MAX_IDENTIFIER_LEN) {
      return `Path component is too long (${component.length} > maximum ${MAX_IDENTIFIER_LEN}): ${component}...`;
    }
    if (!/^[A-Za-z0-9_.]+$/.test(component)) {
      return `Path component ${component} can only contain alphanumeric characters, underscores, or periods.`;
    }
    if (!/[A-Za-z0-9]/.test(component)) {
      return `Path component ${component} must have at least one alphanumeric character.`;
    }
  }
  return null;
}

/** Parses a function path, or returns the backend's error message for it. */
export function parseUdfPath(path: string): UdfPath | { error: string } {
  const colon = path.lastIndexOf(":");
  const rawModule = colon === -1 ? path : path.slice(0, colon);
  const rawName = colon === -1 ? null : path.slice(colon + 1);
  const problem = checkModule(rawModule) ?? (rawName === null ? null : checkIdentifier(rawName));
  if (problem !== null) {
    return { error: `${path} is not a valid path to a Convex function. ${problem}` };
  }
  const module = rawModule.endsWith(".js") ? rawModule.slice(0, -3) : rawModule;
  const name = rawName ?? "default";
  return {
    module,
    name,
    canonical: `${module}.js:${name}`,
    stripped: name === "default" ? module : `${module}:${name}`,
    key: `${module}:${name}`,
  };
}
