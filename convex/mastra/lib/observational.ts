// Observational-memory ops of the @mastra/convex protocol. Each generation is
// one row of mastra_observational_memory; these ops update a row in place in
// one transaction so concurrent observers cannot lose each other's changes.
import type { Value } from "convex/values";
import {
  bodyOf,
  type Ctx,
  type Doc,
  type Fields,
  isPlainObject,
  label,
  ok,
  readObject,
  readString,
  type Request,
  RequestError,
  type Response,
  unsupported,
} from "./common";
import { byIndex, findById, OBSERVATIONAL_MEMORY } from "./tables";
import { applyPlans, prepareBody } from "./typed";
import type { Writer } from "./writer";

const TABLE = OBSERVATIONAL_MEMORY;

export const OM_OPS = [
  "omGetLatest",
  "omGetHistory",
  "omUpdateActive",
  "omAppendBufferedChunk",
  "omSwapBuffered",
  "omUpdateBufferedReflection",
  "omSwapBufferedReflection",
  "omUpdateConfig",
] as const;

type Chunk = {
  cycleId?: string;
  observations?: string;
  tokenCount?: number;
  messageIds?: string[];
  messageTokens?: number;
  lastObservedAt?: string;
  suggestedContinuation?: string;
  currentTask?: string;
};

const num = (value: unknown): number => Number(value || 0);

function readNumber(req: Request, field: string): number {
  const value = req[field];
  if (typeof value !== "number") throw new RequestError(`${req.op}: "${field}" must be a number`);
  return value;
}

/** Stored chunk list (JSON text); anything unreadable counts as empty. */
function storedChunks(value: unknown): Chunk[] {
  if (typeof value !== "string" || value === "") return [];
  try {
    const parsed: unknown = JSON.parse(value);
    return Array.isArray(parsed) ? (parsed as Chunk[]) : [];
  } catch {
    return [];
  }
}

function parseObject(value: unknown): Record<string, unknown> {
  if (typeof value !== "string" || value === "") return {};
  try {
    const parsed: unknown = JSON.parse(value);
    return isPlainObject(parsed) ? parsed : {};
  } catch {
    return {};
  }
}

/** Deep merge of plain objects; `source` wins, undefined values are skipped. */
function deepMerge(target: Record<string, unknown>, source: Record<string, unknown>) {
  const out: Record<string, unknown> = { ...target };
  for (const [key, value] of Object.entries(source)) {
    const current = target[key];
    if (isPlainObject(current) && isPlainObject(value)) out[key] = deepMerge(current, value);
    else if (value !== undefined) out[key] = value;
  }
  return out;
}

/**
 * How many buffered chunks to activate. Aim to leave about the retention
 * floor (threshold * (1 - ratio)) of pending message tokens: prefer the first
 * boundary that reaches the target unless it overshoots by more than 95% of
 * the floor, keep at least min(1000, floor) tokens pending, and fall back to
 * the best boundary below the target. Matches @mastra/core's in-memory store.
 */
function activationBoundary(
  chunks: Chunk[],
  opts: { ratio: number; threshold: number; pending: number; force: boolean },
): number {
  const floor = opts.threshold * (1 - opts.ratio);
  const target = Math.max(0, opts.pending - floor);
  let total = 0;
  let over = 0;
  let overTokens = 0;
  let under = 0;
  let underTokens = 0;
  chunks.forEach((chunk, i) => {
    total += chunk.messageTokens ?? 0;
    if (total >= target) {
      if (over === 0 || total < overTokens) [over, overTokens] = [i + 1, total];
    } else if (total > underTokens) {
      [under, underTokens] = [i + 1, total];
    }
  });
  const keep = Math.min(1000, floor);
  const leavesEnough = (tokens: number) => opts.pending - tokens >= keep;
  if (over > 0 && leavesEnough(overTokens)) {
    if (opts.force || overTokens - target <= floor * 0.95) return over;
  }
  if (under > 0 && leavesEnough(underTokens)) return under;
  return over > 0 ? over : 1;
}

const EMPTY_SWAP = {
  chunksActivated: 0,
  messageTokensActivated: 0,
  observationTokensActivated: 0,
  messagesActivated: 0,
  activatedCycleIds: [],
  activatedMessageIds: [],
};

async function requireRecord(ctx: Ctx, id: string): Promise<Doc> {
  const doc = await findById(ctx, TABLE, id);
  if (!doc) {
    throw new RequestError(`Observational memory record not found: ${id}`, "NOT_FOUND", {
      table: TABLE,
      id,
    });
  }
  return doc;
}

async function update(w: Writer, doc: Doc, changes: Fields) {
  const body = prepareBody(TABLE, { ...bodyOf(doc), ...changes }, label("record", doc.id));
  await applyPlans(w, [{ table: TABLE, existing: doc, body }]);
}

/** Drop undefined values so the result is a clean Convex value. */
const defined = (value: Record<string, unknown>) =>
  Object.fromEntries(Object.entries(value).filter(([, item]) => item !== undefined));

export async function observationalOp(
  ctx: Ctx,
  w: Writer,
  table: string,
  req: Request,
): Promise<Response> {
  if (table !== TABLE) throw new RequestError(`${req.op} is only supported for ${TABLE}`);
  switch (req.op) {
    case "omGetLatest": {
      const lookupKey = readString(req, "lookupKey");
      return ok(
        await byIndex(ctx, TABLE, "by_lookup_key", [["lookupKey", lookupKey]])
          .order("desc")
          .first(),
      );
    }

    case "omGetHistory": {
      // Newest generation first; optional createdAt window, offset, limit.
      const lookupKey = readString(req, "lookupKey");
      const limit = Math.max(0, Math.floor(readNumber(req, "limit")));
      const from = typeof req.from === "string" ? req.from : undefined;
      const to = typeof req.to === "string" ? req.to : undefined;
      let skip = typeof req.offset === "number" ? Math.max(0, Math.floor(req.offset)) : 0;
      const out: Doc[] = [];
      if (limit === 0) return ok(out);
      for await (const raw of byIndex(ctx, TABLE, "by_lookup_key", [
        ["lookupKey", lookupKey],
      ]).order("desc")) {
        const doc = raw as Doc;
        const createdAt = doc.createdAt;
        if (from !== undefined && !(typeof createdAt === "string" && createdAt >= from)) continue;
        if (to !== undefined && !(typeof createdAt === "string" && createdAt <= to)) continue;
        if (skip > 0) {
          skip--;
          continue;
        }
        out.push(doc);
        if (out.length >= limit) break;
      }
      return ok(out);
    }

    case "omUpdateActive": {
      const doc = await requireRecord(ctx, readString(req, "id"));
      const tokenCount = req.tokenCount;
      const tokens =
        typeof tokenCount === "number" && Number.isFinite(tokenCount) && tokenCount >= 0
          ? tokenCount
          : 0;
      await update(w, doc, {
        activeObservations: readString(req, "observations"),
        lastObservedAt: readString(req, "lastObservedAt"),
        pendingMessageTokens: 0,
        observationTokenCount: tokens,
        totalTokensObserved: num(doc.totalTokensObserved) + tokens,
        observedMessageIds: (req.observedMessageIds ?? null) as Value,
        updatedAt: readString(req, "updatedAt"),
      });
      return ok();
    }

    case "omAppendBufferedChunk": {
      const doc = await requireRecord(ctx, readString(req, "id"));
      const chunks = storedChunks(doc.bufferedObservationChunks);
      chunks.push(readObject(req, "chunk") as Chunk);
      const changes: Fields = {
        bufferedObservationChunks: JSON.stringify(chunks),
        updatedAt: readString(req, "updatedAt"),
      };
      if (typeof req.lastBufferedAtTime === "string" && req.lastBufferedAtTime) {
        changes.lastBufferedAtTime = req.lastBufferedAtTime;
      }
      await update(w, doc, changes);
      return ok();
    }

    case "omSwapBuffered": {
      const doc = await requireRecord(ctx, readString(req, "id"));
      const now = readString(req, "now");
      if (storedChunks(doc.bufferedObservationChunks).length === 0) return ok(EMPTY_SWAP);
      // The caller may send the same chunks with refreshed messageTokens.
      const chunks = Array.isArray(req.bufferedChunks)
        ? (req.bufferedChunks as Chunk[])
        : storedChunks(doc.bufferedObservationChunks);
      if (chunks.length === 0) return ok(EMPTY_SWAP);
      const count = activationBoundary(chunks, {
        ratio: readNumber(req, "activationRatio"),
        threshold: readNumber(req, "messageTokensThreshold"),
        pending: readNumber(req, "currentPendingTokens"),
        force: req.forceMaxActivation === true,
      });
      const activated = chunks.slice(0, count);
      const remaining = chunks.slice(count);
      const latest = activated[activated.length - 1];
      const observations = activated.map((chunk) => chunk.observations).join("\n\n");
      const observationTokens = activated.reduce((sum, chunk) => sum + (chunk.tokenCount ?? 0), 0);
      const messageTokens = activated.reduce((sum, chunk) => sum + (chunk.messageTokens ?? 0), 0);
      const lastObservedAt =
        (typeof req.lastObservedAt === "string" ? req.lastObservedAt : undefined) ??
        latest?.lastObservedAt ??
        now;
      const active = typeof doc.activeObservations === "string" ? doc.activeObservations : "";
      await update(w, doc, {
        activeObservations: active
          ? `${active}\n\n--- message boundary (${lastObservedAt}) ---\n\n${observations}`
          : observations,
        observationTokenCount: num(doc.observationTokenCount) + observationTokens,
        pendingMessageTokens: Math.max(0, num(doc.pendingMessageTokens) - messageTokens),
        bufferedObservationChunks: remaining.length > 0 ? JSON.stringify(remaining) : null,
        lastObservedAt,
        updatedAt: now,
      });
      return ok(
        defined({
          chunksActivated: activated.length,
          messageTokensActivated: messageTokens,
          observationTokensActivated: observationTokens,
          messagesActivated: activated.reduce(
            (sum, chunk) => sum + (chunk.messageIds?.length ?? 0),
            0,
          ),
          activatedCycleIds: activated.map((chunk) => chunk.cycleId).filter((id) => !!id),
          activatedMessageIds: activated.flatMap((chunk) => chunk.messageIds ?? []),
          observations,
          perChunk: activated.map((chunk) => ({
            cycleId: chunk.cycleId ?? "",
            messageTokens: chunk.messageTokens ?? 0,
            observationTokens: chunk.tokenCount,
            messageCount: chunk.messageIds?.length ?? 0,
            observations: chunk.observations,
          })),
          suggestedContinuation: latest?.suggestedContinuation ?? undefined,
          currentTask: latest?.currentTask ?? undefined,
        }),
      );
    }

    case "omUpdateBufferedReflection": {
      const doc = await requireRecord(ctx, readString(req, "id"));
      const reflection = readString(req, "reflection");
      const existing = typeof doc.bufferedReflection === "string" ? doc.bufferedReflection : "";
      await update(w, doc, {
        bufferedReflection: existing ? `${existing}\n\n${reflection}` : reflection,
        bufferedReflectionTokens: num(doc.bufferedReflectionTokens) + readNumber(req, "tokenCount"),
        bufferedReflectionInputTokens:
          num(doc.bufferedReflectionInputTokens) + readNumber(req, "inputTokenCount"),
        reflectedObservationLineCount: readNumber(req, "reflectedObservationLineCount"),
        updatedAt: readString(req, "updatedAt"),
      });
      return ok();
    }

    case "omSwapBufferedReflection": {
      // Start a new generation whose observations are the buffered reflection
      // plus the lines observed after the reflection began.
      const current = readObject(req, "currentRecord");
      const newId = readString(req, "newId");
      const now = readString(req, "now");
      const doc = await requireRecord(ctx, String(current.id));
      const reflection = typeof doc.bufferedReflection === "string" ? doc.bufferedReflection : "";
      if (!reflection) throw new RequestError("No buffered reflection to swap");
      const active = typeof doc.activeObservations === "string" ? doc.activeObservations : "";
      const unreflected = active
        .split("\n")
        .slice(num(doc.reflectedObservationLineCount))
        .join("\n")
        .trim();
      const record: Fields = {
        id: newId,
        lookupKey: current.lookupKey as Value,
        scope: current.scope as Value,
        resourceId: current.resourceId as Value,
        threadId: current.threadId as Value,
        activeObservations: unreflected ? `${reflection}\n\n${unreflected}` : reflection,
        activeObservationsPendingUpdate: null,
        originType: "reflection",
        config: current.config as Value,
        generationCount: num(current.generationCount) + 1,
        lastObservedAt: current.lastObservedAt as Value,
        lastReflectionAt: now,
        pendingMessageTokens: 0,
        totalTokensObserved: current.totalTokensObserved as Value,
        observationTokenCount: readNumber(req, "tokenCount"),
        isObserving: false,
        isReflecting: false,
        isBufferingObservation: false,
        isBufferingReflection: false,
        lastBufferedAtTokens: 0,
        lastBufferedAtTime: null,
        observedTimezone: current.observedTimezone as Value,
        metadata: current.metadata as Value,
        createdAt: now,
        updatedAt: now,
      };
      const inserted = prepareBody(TABLE, record, label("record", newId));
      const cleared = prepareBody(
        TABLE,
        {
          ...bodyOf(doc),
          bufferedReflection: null,
          bufferedReflectionTokens: null,
          bufferedReflectionInputTokens: null,
          reflectedObservationLineCount: null,
          updatedAt: now,
        },
        label("record", doc.id),
      );
      await applyPlans(w, [
        { table: TABLE, existing: null, body: inserted },
        { table: TABLE, existing: doc, body: cleared },
      ]);
      return ok(inserted);
    }

    case "omUpdateConfig": {
      const doc = await requireRecord(ctx, readString(req, "id"));
      const merged = deepMerge(parseObject(doc.config), parseObject(req.config));
      await update(w, doc, {
        config: JSON.stringify(merged),
        updatedAt: readString(req, "updatedAt"),
      });
      return ok();
    }

    default:
      return unsupported(req);
  }
}
