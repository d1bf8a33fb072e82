// Server-side merges into a stored workflow snapshot, so concurrent step
// results of one run never overwrite each other (each merge is one
// transaction). Snapshots are written back as JSON text.
import {
  bodyOf,
  type Ctx,
  type Doc,
  fail,
  type FailResponse,
  isPlainObject,
  label,
  ok,
  readString,
  type Request,
  RequestError,
  type Response,
  unsupported,
} from "./common";
import { byIndex, WORKFLOW_SNAPSHOTS } from "./tables";
import { applyPlans, prepareBody } from "./typed";
import type { Writer } from "./writer";

const TABLE = WORKFLOW_SNAPSHOTS;
const PENDING_KEY = "__mastra_pending__";

type Json = unknown;
type Snapshot = Record<string, Json> & { context?: Record<string, Json> };

/** `{"__mastra_pending__": true}` and nothing else. */
function isPendingMarker(value: Json): boolean {
  if (!isPlainObject(value)) return false;
  const keys = Object.keys(value);
  return keys.length === 1 && keys[0] === PENDING_KEY && value[PENDING_KEY] === true;
}

function isSuspendedResult(value: Json): boolean {
  return (
    isPlainObject(value) &&
    value.status === "suspended" &&
    ("suspendPayload" in value || "suspendedAt" in value)
  );
}

/** A pending marker may overwrite an empty slot, a marker or a suspended result. */
function canBeMarkedPending(value: Json): boolean {
  return (
    value === null || value === undefined || isPendingMarker(value) || isSuspendedResult(value)
  );
}

function emptySnapshot(runId: string): Snapshot {
  return {
    context: {},
    activePaths: [],
    activeStepsPath: {},
    timestamp: Date.now(),
    suspendedPaths: {},
    resumeLabels: {},
    serializedStepGraph: [],
    value: {},
    waitingPaths: {},
    status: "pending",
    runId,
  };
}

function parseSnapshot(stored: unknown, runId: string): Snapshot {
  if (typeof stored === "string") return JSON.parse(stored) as Snapshot;
  if (stored === null || stored === undefined) return emptySnapshot(runId);
  return JSON.parse(JSON.stringify(stored)) as Snapshot;
}

function parseJsonArg(req: Request, field: string): Json {
  const text = readString(req, field);
  try {
    return JSON.parse(text);
  } catch {
    throw new RequestError(`${req.op}: "${field}" is not valid JSON`);
  }
}

/**
 * Merge one step result into `context`. When both the stored and the new
 * result carry an `output` array (a foreach step), the arrays merge slot by
 * slot:
 *   - a pending marker clears a slot that is empty, pending or suspended
 *     (a completed slot is kept), and a batch containing markers only
 *     updates slots, not the other result fields;
 *   - otherwise non-null new values overwrite, and new slots past the stored
 *     length start as null.
 * Any other result replaces the stored one.
 */
function mergeStepResult(context: Record<string, Json>, stepId: string, result: Json) {
  const existing = context[stepId];
  const existingOutput = isPlainObject(existing) ? existing.output : undefined;
  const newOutput = isPlainObject(result) ? result.output : undefined;
  if (!Array.isArray(existingOutput) || !Array.isArray(newOutput)) {
    context[stepId] = result;
    return;
  }
  const markers = newOutput.some(isPendingMarker);
  const merged: Json[] = [...existingOutput];
  newOutput.forEach((value, i) => {
    const outOfRange = i >= existingOutput.length;
    if (isPendingMarker(value)) {
      if (outOfRange || canBeMarkedPending(existingOutput[i])) merged[i] = null;
    } else if (value !== null && value !== undefined && !markers) {
      merged[i] = value;
    } else if (outOfRange) {
      merged[i] = null;
    }
  });
  context[stepId] = {
    ...(existing as Record<string, Json>),
    ...(markers ? {} : (result as Record<string, Json>)),
    output: merged,
  };
}

async function loadRun(
  ctx: Ctx,
  req: Request,
): Promise<{ doc: Doc; snapshot: Snapshot } | FailResponse> {
  const workflowName = readString(req, "workflowName");
  const runId = readString(req, "runId");
  const doc = (await byIndex(ctx, TABLE, "by_workflow_run", [
    ["workflow_name", workflowName],
    ["run_id", runId],
  ]).unique()) as Doc | null;
  if (!doc) {
    return fail(`Workflow snapshot not found for runId ${runId}`, "NOT_FOUND", {
      table: TABLE,
      id: runId,
    });
  }
  let snapshot: Snapshot;
  try {
    snapshot = parseSnapshot(doc.snapshot, runId);
  } catch {
    return fail(`Snapshot for runId ${runId} is not valid JSON`);
  }
  if (!isPlainObject(snapshot) || !isPlainObject(snapshot.context)) {
    return fail(`Snapshot for runId ${runId} is missing or has invalid context`);
  }
  return { doc, snapshot };
}

async function save(w: Writer, doc: Doc, snapshot: Snapshot) {
  const body = prepareBody(
    TABLE,
    { ...bodyOf(doc), snapshot: JSON.stringify(snapshot), updatedAt: new Date().toISOString() },
    label("run", doc.run_id),
  );
  await applyPlans(w, [{ table: TABLE, existing: doc, body }]);
}

export async function workflowOp(
  ctx: Ctx,
  w: Writer,
  table: string,
  req: Request,
): Promise<Response> {
  if (table !== TABLE) return unsupported(req);
  if (req.op === "mergeWorkflowStepResult") {
    const stepId = readString(req, "stepId");
    const result = parseJsonArg(req, "result");
    const requestContext = parseJsonArg(req, "requestContext");
    const run = await loadRun(ctx, req);
    if ("ok" in run) return run;
    const { doc, snapshot } = run;
    const context = snapshot.context as Record<string, Json>;
    mergeStepResult(context, stepId, result);
    snapshot.requestContext = {
      ...(isPlainObject(snapshot.requestContext) ? snapshot.requestContext : {}),
      ...(isPlainObject(requestContext) ? requestContext : {}),
    };
    await save(w, doc, snapshot);
    return ok(JSON.stringify(context));
  }
  // mergeWorkflowState: shallow-merge the given fields into the snapshot.
  // `expectedStatus` (a status or a list of them) is a guard, not a field: the
  // merge applies only when the stored status matches, else the answer is
  // null and nothing is written, so one resumer can claim a run atomically.
  const opts = parseJsonArg(req, "opts");
  const { expectedStatus, ...changes } = isPlainObject(opts) ? opts : {};
  const expected = readExpectedStatus(expectedStatus);
  const run = await loadRun(ctx, req);
  if ("ok" in run) return run;
  const status = run.snapshot.status;
  if (expected !== null && !(typeof status === "string" && expected.includes(status))) {
    return ok(null);
  }
  const merged = { ...run.snapshot, ...changes };
  await save(w, run.doc, merged);
  return ok(JSON.stringify(merged));
}

function readExpectedStatus(value: Json): string[] | null {
  if (value === undefined || value === null) return null;
  if (typeof value === "string") return [value];
  if (Array.isArray(value) && value.every((item) => typeof item === "string")) {
    return value as string[];
  }
  throw new RequestError(
    `mergeWorkflowState: "expectedStatus" must be a status or a list of statuses`,
  );
}
