"""``store.schedules``: Mastra's schedules and their trigger history (@mastra/core's
``SchedulesStorage``), in @mastra/convex's tables, rows and operations.

Times are epoch milliseconds (ints), as Mastra keeps them: the scheduler claims a fire by
comparing ``next_fire_at`` exactly, so the value must come back as it went in.
"""

from __future__ import annotations

import builtins
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from typing import Any, Literal

import pydantic
from pydantic import Field, field_validator

from .._codec import check_document_size, decode_json, json_text
from .._errors import NotFoundError, StorageOperationError, ValidationError
from .._models import MastraModel, coerce
from .._paging import IndexQuery
from ._base import Domain, check_id, strip_system

__all__ = ["Schedule", "ScheduleTrigger", "Schedules"]

TABLE = "mastra_schedules"
TRIGGERS = "mastra_schedule_triggers"
LIST_LIMIT = 8_000
"""Schedules one listing returns at most, as @mastra/convex (Mastra expects few schedules)."""


def now_ms() -> int:
    """The current time in epoch milliseconds."""
    return time.time_ns() // 1_000_000


class Schedule(MastraModel):
    """A persisted schedule: what it fires (``target``), on which cron, and when next."""

    id: str = Field(min_length=1)
    target: dict[str, Any]
    """``{"type": "workflow", "workflowId": ...}`` or ``{"type": "agent", "agentId": ...,
    "prompt": ...}``, with the other fields Mastra defines, kept as they are."""
    cron: str = Field(min_length=1)
    timezone: str | None = None
    status: Literal["active", "paused"] = "active"
    next_fire_at: int
    last_fire_at: int | None = None
    last_run_id: str | None = None
    created_at: int = Field(default_factory=now_ms)
    updated_at: int = Field(default_factory=now_ms)
    metadata: dict[str, Any] | None = None
    owner_type: str | None = None
    owner_id: str | None = None

    @field_validator("target")
    @classmethod
    def _typed(cls, value: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(value.get("type"), str):
            raise ValueError('target needs a "type" ("workflow" or "agent")')
        if value["type"] == "heartbeat":  # rows from before Mastra renamed the type
            value = {**value, "type": "agent"}
        return value


class ScheduleTrigger(MastraModel):
    """One fire of a schedule, as the scheduler recorded it."""

    id: str = Field(default_factory=lambda: str(uuid.uuid4()), min_length=1)
    schedule_id: str = Field(min_length=1)
    run_id: str | None = None
    scheduled_fire_at: int
    actual_fire_at: int
    outcome: str = Field(min_length=1)
    """``published``, ``succeeded``, ``failed``... (Mastra's ``ScheduleTriggerOutcome``)."""
    error: str | None = None
    trigger_kind: str = "schedule-fire"
    parent_trigger_id: str | None = None
    metadata: dict[str, Any] | None = None


def schedule_record(schedule: Schedule) -> dict[str, Any]:
    """The row @mastra/convex writes: snake_case columns, ``target`` and ``metadata`` as JSON
    text, nulls for what is absent, ``workflow_id`` copied out of a workflow target."""
    target = schedule.target
    record = {
        "id": schedule.id,
        "target": json_text(target, "schedule.target"),
        "cron": schedule.cron,
        "timezone": schedule.timezone,
        "status": schedule.status,
        "next_fire_at": schedule.next_fire_at,
        "last_fire_at": schedule.last_fire_at,
        "last_run_id": schedule.last_run_id,
        "created_at": schedule.created_at,
        "updated_at": schedule.updated_at,
        "metadata": _json_or_null(schedule.metadata, "schedule.metadata"),
        "owner_type": schedule.owner_type,
        "owner_id": schedule.owner_id,
        "workflow_id": target.get("workflowId") if target["type"] == "workflow" else None,
    }
    check_document_size(schedule.id, record)
    return record


def schedule_from_row(row: Mapping[str, Any]) -> Schedule:
    """A stored row as a Schedule; StorageOperationError for a row no Mastra could read (as
    upstream, which throws on a target without a type)."""
    fields = strip_system(row)
    fields.pop("workflow_id", None)
    fields["target"] = decode_json(fields.get("target"))
    fields["metadata"] = decode_json(fields.get("metadata"))
    try:
        return Schedule.model_validate({k: v for k, v in fields.items() if v is not None})
    except pydantic.ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'row'}: {e['msg']}" for e in exc.errors()
        )
        raise StorageOperationError(
            f"stored schedule {fields.get('id')!r} cannot be read: {problems}", table=TABLE
        ) from None


def trigger_record(trigger: ScheduleTrigger) -> dict[str, Any]:
    """The trigger row @mastra/convex writes."""
    record = {
        "id": trigger.id,
        "schedule_id": trigger.schedule_id,
        "run_id": trigger.run_id,
        "scheduled_fire_at": trigger.scheduled_fire_at,
        "actual_fire_at": trigger.actual_fire_at,
        "outcome": trigger.outcome,
        "error": trigger.error,
        "trigger_kind": trigger.trigger_kind,
        "parent_trigger_id": trigger.parent_trigger_id,
        "metadata": _json_or_null(trigger.metadata, "trigger.metadata"),
    }
    check_document_size(trigger.id, record)
    return record


def trigger_from_row(row: Mapping[str, Any]) -> ScheduleTrigger:
    """A stored trigger row as a ScheduleTrigger."""
    fields = strip_system(row)
    fields["metadata"] = decode_json(fields.get("metadata"))
    return ScheduleTrigger.model_validate({k: v for k, v in fields.items() if v is not None})


def _json_or_null(value: Mapping[str, Any] | None, where: str) -> str | None:
    return None if value is None else json_text(dict(value), where)


# Which columns each patchable field writes (target also moves workflow_id).
PATCHABLE = {
    "cron": "cron",
    "timezone": "timezone",
    "status": "status",
    "next_fire_at": "next_fire_at",
    "nextFireAt": "next_fire_at",
    "metadata": "metadata",
    "target": "target",
    "owner_type": "owner_type",
    "ownerType": "owner_type",
    "owner_id": "owner_id",
    "ownerId": "owner_id",
}


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()


class Schedules(Domain):
    """Schedules: create, get, list, due, update, claim_fire, delete; record_trigger,
    triggers, iter_triggers."""

    async def create(self, schedule: Schedule | Mapping[str, Any]) -> Schedule:
        """Insert a new schedule; StorageOperationError (code ``CONFLICT``) when one with this
        id exists."""
        model = coerce(Schedule, schedule, "schedule")
        check_id(model.id, "schedule.id")
        await (await self._handler()).create_schedule(schedule_record(model))
        return model

    async def get(self, schedule_id: str) -> Schedule | None:
        """The schedule, or None."""
        check_id(schedule_id, "schedule_id")
        row = await self._dispatcher.call("load", TABLE, keys={"id": schedule_id})
        return schedule_from_row(row) if row else None

    async def list(
        self,
        *,
        status: str | None = None,
        workflow_id: str | None = None,
        owner_type: str | None = UNSET,
        owner_id: str | None = UNSET,
    ) -> builtins.list[Schedule]:
        """Schedules matching every filter given, oldest first (at most 8,000, as upstream).
        ``owner_type=None`` / ``owner_id=None`` match schedules without one."""
        filters: builtins.list[dict[str, Any]] = []
        for column, value in (
            ("status", status),
            ("workflow_id", workflow_id),
            ("owner_type", owner_type),
            ("owner_id", owner_id),
        ):
            if value is UNSET or (value is None and column in ("status", "workflow_id")):
                continue
            if value is not None:
                check_id(value, column)
            filters.append({"field": column, "value": value})
        rows = await self._dispatcher.call(
            "queryTable", TABLE, filters=filters or None, limit=LIST_LIMIT
        )
        schedules = [schedule_from_row(row) for row in rows or ()]
        return sorted(schedules, key=lambda s: s.created_at)

    async def due(self, now: int | None = None, *, limit: int = 100) -> builtins.list[Schedule]:
        """Active schedules whose ``next_fire_at`` is at or before ``now`` (default: now),
        soonest first, read through the status / next-fire index."""
        when = now_ms() if now is None else _ms(now, "now")
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValidationError("limit must be a positive integer", field="limit")
        rows = await self._dispatcher.call("listDueSchedules", TABLE, now=when, limit=limit)
        return [schedule_from_row(row) for row in rows or ()]

    async def update(self, schedule_id: str, **changes: Any) -> Schedule:
        """Change the given fields (``cron``, ``timezone``, ``status``, ``next_fire_at``,
        ``metadata``, ``target``, ``owner_type``, ``owner_id``; None clears an optional one);
        ``updated_at`` becomes now. NotFoundError for a missing schedule."""
        check_id(schedule_id, "schedule_id")
        unknown = sorted(set(changes) - set(PATCHABLE))
        if unknown:
            raise ValidationError(
                f"schedules cannot update {', '.join(unknown)}; only {', '.join(PATCHABLE)}",
                field=unknown[0],
            )
        if not changes:
            current = await self.get(schedule_id)
            if current is None:
                raise NotFoundError(
                    f"schedule {schedule_id!r} not found", op="updateSchedule", table=TABLE
                )
            return current
        fields = {PATCHABLE[key]: value for key, value in changes.items()}
        # Validate the changed fields as a whole schedule would have them.
        probe = {"id": schedule_id, "cron": "x", "target": {"type": "workflow"}, "next_fire_at": 0}
        checked = coerce(Schedule, {**probe, **fields}, "schedule update")
        patch: dict[str, Any] = {}
        for column in fields:
            value = getattr(checked, column)
            if column == "target":
                patch["target"] = json_text(value, "target")
                patch["workflow_id"] = (
                    value.get("workflowId") if value["type"] == "workflow" else None
                )
            elif column == "metadata":
                patch["metadata"] = _json_or_null(value, "metadata")
            else:
                patch[column] = value
        patch["updated_at"] = now_ms()
        row = await (await self._handler()).update_schedule(schedule_id, patch)
        return schedule_from_row(row)

    async def claim_fire(
        self,
        schedule_id: str,
        *,
        expected_next_fire_at: int,
        next_fire_at: int,
        fired_at: int,
        run_id: str,
    ) -> bool:
        """Advance an active schedule's ``next_fire_at`` only if it is still
        ``expected_next_fire_at``, in one mutation (Mastra's ``updateScheduleNextFire``): of
        many schedulers polling the same schedule, exactly one claims each fire. True when
        this call did."""
        check_id(schedule_id, "schedule_id")
        check_id(run_id, "run_id")
        claimed = await self._dispatcher.call(
            "updateScheduleNextFire",
            TABLE,
            id=schedule_id,
            expectedNextFireAt=_ms(expected_next_fire_at, "expected_next_fire_at"),
            newNextFireAt=_ms(next_fire_at, "next_fire_at"),
            lastFireAt=_ms(fired_at, "fired_at"),
            lastRunId=run_id,
        )
        return bool(claimed)

    async def delete(self, schedule_id: str) -> None:
        """Delete the schedule's triggers (in bounded batches), then the schedule."""
        check_id(schedule_id, "schedule_id")
        await self._dispatcher.drain("deleteScheduleTriggers", TRIGGERS, scheduleId=schedule_id)
        await self._dispatcher.call("deleteMany", TABLE, ids=[schedule_id])

    async def record_trigger(self, trigger: ScheduleTrigger | Mapping[str, Any]) -> ScheduleTrigger:
        """Append a fire to a schedule's history (an id is made when none is given)."""
        model = coerce(ScheduleTrigger, trigger, "trigger")
        check_id(model.schedule_id, "trigger.schedule_id")
        await self._dispatcher.call("recordScheduleTrigger", TRIGGERS, record=trigger_record(model))
        return model

    async def triggers(
        self,
        schedule_id: str,
        *,
        limit: int = 100,
        from_actual_fire_at: int | None = None,
        to_actual_fire_at: int | None = None,
    ) -> builtins.list[ScheduleTrigger]:
        """The newest ``limit`` fires of a schedule, newest first, with ``actual_fire_at`` at
        or after ``from_actual_fire_at`` and before ``to_actual_fire_at``."""
        check_id(schedule_id, "schedule_id")
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValidationError("limit must be a positive integer", field="limit")
        rows = await self._dispatcher.call(
            "listScheduleTriggers",
            TRIGGERS,
            scheduleId=schedule_id,
            limit=limit,
            fromActualFireAt=None
            if from_actual_fire_at is None
            else _ms(from_actual_fire_at, "from_actual_fire_at"),
            toActualFireAt=None
            if to_actual_fire_at is None
            else _ms(to_actual_fire_at, "to_actual_fire_at"),
        )
        return [trigger_from_row(row) for row in rows or ()]

    async def iter_triggers(
        self, schedule_id: str, *, page_size: int = 100
    ) -> AsyncIterator[ScheduleTrigger]:
        """Every fire of a schedule, newest first, a page at a time through the schedule's
        index (ties in ``actual_fire_at`` included, which time bounds would split)."""
        check_id(schedule_id, "schedule_id")
        query = IndexQuery(
            table=TRIGGERS,
            index="by_schedule_actual",
            sort_field="actual_fire_at",
            eq=(("schedule_id", schedule_id),),
        )
        async for rows in (await self._rows()).iterate(query, descending=True, page_size=page_size):
            for row in rows:
                yield trigger_from_row(row)


def _ms(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(f"{field} must be epoch milliseconds (an int)", field=field)
    return value
