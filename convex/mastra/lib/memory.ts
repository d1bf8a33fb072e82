// Memory ops: thread/resource updates of the @mastra/convex protocol plus our
// transactional message ops (saveMessages, deleteMessages, deleteThread).
import type { Value } from "convex/values";
import {
  bodyOf,
  type Ctx,
  dedupe,
  DELETE_BUDGET,
  type Doc,
  fail,
  type Fields,
  isPlainObject,
  label,
  mapChunked,
  ok,
  readArray,
  readInt,
  readOptionalString,
  readString,
  readStringArray,
  type Request,
  RequestError,
  type Response,
  takeWithin,
  unsupported,
} from "./common";
import { decodeJsonObject } from "./encoding";
import { byIndex, findById, MESSAGES, RESOURCES, THREADS } from "./tables";
import { MAX_BATCH, type Plan, applyPlans, prepareBody } from "./typed";
import type { Writer } from "./writer";

/**
 * Metadata argument: an object, or JSON text of one (clients send text when
 * keys like "$schema" cannot travel as Convex values). Absent -> undefined.
 */
function readMetadata(req: Request): Record<string, unknown> | undefined {
  const raw = req.metadata;
  if (raw === undefined || raw === null) return undefined;
  if (isPlainObject(raw)) return raw;
  if (typeof raw === "string") {
    try {
      const parsed: unknown = JSON.parse(raw);
      if (isPlainObject(parsed)) return parsed;
    } catch {
      // fall through to the error below
    }
  }
  throw new RequestError(`${req.op}: "metadata" must be an object or JSON text of one`);
}

/** `expectedMetadata`: JSON text of the metadata a conditional update read, or undefined. */
function readExpected(req: Request): Record<string, unknown> | undefined {
  const raw = req.expectedMetadata;
  if (raw === undefined || raw === null) return undefined;
  if (typeof raw === "string") {
    try {
      const parsed: unknown = JSON.parse(raw);
      if (isPlainObject(parsed)) return parsed;
    } catch {
      // fall through to the error below
    }
  }
  throw new RequestError(`${req.op}: "expectedMetadata" must be JSON text of an object`);
}

/** Deep equality of JSON values (key order aside). */
function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a)) {
    return Array.isArray(b) && a.length === b.length && a.every((x, i) => sameJson(x, b[i]));
  }
  if (!isPlainObject(a) || !isPlainObject(b)) return false;
  const keys = Object.keys(a);
  return (
    keys.length === Object.keys(b).length &&
    keys.every((key) => Object.prototype.hasOwnProperty.call(b, key) && sameJson(a[key], b[key]))
  );
}

/** Stored metadata (object or JSON text) with `update` merged key by key. */
function mergeMetadata(stored: unknown, update: Record<string, unknown>): Record<string, unknown> {
  return { ...decodeJsonObject(stored), ...update };
}

/** `requested`, or 1 ms after `stored` when that is not later (ISO with ms). */
function laterThan(stored: unknown, requested: string | undefined): string {
  const storedMs = typeof stored === "string" ? Date.parse(stored) : NaN;
  const requestedMs = requested === undefined ? Date.now() : Date.parse(requested);
  if (Number.isNaN(storedMs)) return requested ?? new Date(requestedMs).toISOString();
  if (!Number.isNaN(requestedMs) && requestedMs > storedMs) {
    return requested ?? new Date(requestedMs).toISOString();
  }
  return new Date(storedMs + 1).toISOString();
}

export async function updateThread(
  ctx: Ctx,
  w: Writer,
  table: string,
  req: Request,
): Promise<Response> {
  if (table !== THREADS) return unsupported(req);
  const id = readString(req, "id");
  const title = readOptionalString(req, "title");
  const updatedAt = readOptionalString(req, "updatedAt");
  const metadata = readMetadata(req);
  const replace = req.replaceMetadata === true;
  const expected = readExpected(req);
  const existing = await findById(ctx, THREADS, id);
  if (!existing) return ok(null);
  if (expected !== undefined && !sameJson(decodeJsonObject(existing.metadata), expected)) {
    return fail(`thread ${JSON.stringify(id)}: metadata changed since it was read`, "CONFLICT", {
      table,
      id,
    });
  }
  const body: Fields = { ...bodyOf(existing), updatedAt: laterThan(existing.updatedAt, updatedAt) };
  // An empty title is a title; only an absent one leaves it unchanged.
  if (title !== undefined) body.title = title;
  if (metadata) {
    body.metadata = (replace ? metadata : mergeMetadata(existing.metadata, metadata)) as Value;
  }
  const prepared = prepareBody(THREADS, body, label("thread", id));
  await applyPlans(w, [{ table: THREADS, existing, body: prepared }]);
  return ok({ ...prepared, _id: existing._id, _creationTime: existing._creationTime });
}

export async function updateResource(
  ctx: Ctx,
  w: Writer,
  table: string,
  req: Request,
): Promise<Response> {
  if (table !== RESOURCES) return unsupported(req);
  const id = readString(req, "resourceId");
  const workingMemory = readOptionalString(req, "workingMemory");
  const metadata = readMetadata(req);
  const existing = await findById(ctx, RESOURCES, id);
  if (!existing) {
    const body: Fields = {
      id,
      ...(workingMemory !== undefined ? { workingMemory } : {}),
      metadata: (metadata ?? {}) as Value,
      createdAt: readString(req, "createdAt"),
      updatedAt: readString(req, "updatedAt"),
    };
    const prepared = prepareBody(RESOURCES, body, label("resource", id));
    await applyPlans(w, [{ table: RESOURCES, existing: null, body: prepared }]);
    return ok(prepared);
  }
  const body: Fields = { ...bodyOf(existing), updatedAt: readString(req, "updatedAt") };
  if (workingMemory !== undefined) body.workingMemory = workingMemory;
  if (metadata) body.metadata = mergeMetadata(existing.metadata, metadata) as Value;
  const prepared = prepareBody(RESOURCES, body, label("resource", id));
  await applyPlans(w, [{ table: RESOURCES, existing, body: prepared }]);
  return ok({ ...prepared, _id: existing._id, _creationTime: existing._creationTime });
}

// ---- messages ------------------------------------------------------------

const MESSAGE_STRING_FIELDS = ["id", "thread_id", "content", "role", "type", "createdAt"] as const;

function readMessage(raw: unknown, i: number): Fields {
  if (!isPlainObject(raw)) throw new RequestError(`saveMessages: messages[${i}] must be an object`);
  const row: Fields = {};
  for (const field of MESSAGE_STRING_FIELDS) {
    const value = raw[field];
    if (typeof value !== "string" || (field !== "content" && value === "")) {
      throw new RequestError(`saveMessages: messages[${i}].${field} must be a non-empty string`);
    }
    row[field] = value;
  }
  if (raw.resourceId !== undefined && raw.resourceId !== null) {
    if (typeof raw.resourceId !== "string") {
      throw new RequestError(`saveMessages: messages[${i}].resourceId must be a string`);
    }
    row.resourceId = raw.resourceId;
  }
  for (const field of Object.keys(raw)) {
    if (!(field in row) && field !== "resourceId" && field !== "_id" && field !== "_creationTime") {
      throw new RequestError(
        `saveMessages: messages[${i}] has unknown field ${JSON.stringify(field)}`,
      );
    }
  }
  return row;
}

/**
 * saveMessages {messages, threadUpdatedAt?}: upsert whole message rows by id
 * in one transaction. A message whose thread_id changes moves (counters of
 * both threads follow). Every touched thread, old and new, gets
 * `updatedAt = threadUpdatedAt` and a fresh `lastMessageAt`.
 */
export async function saveMessages(ctx: Ctx, w: Writer, req: Request): Promise<Response> {
  const raw = readArray(req, "messages");
  const threadUpdatedAt = readOptionalString(req, "threadUpdatedAt");
  const rows = new Map<string, Fields>();
  raw.forEach((message, i) => {
    const row = readMessage(message, i);
    rows.set(row.id as string, row); // a repeated id: the last row wins
  });
  const threadIds = dedupe([...rows.values()].map((row) => row.thread_id as string));
  const threads = await mapChunked(threadIds, (id) => findById(ctx, THREADS, id));
  threads.forEach((thread, i) => {
    if (!thread) {
      throw new RequestError(`Thread ${threadIds[i]} not found`, "NOT_FOUND", {
        table: THREADS,
        id: threadIds[i]!,
      });
    }
  });
  const existing = await mapChunked([...rows.keys()], (id) => findById(ctx, MESSAGES, id));
  const plans: Plan[] = [...rows.values()].map((row, i) => ({
    table: MESSAGES,
    existing: existing[i] ?? null,
    body: prepareBody(MESSAGES, row, label("message", row.id)),
  }));
  const touched = new Set(threadIds);
  for (const doc of existing) if (doc) touched.add(doc.thread_id as string);
  const inserted = existing.filter((doc) => doc === null).length;
  await applyPlans(w, plans);
  for (const threadId of touched) {
    w.touchThread(threadId, threadUpdatedAt !== undefined ? { updatedAt: threadUpdatedAt } : {});
  }
  return ok({ inserted, updated: rows.size - inserted, threads: [...touched] });
}

/**
 * deleteMessages {ids, updatedAt?}: delete the messages that exist; their
 * threads get a recomputed `lastMessageAt` and, if given, `updatedAt`.
 */
export async function deleteMessages(ctx: Ctx, w: Writer, req: Request): Promise<Response> {
  const ids = dedupe(readStringArray(req, "ids"));
  const updatedAt = readOptionalString(req, "updatedAt");
  const docs = (await mapChunked(ids, (id) => findById(ctx, MESSAGES, id))).filter(
    (doc): doc is Doc => doc !== null,
  );
  await applyPlans(
    w,
    docs.map((doc) => ({ table: MESSAGES, existing: doc, body: null })),
  );
  const threads = dedupe(docs.map((doc) => doc.thread_id as string));
  for (const threadId of threads) {
    w.touchThread(threadId, updatedAt !== undefined ? { updatedAt } : {});
  }
  return ok({ deleted: docs.length, threads });
}

/**
 * popMessage {threadId, updatedAt?}: delete the thread's newest message (by createdAt, then
 * insertion) and answer its row, or null when it has none. One transaction: two pops that read
 * the same newest row conflict under optimistic concurrency, and the one retried takes the next.
 */
export async function popMessage(ctx: Ctx, w: Writer, req: Request): Promise<Response> {
  const threadId = readString(req, "threadId");
  const updatedAt = readOptionalString(req, "updatedAt");
  const newest = (await byIndex(ctx, MESSAGES, "by_thread_created", [["thread_id", threadId]])
    .order("desc")
    .first()) as Doc | null;
  if (newest === null) return ok(null);
  await applyPlans(w, [{ table: MESSAGES, existing: newest, body: null }]);
  w.touchThread(threadId, updatedAt !== undefined ? { updatedAt } : {});
  return ok(newest);
}

/**
 * deleteThread {threadId, batchSize?}: delete up to batchSize messages of the
 * thread (fewer when they are big: reads stay within DELETE_BUDGET); once none
 * remain the thread row goes in the same call. `hasMore`
 * says to call again.
 */
export async function deleteThread(ctx: Ctx, w: Writer, req: Request): Promise<Response> {
  const threadId = readString(req, "threadId");
  const batch = readInt(req, "batchSize", 100, 1, MAX_BATCH);
  const { docs: messages, next } = await takeWithin(
    byIndex(ctx, MESSAGES, "by_thread", [["thread_id", threadId]]),
    batch,
    DELETE_BUDGET,
  );
  const hasMore = next !== null;
  const plans: Plan[] = messages.map((doc) => ({ table: MESSAGES, existing: doc, body: null }));
  const thread = hasMore ? null : await findById(ctx, THREADS, threadId);
  if (thread) plans.push({ table: THREADS, existing: thread, body: null });
  await applyPlans(w, plans);
  return ok({ deletedMessages: messages.length, threadDeleted: thread !== null }, { hasMore });
}

/**
 * moveThread {threadId, resourceId, batchSize?, after?, updatedAt?}: give up to
 * batchSize messages of the thread (fewer when they are big: reads stay within
 * DELETE_BUDGET), in createdAt order from `after`, the new resourceId; once none
 * remain, the thread row too, in the same call. The answer's `after` is where the
 * next call starts; `hasMore` says to make it. Messages first and the thread last,
 * as deleteThread: until the last call the thread still names its old resource.
 */
export async function moveThread(ctx: Ctx, w: Writer, req: Request): Promise<Response> {
  const threadId = readString(req, "threadId");
  const resourceId = readString(req, "resourceId");
  const batch = readInt(req, "batchSize", 100, 1, MAX_BATCH);
  const after = readAfter(req);
  const { docs, next } = await takeWithin(
    afterPosition(
      byIndex(
        ctx,
        MESSAGES,
        "by_thread_created",
        [["thread_id", threadId]],
        "createdAt",
        after ? { gte: after.createdAt } : {},
      ),
      after,
    ),
    batch,
    DELETE_BUDGET,
  );
  const plans: Plan[] = docs
    .filter((doc) => doc.resourceId !== resourceId)
    .map((doc) => ({ table: MESSAGES, existing: doc, body: { ...bodyOf(doc), resourceId } }));
  const hasMore = next !== null;
  let thread: Doc | null = null;
  if (!hasMore) {
    thread = await findById(ctx, THREADS, threadId);
    if (thread && thread.resourceId !== resourceId) {
      const updatedAt = laterThan(thread.updatedAt, readOptionalString(req, "updatedAt"));
      plans.push({
        table: THREADS,
        existing: thread,
        body: prepareBody(
          THREADS,
          { ...bodyOf(thread), resourceId, updatedAt },
          label("thread", threadId),
        ),
      });
    }
  }
  await applyPlans(w, plans);
  const last = docs[docs.length - 1];
  return ok(
    {
      movedMessages: plans.length - (thread && thread.resourceId !== resourceId ? 1 : 0),
      after: last
        ? { createdAt: last.createdAt, creationTime: last._creationTime }
        : (after ?? null),
      threadFound: hasMore ? null : thread !== null,
    },
    { hasMore },
  );
}

type Position = { createdAt: string; creationTime: number };

function readAfter(req: Request): Position | undefined {
  const raw = req.after;
  if (raw === undefined || raw === null) return undefined;
  if (
    isPlainObject(raw) &&
    typeof raw.createdAt === "string" &&
    typeof raw.creationTime === "number"
  ) {
    return { createdAt: raw.createdAt, creationTime: raw.creationTime };
  }
  throw new RequestError(
    `${req.op}: "after" must be {createdAt, creationTime} from the last answer`,
  );
}

/** The rows of `rows` (in createdAt, then creation order) that come after `after`. */
async function* afterPosition(
  rows: AsyncIterable<unknown>,
  after: Position | undefined,
): AsyncIterable<unknown> {
  for await (const row of rows) {
    const doc = row as Doc;
    if (
      after &&
      doc.createdAt === after.createdAt &&
      (doc._creationTime as number) <= after.creationTime
    ) {
      continue;
    }
    yield doc;
  }
}
