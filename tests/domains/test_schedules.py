"""store.schedules on our handler and the stock one, and with @mastra/convex's TypeScript client."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from convex_mastra import (
    ConvexStore,
    NotFoundError,
    Schedule,
    ScheduleTrigger,
    StorageOperationError,
)
from convex_mastra.pytest_plugin import Deployment
from tests.domains.conftest import refused_offline
from tests.local.test_ts_client import run_ts_client

T0 = 4_102_444_800_000  # epoch ms, 2100-01-01: never due for docs examples on this deployment
CREATED = 1_700_000_000_000


def schedule(uid: str, n: int = 0, **extra: Any) -> dict[str, Any]:
    return {
        "id": f"s{n}-{uid}",
        "target": {"type": "workflow", "workflowId": f"wf-{uid}", "inputData": {"n": n}},
        "cron": "*/5 * * * *",
        "status": "active",
        "nextFireAt": T0 + n * 1000,
        "createdAt": CREATED + n,
        "updatedAt": CREATED + n,
        **extra,
    }


async def test_create_get_and_refuse_a_second_create(any_store: ConvexStore, uid: str) -> None:
    created = await any_store.schedules.create(
        schedule(uid, metadata={"$schema": "kept", "team": "ops"}, timezone="Europe/Paris")
    )
    got = await any_store.schedules.get(f"s0-{uid}")
    assert got == created
    assert got.target["inputData"] == {"n": 0} and got.metadata == {
        "$schema": "kept",
        "team": "ops",
    }
    assert got.next_fire_at == T0 and isinstance(got.next_fire_at, int)
    assert await any_store.schedules.get(f"missing-{uid}") is None
    with pytest.raises(StorageOperationError, match="already exists"):
        await any_store.schedules.create(schedule(uid, cron="0 * * * *"))
    assert (await any_store.schedules.get(f"s0-{uid}")).cron == "*/5 * * * *"  # type: ignore[union-attr]


async def test_list_filters_and_orders_by_creation(any_store: ConvexStore, uid: str) -> None:
    await any_store.schedules.create(schedule(uid, 2, ownerType="agent", ownerId=f"a-{uid}"))
    await any_store.schedules.create(schedule(uid, 1, status="paused"))
    agent = {"type": "agent", "agentId": f"a-{uid}", "prompt": "check in"}
    await any_store.schedules.create(schedule(uid, 3, target=agent))
    mine = [s for s in await any_store.schedules.list() if s.id.endswith(uid)]
    assert [s.id for s in mine] == [f"s{n}-{uid}" for n in (1, 2, 3)]
    by_workflow = await any_store.schedules.list(workflow_id=f"wf-{uid}")
    assert [s.id for s in by_workflow] == [f"s1-{uid}", f"s2-{uid}"]
    active = await any_store.schedules.list(workflow_id=f"wf-{uid}", status="active")
    assert [s.id for s in active] == [f"s2-{uid}"]
    owned = await any_store.schedules.list(owner_type="agent", owner_id=f"a-{uid}")
    assert [s.id for s in owned] == [f"s2-{uid}"]
    unowned = [s.id for s in await any_store.schedules.list(owner_type=None) if uid in s.id]
    assert unowned == [f"s1-{uid}", f"s3-{uid}"]


async def test_due_lists_active_schedules_at_or_before_now(
    any_store: ConvexStore, uid: str
) -> None:
    for n in range(4):
        await any_store.schedules.create(schedule(uid, n, status="paused" if n == 1 else "active"))
    now = T0 + 2000
    due = [s.id for s in await any_store.schedules.due(now, limit=100) if s.id.endswith(uid)]
    assert due == [f"s0-{uid}", f"s2-{uid}"]  # s1 paused, s3 later
    first = await any_store.schedules.due(T0 - 1)
    assert not [s for s in first if s.id.endswith(uid)]


async def test_exactly_one_of_many_schedulers_claims_a_fire(
    any_store: ConvexStore, uid: str
) -> None:
    await any_store.schedules.create(schedule(uid))
    wins: list[int] = []

    async def claim(n: int) -> None:
        if await any_store.schedules.claim_fire(
            f"s0-{uid}",
            expected_next_fire_at=T0,
            next_fire_at=T0 + 300_000,
            fired_at=T0 + 5,
            run_id=f"run-{n}",
        ):
            wins.append(n)

    async with anyio.create_task_group() as group:
        for n in range(20):
            group.start_soon(claim, n)
    assert len(wins) == 1
    got = await any_store.schedules.get(f"s0-{uid}")
    assert got is not None and got.next_fire_at == T0 + 300_000
    assert got.last_fire_at == T0 + 5 and got.last_run_id == f"run-{wins[0]}"
    assert not await any_store.schedules.claim_fire(
        f"s0-{uid}", expected_next_fire_at=T0, next_fire_at=1, fired_at=1, run_id="late"
    )
    await any_store.schedules.update(f"s0-{uid}", status="paused")
    assert not await any_store.schedules.claim_fire(
        f"s0-{uid}",
        expected_next_fire_at=T0 + 300_000,
        next_fire_at=1,
        fired_at=1,
        run_id="paused",
    )


async def test_update_changes_only_what_is_given(any_store: ConvexStore, uid: str) -> None:
    created = await any_store.schedules.create(schedule(uid, metadata={"a": 1}, timezone="UTC"))
    agent = {"type": "agent", "agentId": "helper", "prompt": "hi"}
    updated = await any_store.schedules.update(
        f"s0-{uid}", cron="0 9 * * *", timezone=None, target=agent, nextFireAt=T0 + 9
    )
    assert updated.cron == "0 9 * * *" and updated.timezone is None
    assert updated.target == agent and updated.next_fire_at == T0 + 9
    assert updated.metadata == {"a": 1} and updated.created_at == created.created_at
    assert updated.updated_at > created.updated_at
    assert await any_store.schedules.get(f"s0-{uid}") == updated
    assert await any_store.schedules.list(workflow_id=f"wf-{uid}") == []  # the target moved
    assert await any_store.schedules.update(f"s0-{uid}") == updated

    with pytest.raises(NotFoundError):
        await any_store.schedules.update(f"missing-{uid}", cron="* * * * *")
    with pytest.raises(NotFoundError):
        await any_store.schedules.update(f"missing-{uid}")


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda s: s.schedules.create({"id": "x", "cron": "*", "target": {}}), "schedule"),
        (lambda s: s.schedules.create({**schedule("u"), "target": {"type": 1}}), "schedule"),
        (lambda s: s.schedules.create({**schedule("u"), "status": "sleeping"}), "schedule"),
        (lambda s: s.schedules.create({**schedule("u"), "nextFireAt": "soon"}), "schedule"),
        (lambda s: s.schedules.update("x", color="red"), "color"),
        (lambda s: s.schedules.update("x", status="gone"), "schedule update"),
        (lambda s: s.schedules.get(""), "schedule_id"),
        (lambda s: s.schedules.due(1.5), "now"),
        (lambda s: s.schedules.due(1, limit=0), "limit"),
        (lambda s: s.schedules.claim_fire("x", expected_next_fire_at=1.0, next_fire_at=2,
                                          fired_at=1, run_id="r"), "expected_next_fire_at"),
        (lambda s: s.schedules.record_trigger({"scheduleId": "x", "outcome": "x"}), "trigger"),
        (lambda s: s.schedules.triggers("x", limit=-1), "limit"),
    ],
)  # fmt: skip
async def test_bad_input_fails_before_any_call(call: Any, field: str) -> None:
    await refused_offline(call, field)


async def test_triggers_newest_first_bounded_and_deleted_with_the_schedule(
    any_store: ConvexStore, uid: str
) -> None:
    await any_store.schedules.create(schedule(uid))
    for n in range(30):
        await any_store.schedules.record_trigger(
            {
                "id": f"fire{n:02d}-{uid}",
                "scheduleId": f"s0-{uid}",
                "runId": None if n == 0 else f"run{n}",
                "scheduledFireAt": T0 + n * 10,
                "actualFireAt": T0 + n * 10 + (5 if n != 7 else -5),  # n 7 and 6 fire apart
                "outcome": "failed" if n == 3 else "published",
                **({"error": "boom", "metadata": {"$k": 1}} if n == 3 else {}),
            }
        )
    newest = await any_store.schedules.triggers(f"s0-{uid}", limit=3)
    assert [t.id for t in newest] == [f"fire{n:02d}-{uid}" for n in (29, 28, 27)]
    window = await any_store.schedules.triggers(
        f"s0-{uid}", from_actual_fire_at=T0 + 25, to_actual_fire_at=T0 + 46
    )
    assert [t.id for t in window] == [f"fire{n:02d}-{uid}" for n in (4, 3, 2)]
    failed = window[1]
    assert failed.outcome == "failed" and failed.error == "boom" and failed.metadata == {"$k": 1}
    assert failed.trigger_kind == "schedule-fire"
    every = [t.id async for t in any_store.schedules.iter_triggers(f"s0-{uid}", page_size=7)]
    assert len(every) == 30 and every[0] == f"fire29-{uid}"
    generated = await any_store.schedules.record_trigger(
        ScheduleTrigger(schedule_id=f"s0-{uid}", scheduled_fire_at=1, actual_fire_at=1,
                        outcome="manual-test", trigger_kind="manual")
    )  # fmt: skip
    assert generated.id and len(await any_store.schedules.triggers(f"s0-{uid}")) == 31

    await any_store.schedules.delete(f"s0-{uid}")
    assert await any_store.schedules.get(f"s0-{uid}") is None
    assert await any_store.schedules.triggers(f"s0-{uid}") == []


async def test_typescript_and_python_read_each_others_schedules(
    any_deployment: Deployment, uid: str
) -> None:
    ts_schedule = {**schedule(uid, 1, metadata={"from": "ts"}), "ownerType": "agent"}
    py_schedule = Schedule.model_validate(schedule(uid, 2, metadata={"from": "py"}))
    ts_trigger = {
        "id": f"ts-fire-{uid}",
        "scheduleId": f"s1-{uid}",
        "runId": "r1",
        "scheduledFireAt": T0,
        "actualFireAt": T0 + 1,
        "outcome": "published",
    }
    results = run_ts_client(
        any_deployment,
        [
            {"domain": "schedules", "method": "createSchedule", "args": ts_schedule},
            {"domain": "schedules", "method": "recordTrigger", "args": ts_trigger},
        ],
    )
    assert all("error" not in r for r in results), results
    async with ConvexStore(any_deployment.url, any_deployment.admin_key) as store:
        theirs = await store.schedules.get(f"s1-{uid}")
        assert theirs is not None and theirs.metadata == {"from": "ts"}
        assert theirs.owner_type == "agent" and theirs.target == ts_schedule["target"]
        [fire] = await store.schedules.triggers(f"s1-{uid}")
        assert fire.run_id == "r1" and fire.trigger_kind == "schedule-fire"

        await store.schedules.create(py_schedule)
        await store.schedules.record_trigger(
            {**ts_trigger, "id": f"py-fire-{uid}", "scheduleId": f"s2-{uid}", "error": "x"}
        )
    spread = {"domain": "schedules", "spread": True}
    got, listed, due, fires = run_ts_client(
        any_deployment,
        [
            {**spread, "method": "getSchedule", "args": [f"s2-{uid}"]},
            {**spread, "method": "listSchedules", "args": [{"workflowId": f"wf-{uid}"}]},
            {**spread, "method": "listDueSchedules", "args": [T0 + 5000, 1000]},
            {**spread, "method": "listTriggers", "args": [f"s2-{uid}"]},
        ],
    )
    mine = py_schedule.model_dump(by_alias=True, exclude_none=True)
    assert got["result"] == mine, got
    assert [s["id"] for s in listed["result"]] == [f"s1-{uid}", f"s2-{uid}"]
    assert {f"s1-{uid}", f"s2-{uid}"} <= {s["id"] for s in due["result"]}
    assert fires["result"][0]["id"] == f"py-fire-{uid}" and fires["result"][0]["error"] == "x"


async def test_a_row_no_mastra_could_read_is_named(store: ConvexStore, uid: str) -> None:
    # Written through the protocol, as another client could write it.
    await store._dispatcher.call(
        "createSchedule",
        "mastra_schedules",
        record={
            "id": f"bad-{uid}", "target": "{}", "cron": "*", "timezone": None, "status": "paused",
            "next_fire_at": T0, "last_fire_at": None, "last_run_id": None,
            "created_at": CREATED, "updated_at": CREATED,
        },
    )  # fmt: skip
    with pytest.raises(StorageOperationError, match=f"bad-{uid}.*target"):
        await store.schedules.get(f"bad-{uid}")
    await store.schedules.delete(f"bad-{uid}")
