// Convex limits that convex-test does not enforce. Numbers and messages follow the
// real backend (crates/common/src/document.rs, crates/value/src, crates/udf) and
// the documented limits (docs.convex.dev/production/state/limits).
// convex-test's own transaction limits (16 MiB read/written, 32k documents read,
// 16k written, 4096 index ranges, scheduling) are switched on separately with
// `transactionLimits: true`.
import { getConvexSize, type Value } from "convex/values";
import type { Doc } from "./internals.ts";

const MiB = 1 << 20;
export const MAX_DOCUMENT_SIZE = MiB;
export const MAX_DOCUMENT_NESTING = 16;
export const MAX_OBJECT_FIELDS = 1024;
export const MAX_ARRAY_LENGTH = 8192;
export const MAX_FIELD_NAME_LENGTH = 1024;
export const MAX_ARGS_SIZE = 16 * MiB;
/** Nesting limit for any Convex value (crates/value/src/size.rs). */
export const MAX_VALUE_NESTING = 64;
/** The real backend's body limit on the public HTTP API (16 MiB + 2000 bytes). */
export const MAX_REQUEST_BODY = 16 * MiB + 2000;

/** Sizes the way the backend prints them (humansize BINARY): "1 MiB", "1.50 MiB". */
export function formatSize(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  const text = Number.isInteger(value) ? String(value) : value.toFixed(2);
  return `${text} ${units[unit]}`;
}

function checkFieldName(name: string): void {
  if (name.length === 0) {
    throw new Error("Field name cannot be empty: field names must start with a letter or an underscore.");
  }
  if (name.length > MAX_FIELD_NAME_LENGTH) {
    throw new Error(`Field name ${name} exceeds maximum field name length ${MAX_FIELD_NAME_LENGTH}.`);
  }
  if (name.startsWith("$")) {
    throw new Error(`Field name ${name} starts with '$', which is reserved.`);
  }
  for (const c of name) {
    const code = c.charCodeAt(0);
    if (c.length > 1 || code < 32 || code >= 127) {
      throw new Error(
        `Field name ${name} has invalid character ${JSON.stringify(c)}: ` +
          "Field names can only contain non-control ASCII characters",
      );
    }
  }
}

/** Nesting of a value as the backend counts it: scalars 0, `{}` and `[]` 1. */
function checkValue(value: Value | undefined, depth: number): number {
  if (typeof value === "string") {
    if (!value.isWellFormed()) {
      throw new Error("Strings must be valid Unicode sequences with no unpaired surrogates.");
    }
    return 0;
  }
  if (value === null || typeof value !== "object" || value instanceof ArrayBuffer) return 0;
  if (depth >= MAX_DOCUMENT_NESTING) {
    // Stop descending early; report the limit the way the backend does.
    throw new Error(
      `Document is too nested (nested ${depth + 1} levels deep > maximum nesting ${MAX_DOCUMENT_NESTING})`,
    );
  }
  let inner = 0;
  if (Array.isArray(value)) {
    if (value.length > MAX_ARRAY_LENGTH) {
      throw new Error(`Array length is too long (${value.length} > maximum length ${MAX_ARRAY_LENGTH})`);
    }
    for (const item of value) inner = Math.max(inner, checkValue(item, depth + 1));
    return inner + 1;
  }
  const entries = Object.entries(value as Record<string, Value | undefined>).filter(([, v]) => v !== undefined);
  if (entries.length > MAX_OBJECT_FIELDS) {
    throw new Error(`Object has too many fields (${entries.length} > maximum number ${MAX_OBJECT_FIELDS})`);
  }
  for (const [key, item] of entries) {
    checkFieldName(key);
    inner = Math.max(inner, checkValue(item, depth + 1));
  }
  return inner + 1;
}

/** Throws if `doc` (a complete new document version, system fields included) breaks a limit. */
export function validateDocument(table: string, doc: Doc): void {
  for (const [key, value] of Object.entries(doc)) {
    if (value !== undefined && key.startsWith("_") && key !== "_id" && key !== "_creationTime") {
      throw new Error(`Field '${key}' starts with an underscore, which is only allowed for system fields like '_id'`);
    }
  }
  checkValue(doc as Value, 0);
  const size = getConvexSize(doc as Value);
  if (size > MAX_DOCUMENT_SIZE) {
    throw new Error(
      `Value is too large (${formatSize(size)} > maximum size ${formatSize(MAX_DOCUMENT_SIZE)}) ` +
        `in a document of table "${table}"`,
    );
  }
}

/** Error text for arguments over the 16 MiB limit, or null when they fit. */
export function checkArgsSize(canonicalPath: string, args: Value): string | null {
  const size = getConvexSize(args);
  if (size <= MAX_ARGS_SIZE) return null;
  return `Arguments for ${canonicalPath} are too large (actual: ${formatSize(size)}, limit: ${formatSize(MAX_ARGS_SIZE)})`;
}

/** Whether JSON (an argument, before decoding) nests deeper than any Convex value may. */
export function tooNestedJson(value: unknown, depth = 0): boolean {
  if (typeof value !== "object" || value === null) return false;
  // {"$integer": ...}, {"$bytes": ...} and {"$float": ...} encode scalars.
  if (!Array.isArray(value) && Object.keys(value).some((k) => k.startsWith("$"))) return false;
  if (depth >= MAX_VALUE_NESTING) return true;
  const items = Array.isArray(value) ? value : Object.values(value);
  return items.some((item) => tooNestedJson(item, depth + 1));
}
