// Value encoding and write-time validation.
//
// Convex rejects a whole document when one nested key is not a valid field
// name, so free-form JSON (thread/resource metadata, workflow snapshots,
// generic records) is stored as-is only when it is safe, and as JSON text
// otherwise. Readers already accept both forms (the TypeScript package parses
// string metadata and snapshots with JSON.parse).
//
// Typed documents are checked against their table validator before the first
// write of a request, so a bad record yields `{ok:false}` instead of a
// half-applied batch.
import { getDocumentSize, type Value } from "convex/values";
import { mastraTables } from "../tables";
import { type Fields, type Label, RequestError, isPlainObject, labelText } from "./common";

export const MAX_DOCUMENT_BYTES = 1024 * 1024;
// Limits from the Convex docs; exceeding them only means "store as text".
const MAX_SAFE_DEPTH = 16;
const MAX_ARRAY_LENGTH = 8192;
const MAX_OBJECT_FIELDS = 1024;
const MAX_FIELD_NAME = 1024;

/** Why `key` cannot be a Convex field name, or null when it can. */
function fieldNameProblem(key: string, topLevel: boolean): string | null {
  if (key.length === 0) return "is empty";
  if (key.length > MAX_FIELD_NAME) return "is too long";
  if (key.startsWith("$")) return "starts with '$'";
  if (topLevel && key.startsWith("_")) return "starts with '_'";
  for (let i = 0; i < key.length; i++) {
    const code = key.charCodeAt(i);
    if (code < 32 || code >= 127) return "has a non-ASCII or control character";
  }
  return null;
}

/** True when `value` can be stored verbatim as a nested Convex value. */
export function isConvexSafe(value: unknown, depth = 0): boolean {
  if (value === null) return true;
  switch (typeof value) {
    case "string":
    case "boolean":
      return true;
    case "number":
    case "bigint": // Convex int64
      return true;
    case "object":
      break;
    default:
      return false;
  }
  if (value instanceof ArrayBuffer) return true; // Convex bytes
  if (depth >= MAX_SAFE_DEPTH) return false;
  if (Array.isArray(value)) {
    return value.length <= MAX_ARRAY_LENGTH && value.every((item) => isConvexSafe(item, depth + 1));
  }
  if (!isPlainObject(value)) return false;
  const entries = Object.entries(value);
  if (entries.length > MAX_OBJECT_FIELDS) return false;
  return entries.every(
    ([key, item]) =>
      item !== undefined &&
      // Convex accepts the key, but JavaScript readers of the value (convex's own jsonToConvex
      // and convexToJson among them) assign it with `out[key] = ...`, which sets the
      // prototype instead: the key silently disappears. As JSON text it survives.
      key !== "__proto__" &&
      fieldNameProblem(key, depth === 0) === null &&
      isConvexSafe(item, depth + 1),
  );
}

/** Store free-form JSON verbatim when Convex accepts it, else as JSON text. */
export function encodeJson(value: unknown): Value {
  if (value === undefined) return null;
  if (typeof value === "string") return value;
  // Depth 1: the value is a field of a document, so the document adds one level of nesting.
  return isConvexSafe(value, 1) ? (value as Value) : JSON.stringify(value);
}

/** Read a JSON object stored by `encodeJson` (or raw); anything else is {}. */
export function decodeJsonObject(value: unknown): Record<string, unknown> {
  if (typeof value === "string") {
    try {
      return decodeJsonObject(JSON.parse(value));
    } catch {
      return {};
    }
  }
  return isPlainObject(value) ? value : {};
}

/** Read a generic record stored by `encodeJson`. */
export function decodeRecord(value: unknown): Record<string, unknown> | null {
  if (typeof value === "string") {
    try {
      const parsed: unknown = JSON.parse(value);
      return isPlainObject(parsed) ? parsed : null;
    } catch {
      return null;
    }
  }
  return isPlainObject(value) ? value : null;
}

// ---- validation against the table validators --------------------------------

type AnyValidator = {
  kind: string;
  isOptional: "optional" | "required";
  fields?: Record<string, AnyValidator>;
  members?: AnyValidator[];
  element?: AnyValidator;
  value?: unknown;
  key?: AnyValidator;
};

function tableValidator(table: string): Record<string, AnyValidator> {
  const definition = (mastraTables as Record<string, { validator: unknown }>)[table];
  if (!definition) throw new Error(`Unknown table ${table}`);
  return (definition.validator as AnyValidator).fields ?? {};
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  return typeof value;
}

/** Problems with a free-form value (v.any): only field names and types. */
function anyValueProblem(value: unknown, path: string): string | null {
  if (value === null) return null;
  switch (typeof value) {
    case "string":
    case "boolean":
    case "bigint":
      return null;
    case "number":
      return null;
    case "object":
      break;
    default:
      return `${path} has an unsupported value of type ${typeof value}`;
  }
  if (value instanceof ArrayBuffer) return null;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const problem = anyValueProblem(value[i], `${path}[${i}]`);
      if (problem) return problem;
    }
    return null;
  }
  for (const [key, item] of Object.entries(value as Record<string, unknown>)) {
    const nameProblem = fieldNameProblem(key, false);
    if (nameProblem) return `${path} has key ${JSON.stringify(key)} that ${nameProblem}`;
    if (item === undefined) continue;
    const problem = anyValueProblem(item, `${path}.${key}`);
    if (problem) return problem;
  }
  return null;
}

function valueProblem(validator: AnyValidator, value: unknown, path: string): string | null {
  switch (validator.kind) {
    case "any":
      return anyValueProblem(value, path);
    case "string":
      return typeof value === "string" ? null : `${path} must be a string (got ${describe(value)})`;
    case "float64":
      return typeof value === "number" ? null : `${path} must be a number (got ${describe(value)})`;
    case "int64":
      return typeof value === "bigint" ? null : `${path} must be an int64 (got ${describe(value)})`;
    case "boolean":
      return typeof value === "boolean"
        ? null
        : `${path} must be a boolean (got ${describe(value)})`;
    case "null":
      return value === null ? null : `${path} must be null (got ${describe(value)})`;
    case "literal":
      return value === validator.value
        ? null
        : `${path} must be ${JSON.stringify(validator.value)} (got ${JSON.stringify(value)})`;
    case "array": {
      if (!Array.isArray(value)) return `${path} must be an array (got ${describe(value)})`;
      for (let i = 0; i < value.length; i++) {
        const problem = valueProblem(validator.element!, value[i], `${path}[${i}]`);
        if (problem) return problem;
      }
      return null;
    }
    case "union": {
      const members = validator.members ?? [];
      if (members.some((member) => valueProblem(member, value, path) === null)) return null;
      return `${path} has an invalid value ${JSON.stringify(value)}`;
    }
    case "object": {
      if (!isPlainObject(value)) return `${path} must be an object (got ${describe(value)})`;
      return fieldsProblem(validator.fields ?? {}, value, path);
    }
    default:
      // Validators we do not use in our tables: leave the check to Convex.
      return null;
  }
}

function fieldsProblem(
  fields: Record<string, AnyValidator>,
  value: Record<string, unknown>,
  path: string,
): string | null {
  for (const key of Object.keys(value)) {
    if (value[key] !== undefined && !(key in fields)) {
      return `${path} has unknown field ${JSON.stringify(key)}`;
    }
  }
  for (const [key, fieldValidator] of Object.entries(fields)) {
    const item = value[key];
    if (item === undefined) {
      if (fieldValidator.isOptional === "required") {
        return `${path} is missing required field ${JSON.stringify(key)}`;
      }
      continue;
    }
    const problem = valueProblem(fieldValidator, item, `${path}.${key}`);
    if (problem) return problem;
  }
  return null;
}

function acceptsNull(validator: AnyValidator): boolean {
  if (validator.kind === "null" || validator.kind === "any") return true;
  if (validator.kind === "union") return (validator.members ?? []).some(acceptsNull);
  return false;
}

/**
 * Clients send `null` for "no value"; an optional column that does not accept
 * null is left out instead (which also clears it on update).
 */
export function dropNullOptionals(table: string, body: Fields): Fields {
  const fields = tableValidator(table);
  const out: Fields = {};
  for (const [key, value] of Object.entries(body)) {
    if (value === undefined) continue;
    const validator = fields[key];
    if (
      value === null &&
      validator &&
      validator.isOptional === "optional" &&
      !acceptsNull(validator)
    ) {
      continue;
    }
    out[key] = value;
  }
  return out;
}

/** Throw a RequestError when `body` would be rejected as a `table` document. */
export function checkDocument(table: string, body: Fields, label: Label): void {
  const problem = fieldsProblem(tableValidator(table), body, labelText(label));
  if (problem) throw new RequestError(`${table}: ${problem}`);
  const size = getDocumentSize(body);
  if (size > MAX_DOCUMENT_BYTES) {
    throw new RequestError(
      `${table}: ${labelText(label)} is ${size} bytes, over the 1 MiB Convex document limit`,
      "TOO_LARGE",
      { table, kind: label.kind, id: label.id, size, limit: MAX_DOCUMENT_BYTES },
    );
  }
}
