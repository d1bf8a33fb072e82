// Columns the handler derives from free-form JSON on every write, so indexes
// and counters can reach values that clients store inside it.
//
//   mastra_workflow_snapshots.status = snapshot.status (when it is a string)
//
// A value sent by a client is never trusted: it is recomputed from the row.
import type { Fields } from "./common";
import { isPlainObject } from "./common";
import { WORKFLOW_SNAPSHOTS } from "./tables";

/** `snapshot.status` of a stored snapshot (JSON text or object), if it is a string. */
export function snapshotStatus(snapshot: unknown): string | undefined {
  let value = snapshot;
  if (typeof value === "string") {
    try {
      value = JSON.parse(value);
    } catch {
      return undefined;
    }
  }
  return isPlainObject(value) && typeof value.status === "string" ? value.status : undefined;
}

/** `body` with its derived columns recomputed (a copy; `body` is not changed). */
export function withDerived(table: string, body: Fields): Fields {
  if (table !== WORKFLOW_SNAPSHOTS) return body;
  const { status: _stale, ...rest } = body;
  const status = snapshotStatus(body.snapshot);
  return status === undefined ? rest : { ...rest, status };
}

/** Whether `table` has derived columns. */
export const hasDerived = (table: string): boolean => table === WORKFLOW_SNAPSHOTS;
