// Scheduler ops of the @mastra/convex protocol (mastra_schedules and
// mastra_schedule_triggers). Times are epoch milliseconds.
import {
  bodyOf,
  type Ctx,
  type Doc,
  type Fields,
  label,
  ok,
  readObject,
  readString,
  type Request,
  RequestError,
  type Response,
  unsupported,
} from "./common";
import { byIndex, findById, SCHEDULE_TRIGGERS, SCHEDULES } from "./tables";
import { DEFAULT_BATCH, type Plan, applyPlans, prepareBody, recordId } from "./typed";
import type { Writer } from "./writer";

const TRIGGERS = SCHEDULE_TRIGGERS;
const DEFAULT_LIMIT = 100;

export const SCHEDULE_OPS = [
  "createSchedule",
  "recordScheduleTrigger",
  "listDueSchedules",
  "updateScheduleNextFire",
  "updateSchedule",
  "listScheduleTriggers",
  "deleteScheduleTriggers",
] as const;

const OP_TABLE: Record<string, string> = {
  createSchedule: SCHEDULES,
  listDueSchedules: SCHEDULES,
  updateScheduleNextFire: SCHEDULES,
  updateSchedule: SCHEDULES,
  recordScheduleTrigger: TRIGGERS,
  listScheduleTriggers: TRIGGERS,
  deleteScheduleTriggers: TRIGGERS,
};

/** Missing or non-finite -> 100; otherwise floored and at least 0. */
function limitOf(raw: unknown): number {
  if (typeof raw !== "number" || !Number.isFinite(raw)) return DEFAULT_LIMIT;
  return Math.max(0, Math.floor(raw));
}

function readNumber(req: Request, field: string): number {
  const value = req[field];
  if (typeof value !== "number") throw new RequestError(`${req.op}: "${field}" must be a number`);
  return value;
}

const optionalNumber = (req: Request, field: string): number | undefined =>
  req[field] === undefined || req[field] === null ? undefined : readNumber(req, field);

export async function scheduleOp(
  ctx: Ctx,
  w: Writer,
  table: string,
  req: Request,
): Promise<Response> {
  const expected = OP_TABLE[req.op]!;
  if (table !== expected) throw new RequestError(`${req.op} is only supported for ${expected}`);
  switch (req.op) {
    case "createSchedule":
    case "recordScheduleTrigger": {
      const record = readObject(req, "record");
      const kind = req.op === "createSchedule" ? "Schedule" : "Schedule trigger";
      const id = recordId(record, req.op);
      if (await findById(ctx, table, id)) {
        throw new RequestError(`${kind} with id "${id}" already exists`, "CONFLICT", { table, id });
      }
      const body = prepareBody(table, record as Fields, label(kind.toLowerCase(), id));
      await applyPlans(w, [{ table, existing: null, body }]);
      return ok();
    }

    case "listDueSchedules": {
      const now = readNumber(req, "now");
      const docs = await byIndex(
        ctx,
        SCHEDULES,
        "by_status_next_fire_at",
        [["status", "active"]],
        "next_fire_at",
        {
          lte: now,
        },
      ).take(limitOf(req.limit));
      return ok(docs);
    }

    case "updateScheduleNextFire": {
      // Compare-and-set: only the caller that saw `expectedNextFireAt` wins.
      const id = readString(req, "id");
      const existing = await findById(ctx, SCHEDULES, id);
      if (
        !existing ||
        existing.status !== "active" ||
        existing.next_fire_at !== readNumber(req, "expectedNextFireAt")
      ) {
        return ok(false);
      }
      const body = prepareBody(
        SCHEDULES,
        {
          ...bodyOf(existing),
          next_fire_at: readNumber(req, "newNextFireAt"),
          last_fire_at: readNumber(req, "lastFireAt"),
          last_run_id: readString(req, "lastRunId"),
          updated_at: Date.now(),
        },
        label("schedule", id),
      );
      await applyPlans(w, [{ table: SCHEDULES, existing, body }]);
      return ok(true);
    }

    case "updateSchedule": {
      const id = readString(req, "id");
      const patch = { ...readObject(req, "patch") } as Fields;
      delete patch.id;
      const existing = await findById(ctx, SCHEDULES, id);
      if (!existing) {
        throw new RequestError(`Schedule ${id} not found`, "NOT_FOUND", { table, id });
      }
      const body = prepareBody(SCHEDULES, { ...bodyOf(existing), ...patch }, label("schedule", id));
      await applyPlans(w, [{ table: SCHEDULES, existing, body }]);
      return ok({ ...body, _id: existing._id, _creationTime: existing._creationTime });
    }

    case "listScheduleTriggers": {
      const scheduleId = readString(req, "scheduleId");
      const docs = await byIndex(
        ctx,
        TRIGGERS,
        "by_schedule_actual",
        [["schedule_id", scheduleId]],
        "actual_fire_at",
        {
          gte: optionalNumber(req, "fromActualFireAt"),
          lt: optionalNumber(req, "toActualFireAt"),
        },
      )
        .order("desc")
        .take(limitOf(req.limit));
      return ok(docs);
    }

    case "deleteScheduleTriggers": {
      const scheduleId = readString(req, "scheduleId");
      const docs = (await byIndex(ctx, TRIGGERS, "by_schedule_actual", [
        ["schedule_id", scheduleId],
      ]).take(DEFAULT_BATCH + 1)) as Doc[];
      const plans: Plan[] = docs
        .slice(0, DEFAULT_BATCH)
        .map((doc) => ({ table: TRIGGERS, existing: doc, body: null }));
      await applyPlans(w, plans);
      return ok(undefined, { hasMore: docs.length > DEFAULT_BATCH });
    }

    default:
      return unsupported(req);
  }
}
