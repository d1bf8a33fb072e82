/**
 * Storage handler: `mastra/storage:handle` (internal mutation, admin key only).
 *
 * Speaks the storage protocol of @mastra/convex 1.5.x (same requests, same
 * responses), so the TypeScript package and the convex-mastra Python SDK can
 * share one deployment, plus the extra ops listed in `info`:
 *   info, pageByIndex, pageByRank, scan, messageWindow, count, rebuildCounters,
 *   saveMessages, deleteMessages, popMessage, deleteThread, moveThread, and on
 *   vector tables vectorQuery and vectorCount.
 * The stock handler answers `info` with {ok:false, error:"Unsupported
 * operation info"}, which is how clients tell the two apart.
 *
 * Every response is {ok:true, result?, hasMore?, continuationCursor?} or
 * {ok:false, error}. A request is read and validated completely before its
 * first write, so {ok:false} means nothing was written. An unexpected failure
 * after writing started throws instead, which rolls the transaction back.
 */
import { internalMutationGeneric } from "convex/server";
import { v } from "convex/values";
import {
  type Ctx,
  errorMessage,
  failure,
  ok,
  type Request,
  RequestError,
  type Response,
} from "./lib/common";
import { documentsOp } from "./lib/documents";
import {
  MAX_SCAN,
  MAX_WINDOW_ITEMS,
  count,
  messageWindow,
  pageByIndex,
  pageByRank,
  rebuildCounters,
  scan,
} from "./lib/extras";
import {
  deleteMessages,
  deleteThread,
  moveThread,
  popMessage,
  saveMessages,
  updateResource,
  updateThread,
} from "./lib/memory";
import { OM_OPS, observationalOp } from "./lib/observational";
import { SCHEDULE_OPS, scheduleOp } from "./lib/schedules";
import { RANKED_INFO } from "./lib/ranks";
import { logicalName, route } from "./lib/tables";
import { COUNTED_GROUPS, COUNTS_ALL_ROWS } from "./lib/counters";
import { MAX_DOCUMENT_BYTES } from "./lib/encoding";
import {
  BATCH_BYTES,
  BATCH_ITEMS,
  LOAD_MANY_MAX,
  MAX_BATCH,
  MAX_PAGE,
  QUERY_CAP,
  typedOp,
} from "./lib/typed";
import { vectorOp } from "./lib/vectors";
import { MAX_SCAN_ROWS, MAX_TOP_K } from "./lib/vectorSearch";
import { workflowOp } from "./lib/workflow";
import { Writer } from "./lib/writer";

const NAME = "convex-mastra";
const VERSION = "0.1.0";
const PROTOCOL = 2;

const RECORD_OPS = [
  "insert",
  "batchInsert",
  "load",
  "loadMany",
  "queryTable",
  "patch",
  "deleteMany",
  "clearTable",
  "dropTable",
  "updateThread",
  "updateResource",
  "mergeWorkflowStepResult",
  "mergeWorkflowState",
];
const OUR_OPS = [
  "info",
  "pageByIndex",
  "pageByRank",
  "count",
  "rebuildCounters",
  "saveMessages",
  "deleteMessages",
  "popMessage",
  "deleteThread",
  "moveThread",
  "scan",
  "messageWindow",
  "vectorQuery",
  "vectorCount",
];

/** Ops that only read, so a client may send them again after an answer was lost. */
const READ_OPS = [
  "info",
  "load",
  "loadMany",
  "queryTable",
  "pageByIndex",
  "pageByRank",
  "count",
  "scan",
  "messageWindow",
  "omGetLatest",
  "omGetHistory",
  "listDueSchedules",
  "listScheduleTriggers",
  "vectorQuery",
  "vectorCount",
];

const INFO = {
  name: NAME,
  version: VERSION,
  protocol: PROTOCOL,
  ops: [...RECORD_OPS, ...SCHEDULE_OPS, ...OM_OPS, ...OUR_OPS],
  readOps: READ_OPS,
  /** Table (as clients name it) -> the equality groups whose row counts are kept ([]: all rows). */
  counted: Object.fromEntries(
    Object.entries(COUNTED_GROUPS).map(([table, groups]) => [
      logicalName(table),
      COUNTS_ALL_ROWS.has(table) ? [[], ...groups] : groups,
    ]),
  ),
  /** Table -> index -> equality fields: the listings pageByRank serves. */
  ranked: RANKED_INFO,
  limits: {
    loadManyIds: LOAD_MANY_MAX,
    queryTableRows: QUERY_CAP,
    pageItems: MAX_PAGE,
    scanRows: MAX_SCAN,
    batchSize: MAX_BATCH,
    batchItems: BATCH_ITEMS,
    batchBytes: BATCH_BYTES,
    windowItems: MAX_WINDOW_ITEMS,
    documentBytes: MAX_DOCUMENT_BYTES,
    vectorTopK: MAX_TOP_K,
    vectorScanRows: MAX_SCAN_ROWS,
  },
};

const optional = v.optional(v.any());

// Every field any request may carry. Values are checked by the ops, which
// answer {ok:false, error} instead of throwing a validator error.
export const storageArgs = {
  op: v.string(),
  tableName: v.optional(v.string()),
  // record ops
  record: optional,
  records: optional,
  id: optional,
  ids: optional,
  keys: optional,
  filters: optional,
  limit: optional,
  pageSize: optional,
  cursor: optional,
  indexHint: optional,
  batchSize: optional,
  // threads and resources
  title: optional,
  metadata: optional,
  resourceId: optional,
  workingMemory: optional,
  createdAt: optional,
  updatedAt: optional,
  // workflows
  workflowName: optional,
  runId: optional,
  stepId: optional,
  result: optional,
  requestContext: optional,
  opts: optional,
  // schedules
  now: optional,
  expectedNextFireAt: optional,
  newNextFireAt: optional,
  lastFireAt: optional,
  lastRunId: optional,
  patch: optional,
  scheduleId: optional,
  fromActualFireAt: optional,
  toActualFireAt: optional,
  // observational memory
  lookupKey: optional,
  from: optional,
  to: optional,
  offset: optional,
  observations: optional,
  tokenCount: optional,
  lastObservedAt: optional,
  observedMessageIds: optional,
  chunk: optional,
  lastBufferedAtTime: optional,
  activationRatio: optional,
  messageTokensThreshold: optional,
  currentPendingTokens: optional,
  forceMaxActivation: optional,
  bufferedChunks: optional,
  reflection: optional,
  inputTokenCount: optional,
  reflectedObservationLineCount: optional,
  currentRecord: optional,
  newId: optional,
  config: optional,
  // our ops
  index: optional,
  eq: optional,
  range: optional,
  order: optional,
  numItems: optional,
  skip: optional,
  take: optional,
  match: optional,
  items: optional,
  messages: optional,
  threadUpdatedAt: optional,
  threadId: optional,
  force: optional,
  replaceMetadata: optional,
  expectedMetadata: optional,
  expect: optional,
  after: optional,
  // vector search
  vector: optional,
  metric: optional,
  topK: optional,
  filter: optional,
  includeVector: optional,
};

const SCHEDULE_OP_SET = new Set<string>(SCHEDULE_OPS);
const OM_OP_SET = new Set<string>(OM_OPS);

async function dispatch(ctx: Ctx, w: Writer, req: Request): Promise<Response> {
  switch (req.op) {
    case "info":
      return ok(INFO);
    case "pageByIndex":
      return pageByIndex(ctx, req);
    case "pageByRank":
      return pageByRank(ctx, req);
    case "scan":
      return scan(ctx, req);
    case "messageWindow":
      return messageWindow(ctx, req);
    case "count":
      return count(ctx, req);
    case "rebuildCounters":
      return rebuildCounters(ctx, req);
    case "saveMessages":
      return saveMessages(ctx, w, req);
    case "deleteMessages":
      return deleteMessages(ctx, w, req);
    case "popMessage":
      return popMessage(ctx, w, req);
    case "deleteThread":
      return deleteThread(ctx, w, req);
    case "moveThread":
      return moveThread(ctx, w, req);
  }
  if (typeof req.tableName !== "string") {
    throw new RequestError(`${req.op}: "tableName" must be a string`);
  }
  const target = route(req.tableName);
  if (target.kind === "vector") return vectorOp(ctx, w, target.indexName, req);
  if (target.kind === "generic") return documentsOp(ctx, w, target.logical, req);
  const table = target.table;
  switch (req.op) {
    case "updateThread":
      return updateThread(ctx, w, table, req);
    case "updateResource":
      return updateResource(ctx, w, table, req);
    case "mergeWorkflowStepResult":
    case "mergeWorkflowState":
      return workflowOp(ctx, w, table, req);
  }
  if (SCHEDULE_OP_SET.has(req.op)) return scheduleOp(ctx, w, table, req);
  if (OM_OP_SET.has(req.op)) return observationalOp(ctx, w, table, req);
  return typedOp(ctx, w, table, req);
}

/** Runs one storage request; shared by `handle` and the authenticated entry point in public.ts. */
export async function handleStorage(ctx: Ctx, args: Record<string, unknown>): Promise<Response> {
  const req = args as Request;
  const w = new Writer(ctx);
  let response: Response;
  try {
    response = await dispatch(ctx, w, req);
    if (response.ok) await w.flush();
  } catch (error) {
    if (!w.wrote) return failure(error);
    // Throwing aborts the transaction, so the staged writes are dropped.
    throw new Error(
      `${req.op} failed after writing started and was rolled back: ${errorMessage(error)}`,
    );
  }
  if (!response.ok && w.wrote) {
    throw new Error(
      `${req.op} failed after writing started and was rolled back: ${response.error}`,
    );
  }
  return response;
}

export const handle = internalMutationGeneric({
  args: storageArgs,
  handler: (ctx, args) => handleStorage(ctx, args),
});
