// The Convex HTTP API (POST /api/query|mutation|action|function, /api/run/...)
// with the backend's envelopes and status codes (crates/local_backend/src/
// public_api.rs, authentication.rs; crates/common/src/http), plus /_local/*
// endpoints for tests and benchmarks.
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Duplex } from "node:stream";
import { setTimeout as delay } from "node:timers/promises";
import type { UserIdentity } from "convex/server";
import { jsonToConvex, type JSONValue, type Value } from "convex/values";
import type { Engine, RunResult } from "./engine.ts";
import { checkArgsSize, MAX_REQUEST_BODY, MAX_VALUE_NESTING, tooNestedJson } from "./limits.ts";
import type { FunctionInfo, FunctionKind } from "./modules.ts";
import type { Store } from "./persistence.ts";
import type { SyncServer } from "./sync.ts";
import type { CallLog } from "./stats.ts";

/** Documents one POST /_local/import may insert (one transaction). */
const MAX_IMPORT = 8000;
import { parseUdfPath } from "./udfPath.ts";
import { parseValueFormat, writeValue, type ValueFormat } from "./values.ts";

export interface ServerContext {
  engine: Engine;
  functions: Map<string, FunctionInfo>;
  store: Store;
  calls: CallLog;
  adminKey: string;
  version: string;
  /** Added to every /api response after the result is known; see POST /_local/delay. */
  responseDelayMs: number;
  /** The WebSocket sync protocol (/api/sync); null where a server runs without it. */
  sync: SyncServer | null;
}

/** An answer that is not a function result: `{code, message}` with an HTTP error status. */
class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const badJson = (message: string) => new HttpError(400, "BadJsonBody", message);
const badAdminKey = () => new HttpError(401, "BadAdminKey", "The provided admin key was invalid for this instance");

type Auth = { kind: "none" } | { kind: "admin"; key: string } | { kind: "user"; token: string };

/** Header parsing as in local_backend/src/authentication.rs (before the body is read). */
function parseAuthorization(req: IncomingMessage): Auth {
  const header = req.headers.authorization;
  if (header === undefined) return { kind: "none" };
  if (header.length < 7) throw new HttpError(400, "InvalidHeaderFailure", "Invalid authentication header");
  if (header.slice(0, 7).toLowerCase() === "convex ") return { kind: "admin", key: header.slice(7) };
  if (header.length > 7 && header.slice(0, 7).toLowerCase() === "bearer ") {
    return { kind: "user", token: header.slice(7).trim() };
  }
  throw new HttpError(400, "InvalidAdminKey", "Invalid admin key");
}

export function sameKey(a: string, b: string): boolean {
  // Hash first so the comparison takes the same time whatever the lengths.
  const ha = createHash("sha256").update(a).digest();
  const hb = createHash("sha256").update(b).digest();
  return timingSafeEqual(ha, hb);
}

// JWT claim -> UserIdentity field (the inverse of what convex-test's withIdentity encodes).
const CLAIMS: Record<string, string> = {
  sub: "subject",
  iss: "issuer",
  given_name: "givenName",
  family_name: "familyName",
  preferred_username: "preferredUsername",
  profile: "profileUrl",
  picture: "pictureUrl",
  email_verified: "emailVerified",
  birthdate: "birthday",
  zoneinfo: "timezone",
  locale: "language",
  phone_number: "phoneNumber",
  phone_number_verified: "phoneNumberVerified",
  updated_at: "updatedAt",
};
const REGISTERED_CLAIMS = new Set(["aud", "exp", "iat", "nbf", "jti", "azp", "typ"]);

/** The identity a bearer token claims. The signature is NOT verified (local use only). */
export function identityFromJwt(token: string): Partial<UserIdentity> {
  const invalid = new HttpError(
    401,
    "InvalidAuthHeader",
    "Could not parse as OIDC ID token. Token might not be an OIDC-compliant JWT.",
  );
  const parts = token.split(".");
  if (parts.length !== 3) throw invalid;
  let claims: unknown;
  try {
    claims = JSON.parse(Buffer.from(parts[1]!, "base64url").toString("utf8"));
  } catch {
    throw invalid;
  }
  if (typeof claims !== "object" || claims === null || Array.isArray(claims)) throw invalid;
  const identity: Record<string, unknown> = {};
  for (const [claim, value] of Object.entries(claims)) {
    if (!REGISTERED_CLAIMS.has(claim)) identity[CLAIMS[claim] ?? claim] = value;
  }
  if (typeof identity["issuer"] === "string" && typeof identity["subject"] === "string") {
    identity["tokenIdentifier"] = `${identity["issuer"]}|${identity["subject"]}`;
  }
  return identity as Partial<UserIdentity>;
}

function isJsonContentType(value: string | undefined): boolean {
  if (value === undefined) return false;
  const mime = value.split(";")[0]!.trim().toLowerCase();
  const [type, subtype] = mime.split("/");
  return type === "application" && subtype !== undefined && (subtype === "json" || subtype.endsWith("+json"));
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    // Past the limit, keep draining so the client can read our answer.
    if (size <= MAX_REQUEST_BODY) chunks.push(chunk as Buffer);
  }
  if (size > MAX_REQUEST_BODY) throw badJson("Failed to buffer the request body: length limit exceeded");
  return Buffer.concat(chunks);
}

async function readJsonObject(req: IncomingMessage): Promise<Record<string, unknown>> {
  if (!isJsonContentType(req.headers["content-type"])) {
    throw badJson("Expected request with `Content-Type: application/json`");
  }
  const body = await readBody(req);
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString("utf8"));
  } catch (e) {
    throw badJson(`Failed to parse the request body as JSON: ${(e as Error).message}`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw badJson("Failed to deserialize the JSON body into the target type: expected a JSON object");
  }
  return parsed as Record<string, unknown>;
}

function field(body: Record<string, unknown>, name: string, type: "string" | "any", optional = false): unknown {
  const value = body[name];
  if (value === undefined || (value === null && optional)) {
    if (optional) return undefined;
    throw badJson(`Failed to deserialize the JSON body into the target type: missing field \`${name}\``);
  }
  if (type === "string" && typeof value !== "string") {
    throw badJson(
      `Failed to deserialize the JSON body into the target type: ${name}: invalid type: ${JSON.stringify(value)}, expected a string`,
    );
  }
  return value;
}

function send(res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void {
  const bytes = Buffer.from(body, "utf8");
  res.writeHead(status, { "Content-Type": "application/json", "Content-Length": String(bytes.length), ...headers });
  res.end(bytes);
}

function sendText(res: ServerResponse, text: string): void {
  send(res, 200, text, { "Content-Type": "text/plain; charset=utf-8" });
}

function sendError(res: ServerResponse, e: HttpError): void {
  send(res, e.status, JSON.stringify({ code: e.code, message: e.message }));
}

const requestId = () => randomBytes(8).toString("hex");

/** A function error as the backend words it for a development deployment. */
function errorEnvelope(
  message: string,
  frames: string,
  data: Value | undefined,
  logLines: string[],
  format: ValueFormat,
): string {
  const text = `[Request ID: ${requestId()}] Server Error\n${message}\n${frames}`;
  const errorData = data === undefined ? "" : `,"errorData":${writeValue(data, format)}`;
  return `{"status":"error","errorMessage":${JSON.stringify(text)}${errorData},"logLines":${JSON.stringify(logLines)}}`;
}

const KIND_NAMES: Record<FunctionKind, string> = { query: "Query", mutation: "Mutation", action: "Action" };

async function runFunction(
  ctx: ServerContext,
  res: ServerResponse,
  auth: Auth,
  endpointKind: FunctionKind | "any",
  request: { path: string; args: unknown; format: string | undefined; defaultFormat: ValueFormat },
): Promise<void> {
  const udf = parseUdfPath(request.path);
  if ("error" in udf) throw new HttpError(400, "BadConvexFunctionIdentifier", udf.error);

  let isAdmin = false;
  let identity: Partial<UserIdentity> | null = null;
  if (auth.kind === "admin") {
    if (!sameKey(auth.key, ctx.adminKey)) throw badAdminKey();
    isAdmin = true;
  } else if (auth.kind === "user") {
    identity = identityFromJwt(auth.token);
  }

  const format = request.format === undefined ? request.defaultFormat : parseValueFormat(request.format);
  if (format === null) {
    throw new HttpError(400, "BadFormat", `format param must be one of [\`json\`]. Got ${request.format}`);
  }

  // A function error raised before anything runs (no stats, no log lines).
  const refuse = (message: string) => answer(ctx, res, null, errorEnvelope(message, "", undefined, [], format));

  // Same answer for "missing" and "internal without admin key", so internal names don't leak.
  const info = ctx.functions.get(udf.key);
  if (info === undefined || (info.visibility === "internal" && !isAdmin)) {
    return refuse(`Could not find public function for '${udf.stripped}'.`);
  }
  if (endpointKind !== "any" && endpointKind !== info.kind) {
    return refuse(
      `Trying to execute ${udf.canonical} as ${KIND_NAMES[endpointKind]}, but it is defined as ${KIND_NAMES[info.kind]}.`,
    );
  }

  // Arguments are always Convex-encoded JSON, whatever the output format;
  // an array is the legacy positional form and must hold exactly one object.
  const raw = Array.isArray(request.args) ? (request.args as unknown[]) : [request.args];
  let args: Value;
  try {
    if (raw.length !== 1) throw new Error(`expected exactly one argument object, got ${raw.length}`);
    if (tooNestedJson(raw[0])) throw new Error(`Value is too nested (maximum nesting ${MAX_VALUE_NESTING})`);
    args = jsonToConvex(raw[0] as JSONValue);
  } catch (e) {
    return refuse(`Invalid arguments for ${udf.canonical}: ${(e as Error).message}`);
  }
  const tooLarge = checkArgsSize(udf.canonical, args);
  if (tooLarge !== null) return refuse(tooLarge);
  if (typeof args !== "object" || args === null || Array.isArray(args) || args instanceof ArrayBuffer) {
    return refuse(`The arguments to a Convex function must be an object. Received: ${JSON.stringify(raw[0])}`);
  }

  const result = await ctx.engine.run(info.kind, udf.key, args as Record<string, Value>, identity);
  const envelope = result.ok
    ? `{"status":"success","value":${writeValue(result.value, format)},"logLines":${JSON.stringify(result.logLines)}}`
    : errorEnvelope(result.message, result.frames, result.data, result.logLines, format);
  return answer(ctx, res, { info, result, args: args as Record<string, Value> }, envelope);
}

/** Records stats, waits until the WAL holds everything this call may have seen, delays, responds. */
async function answer(
  ctx: ServerContext,
  res: ServerResponse,
  call: { info: FunctionInfo; result: RunResult; args: Record<string, Value> } | null,
  envelope: string,
): Promise<void> {
  const headers: Record<string, string> = {};
  if (call !== null) {
    const op = call.args["op"];
    const record = ctx.calls.add({
      path: call.info.path,
      kind: call.info.kind,
      ok: call.result.ok,
      ...(typeof op === "string" ? { op } : {}),
      ...call.result.stats,
    });
    headers["Convex-Mastra-Stats"] = JSON.stringify({ seq: record.seq, ...call.result.stats });
  }
  // Also for queries: they may have read a commit whose WAL record is still in flight.
  await ctx.store.waitDurable();
  if (ctx.responseDelayMs > 0) await delay(ctx.responseDelayMs);
  send(res, 200, envelope, headers);
}

function requireAdmin(ctx: ServerContext, req: IncomingMessage): void {
  const auth = parseAuthorization(req);
  if (auth.kind === "none") throw new HttpError(401, "Unauthenticated", "This endpoint requires the admin key");
  if (auth.kind !== "admin" || !sameKey(auth.key, ctx.adminKey)) throw badAdminKey();
}

async function route(ctx: ServerContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? "/", "http://localhost");
  const method = req.method ?? "GET";
  const path = url.pathname;
  const allow = (expected: string): boolean => {
    if (method === expected) return true;
    res.writeHead(405, { Allow: expected, "Content-Length": "0" });
    res.end();
    return false;
  };

  const api = /^\/api\/(query|mutation|action|function)$/.exec(path);
  if (api !== null) {
    if (!allow("POST")) return;
    const auth = parseAuthorization(req);
    const body = await readJsonObject(req);
    const request = {
      path: field(body, "path", "string") as string,
      args: field(body, "args", "any"),
      format: field(body, "format", "string", true) as string | undefined,
      // Modern clients get clean JSON when they name no format (common/src/version.rs).
      defaultFormat: "json" as const,
    };
    return runFunction(ctx, res, auth, api[1] === "function" ? "any" : (api[1] as FunctionKind), request);
  }
  if (path.startsWith("/api/run/")) {
    if (!allow("POST")) return;
    const auth = parseAuthorization(req);
    const body = await readJsonObject(req);
    let parts: string[] = [];
    try {
      parts = path.slice("/api/run/".length).split("/").map(decodeURIComponent);
    } catch {
      // fall through: reported as a missing identifier
    }
    if (parts.length < 2 || parts.some((p) => p === "")) {
      throw new HttpError(
        400,
        "MissingIdentifier",
        "Path or function name not provided in path, e.g. /api/run/messages/list",
      );
    }
    const name = parts.pop()!;
    return runFunction(ctx, res, auth, "any", {
      path: `${parts.join("/")}:${name}`,
      args: field(body, "args", "any"),
      format: field(body, "format", "string", true) as string | undefined,
      defaultFormat: "json",
    });
  }
  if (path === "/version" || path === "/instance_version") {
    if (allow("GET")) sendText(res, ctx.version);
    return;
  }
  if (path === "/") {
    if (allow("GET")) sendText(res, "This Convex deployment is running. See https://docs.convex.dev/.");
    return;
  }
  if (path === "/_local/calls") {
    if (!allow("GET")) return;
    requireAdmin(ctx, req);
    const since = Number(url.searchParams.get("since") ?? "0");
    if (!Number.isInteger(since) || since < 0)
      throw new HttpError(400, "BadQueryArgs", "since must be a non-negative integer");
    send(res, 200, JSON.stringify(ctx.calls.since(since)));
    return;
  }
  if (path === "/_local/delay") {
    if (!allow("POST")) return;
    requireAdmin(ctx, req);
    const ms = (await readJsonObject(req))["ms"];
    if (typeof ms !== "number" || !Number.isFinite(ms) || ms < 0 || ms > 600_000) {
      throw new HttpError(400, "BadDelay", "ms must be a number of milliseconds between 0 and 600000");
    }
    ctx.responseDelayMs = ms;
    send(res, 200, JSON.stringify({ ms }));
    return;
  }
  if (path === "/_local/import") {
    if (!allow("POST")) return;
    requireAdmin(ctx, req);
    const body = await readJsonObject(req);
    const { table, documents } = body;
    if (typeof table !== "string" || !Array.isArray(documents) || documents.length > MAX_IMPORT) {
      throw new HttpError(400, "BadImport", `expected {table, documents: [...]} with at most ${MAX_IMPORT} documents`);
    }
    let inserted: number;
    try {
      inserted = await ctx.engine.importDocuments(
        table,
        documents.map((doc) => jsonToConvex(doc as JSONValue) as Record<string, Value>),
      );
    } catch (e) {
      throw new HttpError(400, "BadImport", e instanceof Error ? e.message : String(e));
    }
    send(res, 200, JSON.stringify({ inserted }));
    return;
  }
  if (path === "/_local/subscriptions") {
    if (!allow("GET")) return;
    requireAdmin(ctx, req);
    send(res, 200, JSON.stringify(ctx.sync?.subscriptions() ?? []));
    return;
  }
  if (path === "/_local/sync/latencies") {
    // Takes them: each call returns the Transitions sent since the previous one.
    if (!allow("POST")) return;
    requireAdmin(ctx, req);
    send(res, 200, JSON.stringify({ ms: ctx.sync?.takeLatencies() ?? [] }));
    return;
  }
  if (path === "/_local/functions") {
    if (!allow("GET")) return;
    requireAdmin(ctx, req);
    send(res, 200, JSON.stringify([...ctx.functions.values()]));
    return;
  }
  res.writeHead(404, { "Content-Length": "0" });
  res.end();
}

export function createHttpServer(ctx: ServerContext): Server {
  const server = createServer((req, res) => {
    route(ctx, req, res).catch((e: unknown) => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      if (e instanceof HttpError) {
        // A body we stopped reading cannot be followed by another request on this connection.
        if (!req.complete) res.setHeader("Connection", "close");
        sendError(res, e);
        return;
      }
      process.stderr.write(`convex-mastra: internal error: ${e instanceof Error ? e.stack : String(e)}\n`);
      sendError(res, new HttpError(500, "InternalServerError", "Your request couldn't be completed. Try again later."));
    });
  });
  server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    if (ctx.sync === null || !ctx.sync.handleUpgrade(req, socket, head)) socket.destroy();
  });
  // Long actions and big bodies are fine locally; keep-alive sockets can idle a while.
  server.requestTimeout = 0;
  server.keepAliveTimeout = 65_000;
  return server;
}
