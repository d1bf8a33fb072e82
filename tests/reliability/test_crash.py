"""Crash: the deployment is killed with SIGKILL in the middle of a write load, then restarted.

32 tasks share one store and 1,000 ``messages.save`` calls (batches of 1 to 3 messages over 8
threads). Once half of them are acknowledged the server process gets SIGKILL; while it is
down, probe calls must fail fast with DeploymentUnavailable; then it is restarted on the same data
directory and port and the same store object carries on. Afterwards:

- every save that returned success is present, message for message;
- every save that failed is all-or-nothing (it may have committed before the kill);
- no call hung: none ended in a timeout, and failures during the outage came well inside it;
- the failed saves, sent again through the same store, succeed.
"""

from __future__ import annotations

import time
from collections import deque
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import anyio

from convex_mastra import (
    ConvexStore,
    DeploymentUnavailable,
    LocalDeployment,
    Message,
    RequestTimeoutError,
)
from tests.reliability.conftest import Results, SecretAudit, scaled, thread_record

SAVES = scaled(1000, 3000)
KILLS = scaled(1, 3)
TASKS = 32
THREADS = 8
TIMEOUT = 10.0
OUTAGE_PROBES = 20
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)


def planned(i: int) -> list[dict[str, Any]]:
    """Save number ``i``: 1 to 3 messages in thread ``i % 8``."""
    return [
        {
            "id": f"m{i}-{j}",
            "thread_id": f"t{i % THREADS}",
            "resource_id": "crash-resource",
            "role": "user" if j % 2 == 0 else "assistant",
            "created_at": T0 + timedelta(milliseconds=10 * i + j),
            "content": {"format": 2, "parts": [{"type": "text", "text": f"save {i} part {j}"}]},
        }
        for j in range(1 + i % 3)
    ]


def same_message(stored: Message, wanted: dict[str, Any]) -> bool:
    return (
        stored.thread_id == wanted["thread_id"]
        and stored.role == wanted["role"]
        and stored.created_at == wanted["created_at"]
        and stored.content.parts == wanted["content"]["parts"]
    )


async def test_sigkill_mid_run_loses_nothing_acknowledged(
    tmp_path: Path, results: Results, audit: SecretAudit
) -> None:
    local = LocalDeployment(data_dir=tmp_path / "data")
    await anyio.to_thread.run_sync(local.start)
    audit.add_deployment(local)
    try:
        async with ConvexStore(
            local.url, local.admin_key, request_timeout=TIMEOUT, max_concurrency=TASKS
        ) as store:
            audit.repr_of(store, local)
            for t in range(THREADS):
                await store.threads.save(thread_record(f"t{t}", "crash-resource", T0))
            figures = await _run(store, local, audit)
            # Reading everything back is the check, not the behaviour under test: a store of its
            # own with a long timeout (the emulator reads slowly once tables are big).
            async with ConvexStore(local.url, local.admin_key, request_timeout=600) as reader:
                await _verify(store, reader, figures)
    finally:
        await anyio.to_thread.run_sync(local.stop)
    results.record("crash", **{k: v for k, v in figures.items() if not k.startswith("_")})


async def _run(store: ConvexStore, local: LocalDeployment, audit: SecretAudit) -> dict[str, Any]:
    pending = deque(range(SAVES))
    outcome: dict[int, str] = {}
    after_restart: set[int] = set()
    slowest_failure = 0.0
    state = {"up": True, "acked": 0, "restarts": 0}
    back_up = anyio.Event()
    kill_now = [anyio.Event() for _ in range(KILLS)]
    kill_points = [SAVES * (k + 1) // (KILLS + 1) for k in range(KILLS)]

    async def worker() -> None:
        nonlocal slowest_failure
        while pending:
            i = pending.popleft()
            started_after_restart = state["up"] and state["restarts"] > 0
            started = time.monotonic()
            try:
                await store.messages.save(planned(i))
            except DeploymentUnavailable as exc:
                outcome[i] = "unavailable"
                slowest_failure = max(slowest_failure, time.monotonic() - started)
                audit.exception(exc)
                await back_up.wait()  # a client that backs off until the deployment is back
                continue
            except RequestTimeoutError as exc:  # a hung call: counted, then fails the test
                outcome[i] = "timeout"
                audit.exception(exc)
                continue
            outcome[i] = "ack"
            state["acked"] += 1
            if started_after_restart:
                after_restart.add(i)
            for k, point in enumerate(kill_points):
                if state["acked"] >= point:
                    kill_now[k].set()

    probe_times: list[float] = []

    async def controller() -> None:
        nonlocal back_up
        for k in range(KILLS):
            await kill_now[k].wait()
            if not pending:
                return
            # Workers that fail from now on wait for this event, so it exists before the kill.
            state["up"] = False
            back_up = anyio.Event()
            await anyio.to_thread.run_sync(local.kill)
            # During the outage: reads and writes fail fast with DeploymentUnavailable.
            for n in range(OUTAGE_PROBES):
                started = time.monotonic()
                try:
                    if n % 2:
                        await store.threads.get("t0")
                    else:
                        await store.resources.update("crash-resource", working_memory=f"{n}")
                except DeploymentUnavailable as exc:
                    audit.exception(exc)
                    probe_times.append(time.monotonic() - started)
                else:
                    raise AssertionError("a call succeeded while the deployment was down")
            await anyio.to_thread.run_sync(local.start)  # same data dir, same port
            state["up"] = True
            state["restarts"] += 1
            back_up.set()

    async def workers() -> None:
        async with anyio.create_task_group() as tg:
            for _ in range(TASKS):
                tg.start_soon(worker)
        for event in kill_now:  # a kill point never reached must not leave the controller waiting
            event.set()

    with anyio.fail_after(900):  # a hang fails the test instead of the CI job
        async with anyio.create_task_group() as tg:
            tg.start_soon(controller)
            tg.start_soon(workers)

    counts = {
        kind: sum(1 for o in outcome.values() if o == kind)
        for kind in ("ack", "unavailable", "timeout")
    }
    return {
        "saves_attempted": len(outcome),
        "messages_attempted": sum(1 + i % 3 for i in outcome),
        "tasks": TASKS,
        "kills": KILLS,
        "killed_after_acknowledged": kill_points,
        "acknowledged": counts["ack"],
        "failed_unavailable": counts["unavailable"],
        "timed_out": counts["timeout"],
        "outage_probe_calls": len(probe_times),
        "outage_slowest_failure_ms": round(1000 * max(probe_times, default=0), 1),
        "failed_save_slowest_ms": round(1000 * slowest_failure, 1),
        "request_timeout_ms": int(TIMEOUT * 1000),
        "acknowledged_after_restart": len(after_restart),
        "_outcome": outcome,
        "_probe_times": probe_times,
    }


async def _verify(store: ConvexStore, reader: ConvexStore, figures: dict[str, Any]) -> None:
    outcome: dict[int, str] = figures["_outcome"]
    assert figures["saves_attempted"] == SAVES
    assert figures["timed_out"] == 0, "calls hung until the request timeout"
    assert figures["outage_probe_calls"] == OUTAGE_PROBES * KILLS
    assert max(figures["_probe_times"]) < TIMEOUT / 2, "outage failures were not fast"
    assert figures["failed_unavailable"] > 0, "the kill did not land mid-run"
    assert figures["acknowledged_after_restart"] > 0, "nothing was saved after the restart"

    ids = [m["id"] for i in range(SAVES) for m in planned(i)]
    found: dict[str, Message] = {}
    for start in range(0, len(ids), 1000):
        for message in await reader.messages.get_many(ids[start : start + 1000]):
            found[message.id] = message

    lost, partial, wrong = [], [], []
    applied_unacknowledged = 0
    for i in range(SAVES):
        wanted = planned(i)
        present = [m for m in wanted if m["id"] in found]
        wrong += [m["id"] for m in present if not same_message(found[m["id"]], m)]
        if outcome[i] == "ack" and len(present) != len(wanted):
            lost.append(i)
        if 0 < len(present) < len(wanted):
            partial.append(i)
        if outcome[i] != "ack" and len(present) == len(wanted):
            applied_unacknowledged += 1
    assert lost == [], f"acknowledged saves missing after the restart: {lost[:10]}"
    assert partial == [], f"half-written saves: {partial[:10]}"
    assert wrong == [], f"messages stored with other content: {wrong[:10]}"

    # Nothing else is there: each thread holds exactly the messages found above.
    for t in range(THREADS):
        page = await reader.messages.list(f"t{t}", per_page=0)
        listed = [m async for m in reader.messages.iter(f"t{t}", page_size=500)]
        assert page.total == 0  # per_page=0 lists only includes
        assert sorted(m.id for m in listed) == sorted(
            m for m in found if found[m].thread_id == f"t{t}"
        )

    # The same store, never rebuilt, saves what failed during the outage.
    failed = [i for i, o in outcome.items() if o != "ack"]
    for i in failed:
        await store.messages.save(planned(i))
    total = 0
    for t in range(THREADS):
        total += (await store.messages.list(f"t{t}", per_page=1)).total
    assert total == len(ids)

    figures.update(
        acknowledged_found_after_restart=figures["acknowledged"] - len(lost),
        acknowledged_lost=len(lost),
        failed_but_applied_whole=applied_unacknowledged,
        partially_written=len(partial),
        messages_found_after_restart=len(found),
        resaved_after_restart=len(failed),
        messages_at_end=total,
    )
