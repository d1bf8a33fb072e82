"""``info`` is the one source of protocol facts: the client follows what the handler declares.

Limits, read-only ops and counted groups come from the deployed handler's ``info`` answer
(upstream's stock handler, which has none, is declared in ``_dispatch.py``). A handler that
declares other limits changes what the client sends.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from convex_mastra import ConvexServerCache, ConvexStore, FunctionError
from convex_mastra._dispatch import PROTOCOL, Dispatcher
from convex_mastra.pytest_plugin import Deployment
from tests.conftest import RawHttp, redeclare
from tests.domains.test_workflows import snapshot

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def ops(http: RawHttp, since: int, op: str) -> list[dict[str, Any]]:
    return [call for call in http.calls_since(since) if call.get("op") == op]


async def test_info_declares_limits_read_ops_and_counted_groups(store: ConvexStore) -> None:
    info = await store.handler_info()
    assert info.protocol >= PROTOCOL
    assert info.limit("pageItems") == 1000 and info.limit("scanRows") == 4000
    assert info.load_many == info.limit("loadManyIds") == 1000
    assert info.limit("documentBytes") == 1024 * 1024
    assert {"load", "pageByIndex", "count", "scan"} <= info.read_ops
    assert not {"saveMessages", "deleteMessages", "insert"} & info.read_ops
    assert info.counts("mastra_threads", ["resourceId"]) and info.counts("mastra_threads", [])
    assert info.counts("mastra_messages", ["resourceId", "thread_id"])
    assert not info.counts("mastra_messages", [])  # messages keep no table total
    assert info.counts("mastra_workflow_snapshot", ["status", "workflow_name"])
    with pytest.raises(FunctionError, match="redeploy"):
        info.limit("noSuchLimit")


async def test_a_handler_declaring_other_limits_changes_the_client(
    store: ConvexStore, convex_deployment: Deployment, uid: str
) -> None:
    http = RawHttp(convex_deployment.url, convex_deployment.admin_key)
    info = await store.handler_info()
    smaller = {"pageItems": 7, "loadManyIds": 3, "batchItems": 4, "windowItems": 2}
    await redeclare(store, limits={**info.limits, **smaller})
    thread_id = f"t-{uid}"
    await store.threads.save(
        {"id": thread_id, "resourceId": f"r-{uid}", "title": "", "createdAt": T0, "updatedAt": T0}
    )
    messages = [
        {
            "id": f"m{n}-{uid}",
            "threadId": thread_id,
            "resourceId": f"r-{uid}",
            "role": "user",
            "createdAt": T0 + timedelta(seconds=n),
            "content": {"parts": []},
        }
        for n in range(10)
    ]
    since = http.next_seq()
    await store.messages.save(messages)
    assert len(ops(http, since, "saveMessages")) == 3  # 4 + 4 + 2

    since = http.next_seq()
    got = await store.messages.get_many([m["id"] for m in messages])
    assert len(got) == 10 and len(ops(http, since, "loadMany")) == 4

    since = http.next_seq()
    assert len([m async for m in store.messages.iter(thread_id, page_size=20)]) == 10
    assert len(ops(http, since, "pageByIndex")) == 2  # pages of at most 7

    since = http.next_seq()
    page = await store.messages.list(
        thread_id, per_page=0, include=[{"id": m["id"]} for m in messages[:5]]
    )
    assert len(page.items) == 5 and len(ops(http, since, "messageWindow")) == 3

    # Runs are counted by workflow name, unless the handler declares no counted groups: then
    # totals come from counting scans, never from `count`.
    await store.workflows.persist_snapshot(f"wf-{uid}", f"run-{uid}", snapshot(f"run-{uid}"))
    for counted, op in ((info.counted, "count"), ({}, "scan")):
        await redeclare(store, counted=counted)
        since = http.next_seq()
        assert (await store.workflows.list_runs(workflow_name=f"wf-{uid}", per_page=5)).total == 1
        assert ops(http, since, op) != []
        assert ops(http, since, "scan" if op == "count" else "count") == []


async def test_the_cache_follows_its_handlers_limits(
    convex_deployment: Deployment, uid: str
) -> None:
    http = RawHttp(convex_deployment.url, convex_deployment.admin_key)
    async with ConvexServerCache(
        convex_deployment.url, convex_deployment.admin_key, key_prefix=f"info:{uid}:"
    ) as cache:
        info = await cache.handler_info()
        assert info.limit("listItemsPerCall") == 25
        assert await cache.capabilities() == {
            "any_json",
            "counter_reads",
            "strict_kinds",
            "contiguous_pushes",
            "injected_clock",
        }
        assert {"get", "listLength", "listFromTo"} <= info.read_ops
        await redeclare(cache, limits={**info.limits, "listItemsPerCall": 5})
        since = http.next_seq()
        await cache.list_push_many("l", range(12))
        assert len(ops(http, since, "listPushMany")) == 3
        since = http.next_seq()
        assert await cache.list_range("l", 0) == list(range(12))
        assert len(ops(http, since, "listFromTo")) == 3
        await cache.clear()


async def test_a_handler_older_than_the_protocol_is_refused_with_what_to_do(
    convex_deployment: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with ConvexStore(convex_deployment.url, convex_deployment.admin_key) as store:
        dispatcher: Dispatcher = store._dispatcher
        real_call = dispatcher.call

        async def old_info(op: str, table: str | None, /, **fields: Any) -> Any:
            answer = await real_call(op, table, **fields)
            return {**answer, "protocol": 1} if op == "info" else answer

        monkeypatch.setattr(dispatcher, "call", old_info)
        with pytest.raises(FunctionError, match=r"protocol 1; convex-mastra .* needs protocol 2"):
            await store.threads.get("t")
