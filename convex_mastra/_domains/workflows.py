"""``store.workflows``: workflow runs and their snapshots, merged on the server."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncGenerator, Mapping, Sequence
from contextlib import aclosing
from datetime import datetime
from typing import Any, cast

import orjson
from pydantic.alias_generators import to_camel

from .._codec import check_document_size, decode_json, json_text, parse_time, to_iso
from .._errors import StorageOperationError, ValidationError
from .._models import Page, WorkflowRun, WorkflowSnapshot, coerce
from .._paging import IndexQuery, check_paging
from ._base import Domain, check_id, now_iso
from ._watch import RunWatch

__all__ = ["Workflows"]

TABLE = "mastra_workflow_snapshot"
"""The logical name @mastra/convex sends; both handlers keep it in mastra_workflow_snapshots."""

# Index per combination of (workflow name, resource, status) filters, fields in that order. Each
# has a counter group on our handler, so every unranged listing has an exact, cheap total.
INDEXES = {
    (False, False, False): "by_created",
    (True, False, False): "by_workflow_created",
    (False, True, False): "by_resource_created",
    (False, False, True): "by_status_created",
    (True, True, False): "by_workflow_resource_created",
    (True, False, True): "by_workflow_status_created",
    (False, True, True): "by_resource_status_created",
    (True, True, True): "by_workflow_resource_status_created",
}
# Rows other than the snapshot text stay far below this many bytes.
_SNAKE = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)+")


def record_id(workflow_name: str, run_id: str) -> str:
    """The row id @mastra/convex gives a run (its natural key is the pair itself)."""
    return f"{workflow_name}-{run_id}"


def empty_snapshot(run_id: str) -> dict[str, Any]:
    """The snapshot Mastra reads for a run stored without one."""
    return {
        "context": {},
        "activePaths": [],
        "activeStepsPath": {},
        "timestamp": int(time.time() * 1000),
        "suspendedPaths": {},
        "resumeLabels": {},
        "serializedStepGraph": [],
        "value": {},
        "waitingPaths": {},
        "status": "pending",
        "runId": run_id,
    }


def snapshot_from_stored(value: Any) -> WorkflowSnapshot | None:
    """A stored snapshot (JSON text or object) as a model; None when there is none."""
    decoded = decode_json(value)
    if decoded is None:
        return None
    if not isinstance(decoded, dict):
        raise StorageOperationError(
            f"stored workflow snapshot is {type(decoded).__name__}, not a JSON object", table=TABLE
        )
    return WorkflowSnapshot.model_validate(decoded)


def run_view(snapshot: Mapping[str, Any]) -> dict[str, Any]:
    """``{status, threadId}`` of a stored snapshot (keys it lacks left out): what runs are
    listed by. The thread is where @mastra/core 1.71 keeps a run's memory info: in the first
    suspended step whose ``suspendPayload`` has a ``__streamState``, under
    ``messageList.memoryInfo`` (and then nowhere else), else in
    ``context.input.messageListState.memoryInfo``. The handler's ``runView`` is the same."""
    view: dict[str, Any] = {}
    if "status" in snapshot:
        view["status"] = snapshot["status"]
    info = _memory_info(snapshot)
    if info is not None and "threadId" in info:
        view["threadId"] = info["threadId"]
    return view


def _memory_info(snapshot: Mapping[str, Any]) -> Mapping[str, Any] | None:
    context = snapshot.get("context")
    if not isinstance(context, Mapping):
        return None
    for step in context.values():
        if not isinstance(step, Mapping) or step.get("status") != "suspended":
            continue
        payload = step.get("suspendPayload")
        if not isinstance(payload, Mapping) or not payload.get("__streamState"):
            continue
        info = _dig(payload["__streamState"], "messageList", "memoryInfo")
        return info if isinstance(info, Mapping) else None
    durable = _dig(context, "input", "messageListState", "memoryInfo")
    return durable if isinstance(durable, Mapping) else None


def _dig(value: Any, *path: str) -> Any:
    for part in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def run_from_row(row: Mapping[str, Any]) -> WorkflowRun:
    """A stored run row as a WorkflowRun."""
    raw = row.get("snapshot")
    decoded = decode_json(raw)
    snapshot: WorkflowSnapshot | str
    if decoded is None:
        snapshot = WorkflowSnapshot.model_validate(empty_snapshot(row["run_id"]))
    elif isinstance(decoded, dict):
        snapshot = WorkflowSnapshot.model_validate(decoded)
    else:
        snapshot = raw if isinstance(raw, str) else orjson.dumps(raw).decode()
    return WorkflowRun(
        workflow_name=row["workflow_name"],
        run_id=row["run_id"],
        snapshot=snapshot,
        created_at=parse_time(row["createdAt"]),
        updated_at=parse_time(row["updatedAt"]),
        resource_id=row.get("resourceId") or None,
    )


def snapshot_text(snapshot: WorkflowSnapshot | Mapping[str, Any], what: str) -> str:
    """A snapshot as the JSON text both SDKs store; a dict is written exactly as given."""
    if isinstance(snapshot, WorkflowSnapshot):
        return json_text(snapshot.to_mastra(), what)
    coerce(WorkflowSnapshot, snapshot, what)  # type checks only: the dict itself is stored
    return json_text(dict(snapshot), what)


def check_size(text: str, workflow_name: str, run_id: str, **fields: Any) -> None:
    """Raise RecordTooLargeError when the run's row, holding at least ``text`` as its snapshot
    and ``fields``, would be over Convex's limit (sized as Convex sizes it)."""
    row_id = record_id(workflow_name, run_id)
    row = {"id": row_id, "workflow_name": workflow_name, "run_id": run_id, "snapshot": text}
    check_document_size(row_id, {**row, **fields})


def snapshot_keys(changes: Mapping[str, Any]) -> dict[str, Any]:
    """Keyword arguments as snapshot keys: ``suspended_paths`` becomes ``suspendedPaths``."""
    return {
        (to_camel(key) if _SNAKE.fullmatch(key) else key): value for key, value in changes.items()
    }


def check_statuses(value: str | Sequence[str] | None) -> list[str] | None:
    """``expected_status`` as a list of statuses, or None when not given."""
    if value is None:
        return None
    statuses = [value] if isinstance(value, str) else list(value)
    for status in statuses:
        if not isinstance(status, str) or not status:
            raise ValidationError(
                f"expected_status must be a status or a list of statuses, not {value!r}",
                field="expected_status",
            )
    return statuses


class Workflows(Domain):
    """Workflow runs: persist and load snapshots, list, get and delete runs, merge updates."""

    async def persist_snapshot(
        self,
        workflow_name: str,
        run_id: str,
        snapshot: WorkflowSnapshot | Mapping[str, Any],
        *,
        resource_id: str | None = None,
        created_at: datetime | None = None,
        updated_at: datetime | None = None,
    ) -> WorkflowRun:
        """Insert or replace the run's snapshot; returns the run as stored.

        A run keeps the ``createdAt`` of its first write (``created_at`` only applies to a new
        run) and its resource when ``resource_id`` is not given.
        """
        check_id(workflow_name, "workflow_name")
        check_id(run_id, "run_id")
        if resource_id is not None:
            check_id(resource_id, "resource_id")
        text = snapshot_text(snapshot, "snapshot")
        check_size(text, workflow_name, run_id)
        keys = {"workflow_name": workflow_name, "run_id": run_id}
        existing = await self._dispatcher.call("load", TABLE, keys=keys)
        row_id = record_id(workflow_name, run_id)
        if existing is None:
            # "a-b" + "c" and "a" + "b-c" share the id "a-b-c"; writing would replace the other run.
            other = await self._dispatcher.call("load", TABLE, keys={"id": row_id})
            if other:
                raise ValidationError(
                    f"run {run_id!r} of workflow {workflow_name!r} would get the row id "
                    f"{row_id!r}, which run {other.get('run_id')!r} of workflow "
                    f"{other.get('workflow_name')!r} already has (ids are "
                    "'<workflow_name>-<run_id>', as @mastra/convex writes them)",
                    field="run_id",
                )
        now = now_iso()
        record: dict[str, Any] = {
            "id": (existing or {}).get("id") or row_id,
            "workflow_name": workflow_name,
            "run_id": run_id,
            "snapshot": text,
            "createdAt": existing["createdAt"]
            if existing
            else (to_iso(created_at) if created_at else now),
            "updatedAt": to_iso(updated_at) if updated_at else now,
        }
        if resource_id is not None:
            record["resourceId"] = resource_id
        stored = {**record, "resourceId": resource_id or (existing or {}).get("resourceId")}
        # The row exactly as the handler will store it: with the kept resource and the status
        # column it derives from the snapshot.
        status = (
            snapshot.status if isinstance(snapshot, WorkflowSnapshot) else snapshot.get("status")
        )
        check_document_size(
            record["id"],
            {
                **{key: value for key, value in stored.items() if value is not None},
                **({"status": status} if isinstance(status, str) else {}),
            },
        )
        await self._dispatcher.call("insert", TABLE, record=record)
        return run_from_row(stored)

    async def load_snapshot(self, workflow_name: str, run_id: str) -> WorkflowSnapshot | None:
        """The run's snapshot, or None when the run does not exist."""
        check_id(workflow_name, "workflow_name")
        check_id(run_id, "run_id")
        row = await self._dispatcher.call(
            "load", TABLE, keys={"workflow_name": workflow_name, "run_id": run_id}
        )
        return snapshot_from_stored(row.get("snapshot")) if row else None

    async def list_runs(
        self,
        *,
        workflow_name: str | None = None,
        resource_id: str | None = None,
        status: str | None = None,
        from_date: datetime | None = None,
        to_date: datetime | None = None,
        thread_id: str | None = None,
        page: int = 0,
        per_page: int | None = None,
    ) -> Page[WorkflowRun]:
        """One page of runs, newest first; ``per_page=None`` lists all.

        ``from_date`` and ``to_date`` bound ``createdAt`` (both inclusive); ``status`` is the
        snapshot's status. ``thread_id`` keeps the runs of an agent's loop on that memory
        thread, found in the snapshot where @mastra/core 1.71 puts it (exactly: no run of
        another thread is returned, unlike Mastra's best-effort filter). ``total`` counts every
        matching run.
        """
        check_paging(page, per_page)
        for value, name in (
            (workflow_name, "workflow_name"),
            (resource_id, "resource_id"),
            (status, "status"),
            (thread_id, "thread_id"),
        ):
            if value is not None:
                check_id(value, name)
        bounds: dict[str, str] = {}
        if from_date is not None:
            bounds["gte"] = to_iso(from_date)
        if to_date is not None:
            bounds["lte"] = to_iso(to_date)
        handler = await self._handler()
        query = handler.runs_query(workflow_name, resource_id, status, bounds or None, thread_id)
        return await (await self._rows()).page(
            query, run_from_row, page=page, per_page=per_page, descending=True
        )

    def watch(self, workflow_name: str, run_id: str) -> RunWatch:
        """The run each time it changes, live: ``async for run in store.workflows.watch(...)``.

        Starts with the run as it is (waiting for it to be created if need be) and ends after
        it reaches a terminal status (``success``, ``failed``, ``canceled``, ``bailed``,
        ``tripwire``) or is deleted. A slow consumer sees the newest state, not each one in
        between. Over the store's one WebSocket; see docs/live.md.
        """
        check_id(workflow_name, "workflow_name")
        check_id(run_id, "run_id")
        return RunWatch(self._dispatcher, workflow_name, run_id)

    async def get_run(self, run_id: str, *, workflow_name: str | None = None) -> WorkflowRun | None:
        """The run, or None. Without ``workflow_name``, the newest run with this id."""
        check_id(run_id, "run_id")
        if workflow_name is not None:
            check_id(workflow_name, "workflow_name")
            row = await self._dispatcher.call(
                "load", TABLE, keys={"workflow_name": workflow_name, "run_id": run_id}
            )
            return run_from_row(row) if row else None
        query = IndexQuery(
            table=TABLE,
            index="by_run_created",
            sort_field="createdAt",
            eq=(("run_id", run_id),),
        )
        pages = cast(
            AsyncGenerator[list[dict[str, Any]], None],
            (await self._rows()).iterate(query, descending=True, page_size=1),
        )
        async with aclosing(pages):
            async for rows in pages:
                return run_from_row(rows[0])
        return None

    async def delete_run(self, run_id: str, workflow_name: str) -> bool:
        """Delete the run; False when it did not exist."""
        check_id(run_id, "run_id")
        check_id(workflow_name, "workflow_name")
        row = await self._dispatcher.call(
            "load", TABLE, keys={"workflow_name": workflow_name, "run_id": run_id}
        )
        if not row:
            return False
        # By the row's own id: an id built from the names could belong to another run.
        await self._dispatcher.call(
            "deleteMany", TABLE, ids=[row.get("id") or record_id(workflow_name, run_id)]
        )
        return True

    async def update_results(
        self,
        workflow_name: str,
        run_id: str,
        step_id: str,
        result: Any,
        request_context: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Merge one step's result into the run's snapshot; returns the merged ``context``.

        The merge runs inside one mutation on the server (Mastra's rules: foreach outputs merge
        slot by slot, other results replace), so concurrent steps never lose each other's
        results. ``request_context`` is merged key by key. Raises NotFoundError for a missing run.
        """
        check_id(workflow_name, "workflow_name")
        check_id(run_id, "run_id")
        check_id(step_id, "step_id")
        if request_context is not None and not isinstance(request_context, Mapping):
            raise ValidationError("request_context must be a dict", field="request_context")
        result_text = json_text(result, "result")
        check_size(result_text, workflow_name, run_id)
        context = await self._dispatcher.call(
            "mergeWorkflowStepResult",
            TABLE,
            workflowName=workflow_name,
            runId=run_id,
            stepId=step_id,
            result=result_text,
            requestContext=json_text(dict(request_context or {}), "request_context"),
        )
        merged = decode_json(context)
        if not isinstance(merged, dict):
            raise StorageOperationError(
                f"mergeWorkflowStepResult answered {type(merged).__name__}, not a context",
                op="mergeWorkflowStepResult",
                table=TABLE,
            )
        return merged

    async def update_state(
        self,
        workflow_name: str,
        run_id: str,
        *,
        expected_status: str | Sequence[str] | None = None,
        **changes: Any,
    ) -> WorkflowSnapshot | None:
        """Set top-level snapshot fields (``status="running"``, ``suspended_paths={...}``).

        Returns the merged snapshot, or None when the run does not exist or, with
        ``expected_status``, when its stored status is not one of those given. On our handler
        the check and the update are one mutation, so of several resumers claiming a suspended
        run with ``expected_status="suspended"`` exactly one succeeds. The stock @mastra/convex
        handler has no such guard: there the check is a separate read (not atomic).
        """
        check_id(workflow_name, "workflow_name")
        check_id(run_id, "run_id")
        statuses = check_statuses(expected_status)
        opts = snapshot_keys(changes)
        if not opts:
            raise ValidationError("update_state needs at least one field to set", field="changes")
        handler = await self._handler()
        merged = await handler.merge_workflow_state(workflow_name, run_id, opts, statuses)
        if merged is None:
            return None
        return snapshot_from_stored(merged)
