"""store.background_tasks and store.channels on our handler and the stock one, and with
@mastra/convex's TypeScript client."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import anyio
import pytest

from convex_mastra import ConfigurationError, ConvexStore, ValidationError
from convex_mastra.pytest_plugin import Deployment
from tests.domains.conftest import date, is_stock, refused_offline
from tests.local.test_ts_client import run_ts_client

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)


def task(uid: str, n: int, **extra: Any) -> dict[str, Any]:
    return {
        "id": f"task{n:03d}-{uid}",
        "status": "pending",
        "toolName": "search",
        "toolCallId": f"call{n}-{uid}",
        "args": {"q": n, "$schema": "kept"},
        "agentId": f"agent{n % 2}-{uid}",
        "runId": f"run-{uid}",
        "threadId": f"t-{uid}",
        "createdAt": T0 + timedelta(seconds=n),
        **extra,
    }


async def test_create_get_update_and_delete(any_store: ConvexStore, uid: str) -> None:
    tasks = any_store.background_tasks
    created = await tasks.create(task(uid, 0, maxRetries=3, timeoutMs=5000))
    got = await tasks.get(created.id)
    assert got == created and got.args == {"q": 0, "$schema": "kept"}
    assert await tasks.get(f"missing-{uid}") is None

    assert await tasks.update(
        created.id,
        status="completed",
        result={"hits": [1, 2]},
        completed_at=T0 + timedelta(minutes=1),
        retry_count=1,
    )
    done = await tasks.get(created.id)
    assert done is not None and done.status == "completed" and done.result == {"hits": [1, 2]}
    assert done.completed_at == T0 + timedelta(minutes=1) and done.retry_count == 1
    assert done.args == created.args and done.max_retries == 3  # untouched columns stay
    assert await tasks.update(created.id, error={"message": "boom"}, result=None)
    failed = await tasks.get(created.id)
    assert failed is not None and failed.error == {"message": "boom"} and failed.result is None
    assert not await tasks.update(f"missing-{uid}", status="running")

    await tasks.delete(created.id)
    assert await tasks.get(created.id) is None
    await tasks.delete(created.id)  # a missing task is fine


async def test_list_filters_pages_and_counts(any_store: ConvexStore, uid: str) -> None:
    tasks = any_store.background_tasks
    for n in range(12):
        status = ("pending", "running", "completed")[n % 3]
        await tasks.create(task(uid, n, status=status))
    every = await tasks.list(run_id=f"run-{uid}")
    assert every.total == 12 and [t.id for t in every.items] == [
        f"task{n:03d}-{uid}" for n in range(12)
    ]
    running = await tasks.list(status="running", run_id=f"run-{uid}", per_page=2, page=1)
    assert [t.id for t in running.items] == [f"task{n:03d}-{uid}" for n in (7, 10)]
    assert running.total == 4 and not running.has_more
    either = await tasks.list(
        status=["pending", "completed"], agent_id=f"agent0-{uid}", direction="DESC", per_page=3
    )
    assert [t.id for t in either.items] == [f"task{n:03d}-{uid}" for n in (8, 6, 2)]
    assert either.total == 4 and either.has_more
    window = await tasks.list(
        run_id=f"run-{uid}", from_date=T0 + timedelta(seconds=3), to_date=T0 + timedelta(seconds=6)
    )
    assert [t.id for t in window.items] == [f"task{n:03d}-{uid}" for n in (3, 4, 5)]

    assert await tasks.running_count(f"agent1-{uid}") == 2  # tasks 1 and 7
    removed = await tasks.delete_many(run_id=f"run-{uid}", status="completed")
    assert removed == 4 and (await tasks.list(run_id=f"run-{uid}")).total == 8
    with pytest.raises(ValidationError):
        await tasks.delete_many()


async def test_running_counts_stay_exact_under_100_concurrent_updates(
    any_store: ConvexStore, uid: str
) -> None:
    tasks = any_store.background_tasks
    for n in range(100):
        await tasks.create(task(uid, n, agentId=f"solo-{uid}"))

    async def start(n: int) -> None:
        await tasks.update(f"task{n:03d}-{uid}", status="running", started_at=T0)

    async with anyio.create_task_group() as group:
        for n in range(100):
            group.start_soon(start, n)
    assert await tasks.running_count(f"solo-{uid}") == 100

    async def finish(n: int) -> None:
        await tasks.update(f"task{n:03d}-{uid}", status="completed" if n % 4 else "failed")

    async with anyio.create_task_group() as group:
        for n in range(0, 100, 2):  # half of them finish at once
            group.start_soon(finish, n)
    assert await tasks.running_count(f"solo-{uid}") == 50
    assert await tasks.running_count() >= 50


async def test_exactly_one_worker_claims_a_pending_task(any_store: ConvexStore, uid: str) -> None:
    tasks = any_store.background_tasks
    await tasks.create(task(uid, 0))
    if await is_stock(any_store):
        with pytest.raises(ConfigurationError, match="convex-mastra's handler"):
            await tasks.claim(f"task000-{uid}")
        assert (await tasks.get(f"task000-{uid}")).status == "pending"  # type: ignore[union-attr]
        return
    winners: list[str] = []

    async def worker(n: int) -> None:
        claimed = await tasks.claim(f"task000-{uid}", started_at=T0)
        if claimed is not None:
            winners.append(f"w{n}")
            assert claimed.status == "running" and claimed.started_at == T0

    async with anyio.create_task_group() as group:
        for n in range(10):
            group.start_soon(worker, n)
    assert len(winners) == 1
    assert await tasks.claim(f"task000-{uid}") is None  # running already
    assert await tasks.claim(f"missing-{uid}") is None


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda s: s.background_tasks.create({**task("u", 0), "status": "sleeping"}), "task"),
        (lambda s: s.background_tasks.create({"id": "x", "status": "pending"}), "task"),
        (lambda s: s.background_tasks.update("x", status="sleeping"), "status"),
        (lambda s: s.background_tasks.update("x", tool_name="other"), "tool_name"),
        (lambda s: s.background_tasks.update("x", retry_count=-1), "retry_count"),
        (lambda s: s.background_tasks.list(status=["running", "gone"]), "status"),
        (lambda s: s.background_tasks.get(""), "task_id"),
        (lambda s: s.channels.save_installation({"id": "i", "platform": "slack"}), "installation"),
        (lambda s: s.channels.save_installation(
            {"id": "i", "platform": "slack", "agentId": "a", "status": "ready"}), "installation"),
        (lambda s: s.channels.get_installation_by_agent("", "a"), "platform"),
        (lambda s: s.channels.save_config({"data": {}}), "config"),
    ],
)  # fmt: skip
async def test_bad_input_fails_before_any_call(call: Any, field: str) -> None:
    await refused_offline(call, field)


def installation(uid: str, n: int, **extra: Any) -> dict[str, Any]:
    return {
        "id": f"inst{n}-{uid}",
        "platform": f"slack-{uid}",
        "agentId": f"agent-{uid}",
        "status": "active",
        "webhookId": f"hook{n}-{uid}",
        "data": {"token": f"xoxb-{n}", "team": {"id": "T1"}},
        **extra,
    }


async def test_installations_and_configs(any_store: ConvexStore, uid: str) -> None:
    channels = any_store.channels
    first = await channels.save_installation(installation(uid, 0, status="error"))
    await anyio.sleep(0.01)
    await channels.save_installation(installation(uid, 1, status="pending"))
    await anyio.sleep(0.01)
    active = await channels.save_installation(installation(uid, 2))
    assert await channels.get_installation(first.id) == first
    assert first.data == {"token": "xoxb-0", "team": {"id": "T1"}}
    assert (await channels.get_installation_by_agent(f"slack-{uid}", f"agent-{uid}")) == active
    assert (await channels.get_installation_by_webhook_id(f"hook1-{uid}")).id == f"inst1-{uid}"  # type: ignore[union-attr]
    assert await channels.get_installation_by_webhook_id(f"nohook-{uid}") is None
    listed = await channels.list_installations(f"slack-{uid}")
    assert [i.id for i in listed] == [f"inst{n}-{uid}" for n in (2, 1, 0)]

    again = await channels.save_installation({**installation(uid, 0), "status": "active"})
    assert again.created_at == first.created_at and again.updated_at > first.updated_at
    with pytest.raises(ValidationError, match=f"inst1-{uid}") as refused:
        await channels.save_installation(installation(uid, 3, webhookId=f"hook1-{uid}"))
    assert refused.value.field == "installation.webhook_id"
    assert await channels.get_installation(f"inst3-{uid}") is None  # nothing written

    await channels.delete_installation(first.id)
    assert await channels.get_installation(first.id) is None

    config = await channels.save_config(
        {"platform": f"slack-{uid}", "data": {"signingSecret": "s"}, "updatedAt": T0}
    )
    assert await channels.get_config(f"slack-{uid}") == config
    await channels.delete_config(f"slack-{uid}")
    assert await channels.get_config(f"slack-{uid}") is None


async def test_typescript_and_python_share_tasks_and_channels(
    any_deployment: Deployment, uid: str
) -> None:
    theirs = {**task(uid, 1), "createdAt": date("2026-11-23T09:00:01.000Z"), "retryCount": 0,
              "maxRetries": 2, "timeoutMs": 1000}  # fmt: skip
    ts_install = {**installation(uid, 9), "createdAt": date("2026-11-23T09:00:00.000Z")}
    results = run_ts_client(
        any_deployment,
        [
            {"domain": "backgroundTasks", "spread": True, "method": "createTask", "args": [theirs]},
            {"domain": "channels", "spread": True, "method": "saveInstallation",
             "args": [ts_install]},
        ],
    )  # fmt: skip
    assert all("error" not in r for r in results), results
    async with ConvexStore(any_deployment.url, any_deployment.admin_key) as store:
        got = await store.background_tasks.get(f"task001-{uid}")
        assert got is not None and got.max_retries == 2 and got.args == theirs["args"]
        hooked = await store.channels.get_installation_by_webhook_id(f"hook9-{uid}")
        assert hooked is not None and hooked.data == ts_install["data"]

        await store.background_tasks.create(task(uid, 2, status="running", maxRetries=1))
        await store.channels.save_config({"platform": f"discord-{uid}", "data": {"k": 1}})
    tasks = {"spread": True, "domain": "backgroundTasks"}
    read, count, config = run_ts_client(
        any_deployment,
        [
            {**tasks, "method": "getTask", "args": [f"task002-{uid}"]},
            {**tasks, "method": "getRunningCountByAgent", "args": [f"agent0-{uid}"]},
            {"spread": True, "domain": "channels", "method": "getConfig",
             "args": [f"discord-{uid}"]},
        ],
    )  # fmt: skip
    assert read["result"]["status"] == "running" and read["result"]["maxRetries"] == 1, read
    assert read["result"]["args"] == {"q": 2, "$schema": "kept"}
    assert count["result"] == 1
    assert config["result"]["data"] == {"k": 1}
