"""``store.background_tasks``: Mastra's background tool calls (@mastra/core's
``BackgroundTasksStorage``) in @mastra/convex's ``mastra_background_tasks`` rows.

Listings read through the table's indexes (by status and creation time, or by creation time),
with the other equality filters checked by the handler as it reads. Running counts count the
running rows through the status index: no counter document that every status change would
have to write (on Convex such a document serializes all its writers).
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Literal, get_args

from pydantic import Field

from .._codec import decode_json, json_text, to_iso, truncate_ms
from .._errors import ValidationError
from .._models import MastraModel, Page, Timestamp, coerce, utc_now
from .._paging import IndexQuery, check_paging
from ._base import Domain, check_direction, check_id

__all__ = ["BackgroundTask", "BackgroundTasks"]

TABLE = "mastra_background_tasks"

TaskStatus = Literal[
    "pending", "running", "suspended", "completed", "failed", "cancelled", "timed_out"
]
STATUSES: tuple[str, ...] = get_args(TaskStatus)


class BackgroundTask(MastraModel):
    """One background tool call of an agent run."""

    id: str = Field(min_length=1)
    status: TaskStatus = "pending"
    tool_name: str = Field(min_length=1)
    tool_call_id: str = Field(min_length=1)
    args: dict[str, Any] = Field(default_factory=dict)
    agent_id: str = Field(min_length=1)
    thread_id: str | None = None
    resource_id: str | None = None
    run_id: str = Field(min_length=1)
    result: Any = None
    error: dict[str, Any] | None = None
    """``{"message": ..., "stack"?: ...}``"""
    suspend_payload: Any = None
    created_at: Timestamp = Field(default_factory=utc_now)
    started_at: Timestamp | None = None
    suspended_at: Timestamp | None = None
    completed_at: Timestamp | None = None
    retry_count: int = 0
    max_retries: int = 0
    timeout_ms: int = 0


def _json_or_null(value: Any, where: str) -> str | None:
    return None if value is None else json_text(value, where)


def _time_or_null(value: datetime | None) -> str | None:
    return None if value is None else to_iso(value)


def task_record(task: BackgroundTask) -> dict[str, Any]:
    """The row @mastra/convex writes: snake_case ids, JSON text for args, result, error and
    suspend payload, ISO dates."""
    return {
        "id": task.id,
        "status": task.status,
        "tool_call_id": task.tool_call_id,
        "tool_name": task.tool_name,
        "agent_id": task.agent_id,
        "run_id": task.run_id,
        "thread_id": task.thread_id,
        "resource_id": task.resource_id,
        "args": json_text(task.args, "task.args"),
        "result": _json_or_null(task.result, "task.result"),
        "error": _json_or_null(task.error, "task.error"),
        "suspend_payload": _json_or_null(task.suspend_payload, "task.suspend_payload"),
        "retry_count": task.retry_count,
        "max_retries": task.max_retries,
        "timeout_ms": task.timeout_ms,
        "createdAt": to_iso(task.created_at),
        "startedAt": _time_or_null(task.started_at),
        "suspendedAt": _time_or_null(task.suspended_at),
        "completedAt": _time_or_null(task.completed_at),
    }


def task_from_row(row: Mapping[str, Any]) -> BackgroundTask:
    """A stored row as a task (rows of older @mastra/convex versions use camelCase keys)."""

    def pick(snake: str, camel: str) -> Any:
        return row[snake] if snake in row else row.get(camel)

    fields = {
        "id": row["id"],
        "status": row["status"],
        "toolName": pick("tool_name", "toolName"),
        "toolCallId": pick("tool_call_id", "toolCallId"),
        "args": decode_json(row.get("args")) or {},
        "agentId": pick("agent_id", "agentId"),
        "threadId": pick("thread_id", "threadId"),
        "resourceId": pick("resource_id", "resourceId"),
        "runId": pick("run_id", "runId"),
        "result": decode_json(row.get("result")),
        "error": decode_json(row.get("error")),
        "suspendPayload": decode_json(pick("suspend_payload", "suspendPayload")),
        "retryCount": pick("retry_count", "retryCount") or 0,
        "maxRetries": pick("max_retries", "maxRetries") or 0,
        "timeoutMs": pick("timeout_ms", "timeoutMs") or 0,
        "createdAt": row["createdAt"],
        "startedAt": row.get("startedAt") or None,
        "suspendedAt": row.get("suspendedAt") or None,
        "completedAt": row.get("completedAt") or None,
    }
    return BackgroundTask.model_validate(fields)


# update(): Mastra's UpdateBackgroundTask fields -> stored column, and how each is written.
UPDATABLE = {
    "status": ("status", "status"),
    "result": ("result", "json"),
    "error": ("error", "json"),
    "suspend_payload": ("suspend_payload", "json"),
    "suspendPayload": ("suspend_payload", "json"),
    "retry_count": ("retry_count", "count"),
    "retryCount": ("retry_count", "count"),
    "max_retries": ("max_retries", "count"),
    "maxRetries": ("max_retries", "count"),
    "timeout_ms": ("timeout_ms", "count"),
    "timeoutMs": ("timeout_ms", "count"),
    "started_at": ("startedAt", "time"),
    "startedAt": ("startedAt", "time"),
    "suspended_at": ("suspendedAt", "time"),
    "suspendedAt": ("suspendedAt", "time"),
    "completed_at": ("completedAt", "time"),
    "completedAt": ("completedAt", "time"),
}

# list() filters -> stored column.
FILTERS = {
    "agent_id": "agent_id",
    "thread_id": "thread_id",
    "resource_id": "resource_id",
    "tool_name": "tool_name",
    "tool_call_id": "tool_call_id",
    "run_id": "run_id",
}


def check_status(value: Any, field: str = "status") -> str:
    if value not in STATUSES:
        raise ValidationError(
            f"{field} must be one of {', '.join(STATUSES)}, not {value!r}", field=field
        )
    return str(value)


def task_patch(changes: Mapping[str, Any]) -> dict[str, Any]:
    """The stored columns ``changes`` sets, each checked; unknown fields refused."""
    patch: dict[str, Any] = {}
    for key, value in changes.items():
        if key not in UPDATABLE:
            raise ValidationError(
                f"background tasks cannot update {key!r}; only status, result, error, "
                "suspend_payload, retry_count, max_retries, timeout_ms, started_at, "
                "suspended_at, completed_at",
                field=key,
            )
        column, kind = UPDATABLE[key]
        if kind == "status":
            patch[column] = check_status(value)
        elif kind == "json":
            patch[column] = _json_or_null(value, key)
        elif kind == "count":
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValidationError(f"{key} must be a non-negative integer", field=key)
            patch[column] = value
        else:
            if value is not None and not isinstance(value, datetime):
                raise ValidationError(f"{key} must be a datetime or None", field=key)
            patch[column] = _time_or_null(coerce_time(value, key))
    return patch


def coerce_time(value: datetime | None, field: str) -> datetime | None:
    """``value`` as stored times are (UTC, milliseconds), the error naming ``field``."""
    if value is None:
        return None
    try:
        return truncate_ms(value)
    except ValidationError as exc:
        raise ValidationError(str(exc), field=field) from None


class BackgroundTasks(Domain):
    """Background tasks: create, get, update, claim, list, delete, delete_many, and running
    counts."""

    async def create(self, task: BackgroundTask | Mapping[str, Any]) -> BackgroundTask:
        """Insert the task (or replace one with its id)."""
        model = coerce(BackgroundTask, task, "task")
        check_id(model.id, "task.id")
        await self._dispatcher.call("insert", TABLE, record=task_record(model))
        return model

    async def get(self, task_id: str) -> BackgroundTask | None:
        """The task, or None."""
        check_id(task_id, "task_id")
        row = await self._dispatcher.call("load", TABLE, keys={"id": task_id})
        return task_from_row(row) if row else None

    async def update(self, task_id: str, **changes: Any) -> bool:
        """Set the given fields (a patch of those columns alone, one mutation); False when the
        task does not exist."""
        check_id(task_id, "task_id")
        patch = task_patch(changes)
        if not patch:
            return await self.get(task_id) is not None
        return bool(await self._dispatcher.call("patch", TABLE, id=task_id, record=patch))

    async def claim(
        self, task_id: str, *, started_at: datetime | None = None
    ) -> BackgroundTask | None:
        """Move a pending task to running, only if it is still pending, in one mutation: of
        workers racing for the same task exactly one gets it. The claimed task, or None when
        another worker claimed it first (or it does not exist). Needs convex-mastra's handler
        (capability ``conditional_patch``); the stock one cannot check and write at once."""
        check_id(task_id, "task_id")
        when = coerce_time(started_at, "started_at") or utc_now()
        handler = await self._handler()
        claimed = await handler.patch_if(
            TABLE,
            task_id,
            {"status": "running", "startedAt": to_iso(when)},
            expect={"status": "pending"},
        )
        return await self.get(task_id) if claimed else None

    async def list(
        self,
        *,
        status: str | Sequence[str] | None = None,
        agent_id: str | None = None,
        thread_id: str | None = None,
        resource_id: str | None = None,
        tool_name: str | None = None,
        tool_call_id: str | None = None,
        run_id: str | None = None,
        from_date: datetime | None = None,
        to_date: datetime | None = None,
        direction: str = "ASC",
        page: int = 0,
        per_page: int | None = None,
    ) -> Page[BackgroundTask]:
        """Tasks matching every filter given, by ``createdAt`` (oldest first by default);
        ``from_date`` inclusive, ``to_date`` exclusive, as Mastra. ``per_page=None`` lists
        all; ``total`` counts every match."""
        check_paging(page, per_page)
        descending = check_direction(direction)
        statuses: builtins.list[str | None] = (
            []
            if status is None
            else [check_status(status)]
            if isinstance(status, str)
            else [check_status(s, "status") for s in status]
        )
        filters: builtins.list[tuple[str, Any]] = []
        for name, value in (
            ("agent_id", agent_id),
            ("thread_id", thread_id),
            ("resource_id", resource_id),
            ("tool_name", tool_name),
            ("tool_call_id", tool_call_id),
            ("run_id", run_id),
        ):
            if value is not None:
                filters.append((FILTERS[name], check_id(value, name)))
        bounds: dict[str, str] = {}
        if from_date is not None:
            bounds["gte"] = to_iso(coerce_time(from_date, "from_date"))  # type: ignore[arg-type]
        if to_date is not None:
            bounds["lt"] = to_iso(coerce_time(to_date, "to_date"))  # type: ignore[arg-type]
        queries = [
            IndexQuery(
                table=TABLE,
                index="by_status_created" if one is not None else "by_created",
                sort_field="createdAt",
                eq=(("status", one),) if one is not None else (),
                range=bounds or None,
                filters=tuple(filters),
            )
            for one in ([*statuses] if statuses else [None])
        ]
        offset = page * per_page if per_page is not None else 0
        rows, total = await (await self._rows()).slice_all(
            queries, offset=offset, limit=per_page, descending=descending
        )
        return Page[BackgroundTask](
            items=[task_from_row(row) for row in rows],
            total=total,
            page=page,
            per_page=per_page,
            has_more=per_page is not None and offset + per_page < total,
        )

    async def delete(self, task_id: str) -> None:
        """Delete the task (a missing one is fine)."""
        check_id(task_id, "task_id")
        await self._dispatcher.call("deleteMany", TABLE, ids=[task_id])

    async def delete_many(self, **filters: Any) -> int:
        """Delete every task :meth:`list` would return for these filters (at least one is
        required, as Mastra); how many."""
        if not any(value is not None for value in filters.values()):
            raise ValidationError("delete_many needs at least one filter", field="filters")
        found = await self.list(**filters)
        ids = [task.id for task in found.items]
        for start in range(0, len(ids), 500):
            await self._dispatcher.call("deleteMany", TABLE, ids=ids[start : start + 500])
        return len(ids)

    async def running_count(self, agent_id: str | None = None) -> int:
        """How many tasks are running (of one agent, with ``agent_id``), counted through the
        status index."""
        query = IndexQuery(
            table=TABLE,
            index="by_status_created",
            sort_field="createdAt",
            eq=(("status", "running"),),
            filters=(("agent_id", check_id(agent_id, "agent_id")),) if agent_id else (),
        )
        return await (await self._rows()).count(query)
