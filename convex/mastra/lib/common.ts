// Shared types and small helpers for the storage and cache handlers.
import type { GenericDataModel, GenericMutationCtx, GenericQueryCtx } from "convex/server";
import { type GenericId, type Value, getDocumentSize } from "convex/values";

export type Ctx = GenericMutationCtx<GenericDataModel>;
export type ReadCtx = GenericQueryCtx<GenericDataModel>;

/** A document body without system fields. */
export type Fields = Record<string, Value>;
/** A stored document. */
export type Doc = Fields & { _id: GenericId<string>; _creationTime: number };

export type OkResponse = {
  ok: true;
  result?: unknown;
  hasMore?: boolean;
  continuationCursor?: string | null;
  /** listFromTo paging: absolute index to continue from, and the range end. */
  next?: number;
  to?: number;
};
/**
 * Why an operation was refused, for clients to act on without reading the
 * message (which is for people and may change). Upstream's TypeScript clients
 * copy `code` and `details` onto the errors they throw.
 */
export type ErrorCode =
  | "INVALID" // the request itself is malformed
  | "NOT_FOUND" // the record the operation needs does not exist
  | "CONFLICT" // the record to create exists already, or changed since a conditional write read it
  | "TOO_LARGE" // a document over Convex's 1 MiB limit; details: table, kind, id, size, limit
  | "TYPE_MISMATCH" // a cache key holds another kind (a list op on a value, say)
  | "LIMIT" // a request over one of the handler's per-call bounds
  | "STALE_COUNTERS" // totals need rebuildCounters first
  | "UNSUPPORTED_OP" // no such operation (for this table)
  | "FAILED"; // anything else thrown before a write, such as a Convex limit
export type ErrorDetails = Record<string, Value>;
export type FailResponse = { ok: false; error: string; code: ErrorCode; details?: ErrorDetails };
export type Response = OkResponse | FailResponse;

/** Requests arrive as loosely typed JSON; every op reads what it needs. */
export type Request = { op: string; tableName?: string } & Record<string, unknown>;

/**
 * An error caused by the request itself. Thrown before any write so the
 * handler can answer `{ok: false, error}` without a partial write.
 */
export class RequestError extends Error {
  readonly code: ErrorCode;
  readonly details: ErrorDetails | undefined;

  constructor(message: string, code: ErrorCode = "INVALID", details?: ErrorDetails) {
    super(message);
    this.code = code;
    this.details = details;
  }
}

/** What a stored record is called in messages and error details: `message "m1"`. */
export type Label = { kind: string; id: string };
export const label = (kind: string, id: unknown): Label => ({ kind, id: String(id) });
export const labelText = (l: Label): string => `${l.kind} ${JSON.stringify(l.id)}`;

export const ok = (result?: unknown, extra: Partial<OkResponse> = {}): OkResponse =>
  result === undefined ? { ok: true, ...extra } : { ok: true, result, ...extra };

export const fail = (
  error: string,
  code: ErrorCode = "INVALID",
  details?: ErrorDetails,
): FailResponse =>
  details === undefined ? { ok: false, error, code } : { ok: false, error, code, details };

/** The answer for an error thrown before any write: a RequestError's code, else FAILED. */
export function failure(error: unknown): FailResponse {
  if (error instanceof RequestError) return fail(error.message, error.code, error.details);
  return fail(errorMessage(error), "FAILED");
}

/** The answer for an operation the handler does not have (for this table). */
export function unsupported(req: Request): FailResponse {
  const where = req.tableName === undefined ? "" : ` for table ${req.tableName}`;
  return fail(`Unsupported operation ${req.op}${where}`, "UNSUPPORTED_OP", { op: req.op });
}

export function errorMessage(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** `[[name, scalar], ...]`: pairs, not an object, since names may be "$schema" and the like. */
export function isScalarPairs(value: unknown): value is [string, Value][] {
  return (
    Array.isArray(value) &&
    value.every(
      (pair) =>
        Array.isArray(pair) &&
        pair.length === 2 &&
        typeof pair[0] === "string" &&
        (pair[1] === null || typeof pair[1] !== "object"),
    )
  );
}

// ---- request field readers: each throws a RequestError naming the field ----

export function readString(req: Request, field: string): string {
  const value = req[field];
  if (typeof value !== "string") {
    throw new RequestError(`${req.op}: "${field}" must be a string`);
  }
  return value;
}

export function readOptionalString(req: Request, field: string): string | undefined {
  const value = req[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "string") {
    throw new RequestError(`${req.op}: "${field}" must be a string when given`);
  }
  return value;
}

export function readObject(req: Request, field: string): Record<string, unknown> {
  const value = req[field];
  if (!isPlainObject(value)) {
    throw new RequestError(`${req.op}: "${field}" must be an object`);
  }
  return value;
}

export function readArray(req: Request, field: string): unknown[] {
  const value = req[field];
  if (!Array.isArray(value)) {
    throw new RequestError(`${req.op}: "${field}" must be an array`);
  }
  return value;
}

export function readStringArray(req: Request, field: string): string[] {
  const values = readArray(req, field);
  for (const value of values) {
    if (typeof value !== "string") {
      throw new RequestError(`${req.op}: every entry of "${field}" must be a string`);
    }
  }
  return values as string[];
}

/** An optional integer in [min, max]; `fallback` when absent. */
export function readInt(
  req: Request,
  field: string,
  fallback: number,
  min: number,
  max: number,
): number {
  const value = req[field];
  if (value === undefined || value === null) return fallback;
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    throw new RequestError(`${req.op}: "${field}" must be an integer between ${min} and ${max}`);
  }
  return value;
}

export function dedupe<T>(values: readonly T[]): T[] {
  return [...new Set(values)];
}

/** Run `fn` over `items` with bounded parallelism, keeping order. */
export async function mapChunked<T, R>(
  items: readonly T[],
  fn: (item: T) => Promise<R>,
  chunkSize = 64,
): Promise<R[]> {
  const out: R[] = [];
  for (let i = 0; i < items.length; i += chunkSize) {
    out.push(...(await Promise.all(items.slice(i, i + chunkSize).map(fn))));
  }
  return out;
}

/** Bytes one call reads in bulk: half of Convex's 16 MiB, leaving room for the rest of it. */
export const READ_BUDGET = 8 * 1024 * 1024;
/** For reads of rows the same call then deletes: a delete reads its row again. */
export const DELETE_BUDGET = 4 * 1024 * 1024;

/**
 * Up to `n` documents of `query`, fewer once `budget` bytes were read (rows can be up
 * to 1 MiB each, so a row count alone cannot keep a call under Convex's read limit).
 * `next` is the first document not returned, or null when the query is exhausted.
 */
export async function takeWithin(
  query: AsyncIterable<unknown>,
  n: number,
  budget = READ_BUDGET,
): Promise<{ docs: Doc[]; next: Doc | null }> {
  const docs: Doc[] = [];
  let bytes = 0;
  for await (const doc of query) {
    if (docs.length >= n || bytes >= budget) return { docs, next: doc as Doc };
    docs.push(doc as Doc);
    bytes += getDocumentSize(doc as Record<string, Value>);
  }
  return { docs, next: null };
}

/** Group key of `doc` for `fields`, or null when a field has no value. */
export function groupKey(fields: readonly string[], doc: Record<string, unknown>): string | null {
  const values: Record<string, unknown> = {};
  for (const field of fields) {
    const value = doc[field];
    if (value === undefined || value === null) return null;
    values[field] = value;
  }
  return JSON.stringify(values);
}

/** Drop the system fields so a document body can be rewritten. */
export function bodyOf(doc: Fields): Fields {
  const { _id: _ignoredId, _creationTime: _ignoredTime, ...body } = doc;
  return body;
}
