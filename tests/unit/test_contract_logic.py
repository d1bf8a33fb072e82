"""Pure logic behind Mastra 1.71's contract and the newer domains: default times, where a run's
thread is found, merging several listings, row encodings of schedules, observational memory and
background tasks. What the handlers store and read is tested against the local deployment in
tests/domains/; nothing here needs one."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest

from convex_mastra import ValidationError
from convex_mastra._domains.background_tasks import task_patch
from convex_mastra._domains.observational import (
    ObservationalMemoryRecord,
    lookup_key,
    record_from_row,
    record_row,
)
from convex_mastra._domains.schedules import Schedule, schedule_from_row, schedule_record
from convex_mastra._domains.workflows import run_view
from convex_mastra._models import fill_times
from convex_mastra._paging import IndexQuery, Rows

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)


def test_fill_times_defaults_only_what_is_missing() -> None:
    given = {"createdAt": T0}
    filled = fill_times(given)
    assert filled["createdAt"] == filled["updatedAt"] == T0 and given == {"createdAt": T0}
    snake = fill_times({"created_at": T0})
    assert snake["updatedAt"] == T0  # either spelling of the field it copies
    fresh = fill_times({})
    assert fresh["createdAt"] == fresh["updatedAt"] and fresh["createdAt"].tzinfo is not None
    both = {"createdAt": T0, "updatedAt": T0}
    assert fill_times(both) is both  # nothing to fill: no copy
    assert fill_times("not a mapping") == "not a mapping"


def _suspended(thread: str, *, stream: bool = True) -> dict[str, Any]:
    payload = {"__streamState": {"messageList": {"memoryInfo": {"threadId": thread}}}}
    return {"status": "suspended", "suspendPayload": payload if stream else {}}


@pytest.mark.parametrize(
    ("context", "thread"),
    [
        ({}, None),
        ({"input": {"messageListState": {"memoryInfo": {"threadId": "d"}}}}, "d"),
        ({"step": _suspended("s")}, "s"),
        # The first suspended step with a stream state decides, even over the durable place.
        (
            {
                "a": _suspended("x", stream=False),
                "b": _suspended("s"),
                "input": {"messageListState": {"memoryInfo": {"threadId": "d"}}},
            },
            "s",
        ),
        ({"step": {**_suspended("s"), "status": "success"}}, None),
        ({"input": {"messageListState": {"memoryInfo": "not an object"}}}, None),
    ],
)
def test_run_view_finds_the_thread_where_mastra_keeps_it(
    context: dict[str, Any], thread: str | None
) -> None:
    view = run_view({"status": "running", "context": context})
    assert view.get("threadId") == thread and view["status"] == "running"


class ListedRows(Rows):
    """Rows whose queries answer from lists in memory (sorted by ``t``), as a handler would."""

    def __init__(self, tables: dict[str, list[int]]) -> None:
        self.tables = tables

    def _rows(self, query: IndexQuery, descending: bool) -> list[dict[str, Any]]:
        values = sorted(self.tables[query.index], reverse=descending)
        return [{"t": value, "_creationTime": value, "q": query.index} for value in values]

    async def slice(
        self, query: IndexQuery, *, offset: int, limit: int | None, descending: bool
    ) -> tuple[list[dict[str, Any]], int]:
        rows = self._rows(query, descending)
        return rows[offset : None if limit is None else offset + limit], len(rows)

    async def peek(
        self, query: IndexQuery, *, offset: int, limit: int | None, descending: bool
    ) -> tuple[list[dict[str, Any]], bool]:
        rows = self._rows(query, descending)
        return rows[offset : None if limit is None else offset + limit], (
            limit is not None and len(rows) > offset + limit
        )


@pytest.mark.parametrize("descending", [False, True])
@pytest.mark.parametrize(("offset", "limit"), [(0, 3), (2, 3), (4, 10), (9, 2), (0, None)])
async def test_several_queries_page_as_one_listing(
    descending: bool, offset: int, limit: int | None
) -> None:
    rows = ListedRows({"a": [1, 4, 5, 8], "b": [2, 3, 9], "c": [6, 7]})
    queries = [IndexQuery(table="x", index=name, sort_field="t") for name in ("a", "b", "c")]
    every = sorted(range(1, 10), reverse=descending)
    want = every[offset : None if limit is None else offset + limit]
    window, total = await rows.slice_all(queries, offset=offset, limit=limit, descending=descending)
    assert [row["t"] for row in window] == want and total == 9
    peeked, more = await rows.peek_all(queries, offset=offset, limit=limit, descending=descending)
    assert [row["t"] for row in peeked] == want
    assert more == (limit is not None and offset + limit < 9)


def test_schedule_rows_round_trip_as_upstream_writes_them() -> None:
    schedule = Schedule.model_validate(
        {
            "id": "s",
            "target": {"type": "workflow", "workflowId": "w", "inputData": {"n": 1}},
            "cron": "* * * * *",
            "nextFireAt": 5,
            "metadata": {"$k": 1},
        }
    )
    row = schedule_record(schedule)
    assert row["workflow_id"] == "w" and isinstance(row["target"], str)
    assert row["timezone"] is None and row["metadata"] == '{"$k":1}'
    assert schedule_from_row(row) == schedule
    legacy = schedule_from_row({**row, "target": '{"type": "heartbeat", "agentId": "a"}'})
    assert legacy.target["type"] == "agent"


def test_observational_rows_round_trip_and_are_keyed_by_thread_or_resource() -> None:
    assert lookup_key("t", "r") == "thread:t" and lookup_key(None, "r") == "resource:r"
    with pytest.raises(ValidationError) as missing:
        lookup_key(None, None)
    assert missing.value.field == "resource_id"
    record = ObservationalMemoryRecord.model_validate(
        {
            "id": "om",
            "scope": "thread",
            "threadId": "t",
            "resourceId": "r",
            "createdAt": T0,
            "updatedAt": T0,
            "lastObservedAt": T0,
            "bufferedObservationChunks": [{"cycleId": "c", "createdAt": "2026-11-23T09:00:00Z"}],
            "config": {"a": 1},
            "metadata": {"$m": True},
            "isObserving": True,
        }
    )
    row = record_row(record)
    assert row["lookupKey"] == "thread:t" and row["config"] == '{"a":1}'
    assert record_from_row(row) == record


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"status": "sleeping"}, "status"),
        ({"args": {}}, "args"),
        ({"retryCount": -1}, "retryCount"),
        ({"started_at": "yesterday"}, "started_at"),
    ],
)
def test_task_patches_refuse_what_mastra_does_not_update(
    changes: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        task_patch(changes)
    assert refused.value.field == field


def test_task_patches_write_the_stored_columns() -> None:
    patch = task_patch(
        {"status": "failed", "error": {"message": "x"}, "completedAt": T0, "retry_count": 2}
    )
    assert patch == {
        "status": "failed",
        "error": '{"message":"x"}',
        "completedAt": "2026-11-23T09:00:00.000Z",
        "retry_count": 2,
    }
    assert task_patch({"result": None}) == {"result": None}
