"""Error codes across the language boundary: the handler's ``code`` picks the exception.

The message text is for people and may change; these tests give every code a text that says
something else, so a mapping that still reads the text fails here.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

from convex_mastra import (
    ConvexServerCache,
    ConvexStore,
    NotFoundError,
    RecordTooLargeError,
    StorageOperationError,
)
from convex_mastra._dispatch import refusal
from convex_mastra.pytest_plugin import Deployment
from tests.conftest import RawHttp, import_rows

MISLEADING = "record not found; over the 1 MiB; call rebuildCounters"
"""A text that would send a text-matching client to the wrong exception for every code."""

PLAIN_CODES = [
    "INVALID",
    "CONFLICT",
    "TYPE_MISMATCH",
    "LIMIT",
    "STALE_COUNTERS",
    "UNSUPPORTED_OP",
    "FAILED",
]


def answer(code: str | None, details: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"ok": False, "error": MISLEADING}
    if code is not None:
        out["code"] = code
    if details is not None:
        out["details"] = details
    return out


def test_not_found_is_a_not_found_error_whatever_the_text() -> None:
    for text in ("nothing to see", MISLEADING, ""):
        error = refusal(
            "load",
            "mastra_threads",
            "mastra_threads",
            {**answer("NOT_FOUND", {"id": "t1"}), "error": text},
        )
        assert type(error) is NotFoundError
        assert error.code == "NOT_FOUND" and error.details == {"id": "t1"}
        assert error.op == "load" and error.table == "mastra_threads"


def test_too_large_is_a_record_too_large_error_from_its_details() -> None:
    details = {
        "table": "mastra_messages",
        "kind": "message",
        "id": 'm"1',
        "size": 1_048_700,
        "limit": 1_048_576,
    }
    error = refusal("saveMessages", "mastra/storage:handle", None, answer("TOO_LARGE", details))
    assert type(error) is RecordTooLargeError
    assert (error.record_id, error.size, error.limit) == ('m"1', 1_048_700, 1_048_576)


@pytest.mark.parametrize("code", PLAIN_CODES)
def test_other_codes_are_storage_operation_errors_that_keep_code_and_details(code: str) -> None:
    error = refusal("count", "mastra_threads", "mastra_threads", answer(code, {"table": "x"}))
    assert type(error) is StorageOperationError
    assert error.code == code and error.details == {"table": "x"}
    assert MISLEADING in str(error)


def test_only_an_answer_without_a_code_is_read_as_text() -> None:
    # The stock @mastra/convex handler sends no code: its text is all there is.
    stock = refusal("load", "mastra_threads", "mastra_threads", answer(None))
    assert type(stock) is NotFoundError and stock.code is None
    assert type(refusal("x", "y", None, {"ok": False, "error": "boom"})) is StorageOperationError


# -- the codes our handlers send, end to end -------------------------------------------------


def test_the_handlers_send_codes_and_details(convex_deployment: Deployment, uid: str) -> None:
    http = RawHttp(convex_deployment.url, convex_deployment.admin_key)
    storage = http.storage
    missing = storage(
        {
            "op": "saveMessages",
            "messages": [
                {
                    "id": f"m-{uid}",
                    "thread_id": f"none-{uid}",
                    "content": "{}",
                    "role": "user",
                    "type": "v2",
                    "createdAt": "2026-01-01T00:00:00.000Z",
                    "resourceId": "r",
                }
            ],
        }
    )
    assert missing["code"] == "NOT_FOUND"
    assert missing["details"] == {"table": "mastra_threads", "id": f"none-{uid}"}
    assert storage({"op": "nope", "tableName": "mastra_threads"})["code"] == "UNSUPPORTED_OP"
    bad = storage({"op": "load", "tableName": "mastra_threads", "keys": 5})
    assert bad["code"] == "INVALID"
    schedule = {
        "id": f"s-{uid}",
        "target": '{"type": "workflow", "workflowId": "w"}',
        "cron": "* * * * *",
        "timezone": None,
        "status": "active",
        "next_fire_at": 4_102_444_800_000,  # 2100: never due for other tests
        "last_fire_at": None,
        "last_run_id": None,
        "created_at": 1,
        "updated_at": 1,
    }
    create = {"op": "createSchedule", "tableName": "mastra_schedules", "record": schedule}
    assert storage(create) == {"ok": True}
    again = storage(create)
    assert again["code"] == "CONFLICT" and again["details"]["id"] == f"s-{uid}"
    cache = "mastra/cache:handle"
    key = f"codes:{uid}:k"
    assert storage({"op": "set", "key": key, "keyPrefix": "codes:", "value": 1}, function=cache)[
        "ok"
    ]
    clash = storage({"op": "listLength", "key": key}, function=cache)
    assert clash["code"] == "TYPE_MISMATCH" and clash["details"] == {"key": key}
    storage({"op": "delete", "key": key}, function=cache)
    too_many = storage({"op": "listFromTo", "key": key, "from": 0, "to": 5000}, function=cache)
    assert too_many["ok"]  # a missing key: nothing to refuse
    assert storage({"op": "bogus"}, function=cache)["code"] == "UNSUPPORTED_OP"


async def test_the_sdk_raises_by_code(
    store: ConvexStore, convex_deployment: Deployment, uid: str
) -> None:
    with pytest.raises(NotFoundError) as raised:
        await store.messages.save(
            [
                {
                    "id": f"m-{uid}",
                    "threadId": f"none-{uid}",
                    "resourceId": "r",
                    "role": "user",
                    "createdAt": "2026-01-01T00:00:00Z",
                    "content": {"parts": []},
                }
            ]
        )
    assert raised.value.code == "NOT_FOUND" and raised.value.details["id"] == f"none-{uid}"
    async with ConvexServerCache(
        convex_deployment.url, convex_deployment.admin_key, key_prefix=f"c{uid}:"
    ) as cache:
        await cache.set("k", 1)
        with pytest.raises(StorageOperationError) as clash:
            await cache.list_push("k", 2)
        assert clash.value.code == "TYPE_MISMATCH" and clash.value.details == {"key": f"c{uid}:k"}


async def test_stale_counters_are_told_by_code(
    convex_test_deployment: Deployment, caplog: pytest.LogCaptureFixture
) -> None:
    # Rows imported into a deployment whose counters never ran: count refuses with
    # STALE_COUNTERS, and listings count by scanning instead.
    dep = convex_test_deployment
    row = {"resourceId": "r", "title": "", "createdAt": "2026-01-01T00:00:00.000Z"}
    import_rows(
        dep,
        "mastra_threads",
        [{**row, "id": f"t{n}", "updatedAt": row["createdAt"]} for n in range(3)],
    )
    answer = RawHttp(dep.url, dep.admin_key).storage(
        {
            "op": "count",
            "tableName": "mastra_threads",
            "eq": [{"field": "resourceId", "value": "r"}],
        }
    )
    assert answer["ok"] is False and answer["code"] == "STALE_COUNTERS"
    assert answer["details"] == {"table": "mastra_threads"}
    async with ConvexStore(dep.url, dep.admin_key) as store:
        with caplog.at_level(logging.WARNING, logger="convex_mastra.paging"):
            page = await store.threads.list(resource_id="r", per_page=2)
    assert page.total == 3 and len(page.items) == 2
    assert "counters of mastra_threads are stale" in caplog.text


async def test_a_range_too_long_for_one_call_is_a_limit(
    convex_deployment: Deployment, uid: str
) -> None:
    prefix = f"limit:{uid}:"
    async with ConvexServerCache(
        convex_deployment.url, convex_deployment.admin_key, key_prefix=prefix
    ) as cache:
        await cache.list_push_many("l", range(1001))
        # Upstream's client asks for a whole range in one call; ours pages past 1,000 items.
        answer = RawHttp(convex_deployment.url, convex_deployment.admin_key).storage(
            {"op": "listFromTo", "key": f"{prefix}l", "from": 0, "to": -1},
            function="mastra/cache:handle",
        )
        assert answer["code"] == "LIMIT" and answer["details"] == {"items": 1001, "limit": 1000}
        assert len(await cache.list_range("l", 0)) == 1001
        await cache.clear()
