"""Slow and dead servers: every call ends by its request timeout and the event loop stays free.

The store talks to a real deployment through a FaultProxy (tests/reliability/faults.py) that is
switched to misbehave after the store has warmed up (handler probed, connections pooled):

- blackhole: the deployment accepts connections but never answers;
- stall: the deployment runs the call, the client gets the first bytes of the answer only;
- trickle: the answer arrives one byte every 50 ms, so no socket read ever times out;
- reset: connections are reset as soon as they are accepted;
- and the deployment itself made slower than the timeout (``/_local/delay``).

While calls wait, a heartbeat task ticks every 10 ms; its longest gap shows whether anything
blocked the loop (a blocking client would stall it for the whole timeout).
"""

from __future__ import annotations

import logging
import statistics
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timezone
from typing import Any

import anyio
import pytest
import requests

from convex_mastra import (
    ConvexStore,
    DeploymentUnavailable,
    LocalDeployment,
    RequestTimeoutError,
    RetryPolicy,
)
from convex_mastra._transport import Transport
from tests.reliability.conftest import Results, SecretAudit, scaled, thread_record
from tests.reliability.faults import FaultProxy, Heartbeat

TIMEOUT = 1.5
CALLS = scaled(40, 400)
T0 = datetime(2026, 4, 1, tzinfo=timezone.utc)


@pytest.fixture
def proxy(deployment: LocalDeployment) -> AsyncIterator[FaultProxy]:
    with FaultProxy(deployment.url) as fault:
        yield fault  # type: ignore[misc]


async def _warm_store(
    url: str, key: str, audit: SecretAudit, *, max_concurrency: int = 8
) -> ConvexStore:
    store = ConvexStore(url, key, request_timeout=TIMEOUT, max_concurrency=max_concurrency)
    audit.repr_of(store)
    await store.handler_info()
    await store.threads.save(thread_record("slow-thread", "slow-r", T0))
    return store


def _calls(store: ConvexStore, n: int) -> list[Callable[[], Awaitable[Any]]]:
    """A mix of reads, multi-call listings and writes."""
    kinds: list[Callable[[int], Awaitable[Any]]] = [
        lambda i: store.threads.get("slow-thread"),
        lambda i: store.threads.list(resource_id="slow-r"),
        lambda i: store.resources.update("slow-r", working_memory=f"w{i}"),
        lambda i: store.messages.save(
            [
                {
                    "id": f"slow-m{i}",
                    "thread_id": "slow-thread",
                    "resource_id": "slow-r",
                    "role": "user",
                    "created_at": T0,
                    "content": {"format": 2, "parts": [{"type": "text", "text": "hi"}]},
                }
            ]
        ),
    ]
    return [lambda i=i: kinds[i % len(kinds)](i) for i in range(n)]  # type: ignore[misc]


async def _all_time_out(
    calls: list[Callable[[], Awaitable[Any]]], audit: SecretAudit
) -> tuple[list[float], Heartbeat]:
    """Run ``calls`` concurrently beside a heartbeat; each must end in RequestTimeoutError."""
    heartbeat = Heartbeat()
    elapsed: list[float] = []
    timeouts: list[RequestTimeoutError] = []
    others: list[BaseException] = []

    async def one(call: Callable[[], Awaitable[Any]]) -> None:
        started = time.monotonic()
        try:
            await call()
        except RequestTimeoutError as exc:
            timeouts.append(exc)  # audited below: formatting tracebacks here would lag the loop
            elapsed.append(time.monotonic() - started)
        except BaseException as exc:  # reported below, with the rest
            others.append(exc)

    async with anyio.create_task_group() as tg:
        tg.start_soon(heartbeat.run)
        async with anyio.create_task_group() as calls_group:
            for call in calls:
                calls_group.start_soon(one, call)
        heartbeat.stop()
    for exc in timeouts:
        audit.exception(exc)
    assert others == [], f"calls that did not time out: {others[:3]}"
    return elapsed, heartbeat


async def test_a_server_that_never_answers(
    proxy: FaultProxy, deployment: LocalDeployment, results: Results, audit: SecretAudit
) -> None:
    store = await _warm_store(proxy.url, deployment.admin_key, audit)
    try:
        proxy.mode = "blackhole"
        started = time.monotonic()
        elapsed, heartbeat = await _all_time_out(_calls(store, CALLS), audit)
        wall = time.monotonic() - started
        assert len(elapsed) == CALLS
        # Each call ends at its timeout, including those that queued for a concurrency slot:
        # typically within a few ms of it (the worker's own socket timeout would be a second
        # later), and none hangs (hundreds of calls timing out at once take a moment to wake).
        assert min(elapsed) >= TIMEOUT * 0.95
        assert statistics.median(elapsed) < TIMEOUT + 0.5
        assert max(elapsed) < TIMEOUT * 2 + 1
        # The loop kept running: no gap anywhere near the timeout, and ticks all along.
        assert heartbeat.worst_gap < TIMEOUT / 3
        assert heartbeat.ticks >= wall / heartbeat.interval / 4

        # Once the server answers again, the same store works (after the abandoned worker
        # threads have given their concurrency slots back: their sockets time out too).
        proxy.mode = "pass"
        await anyio.sleep(1.5)
        assert (await store.threads.get("slow-thread")) is not None
        await store.resources.update("slow-r", working_memory="back")
    finally:
        await store.close()
    results.record(
        "slow_dead",
        never_answers_calls=CALLS,
        never_answers_timeouts=len(elapsed),
        never_answers_fastest_ms=round(min(elapsed) * 1000),
        never_answers_median_ms=round(statistics.median(elapsed) * 1000),
        never_answers_slowest_ms=round(max(elapsed) * 1000),
        request_timeout_ms=int(TIMEOUT * 1000),
        heartbeat_ticks=heartbeat.ticks,
        heartbeat_worst_gap_ms=round(heartbeat.worst_gap_ms, 1),
        max_concurrency=8,
    )


async def test_an_answer_that_stalls_or_trickles(
    proxy: FaultProxy, deployment: LocalDeployment, results: Results, audit: SecretAudit
) -> None:
    store = await _warm_store(proxy.url, deployment.admin_key, audit)
    http = requests.Session()
    headers = {"Authorization": f"Convex {deployment.admin_key}"}

    def calls_since(seq: int) -> list[dict[str, Any]]:
        reply = http.get(f"{deployment.url}/_local/calls?since={seq}", headers=headers, timeout=30)
        calls: list[dict[str, Any]] = reply.json()["calls"]
        return calls

    try:
        figures: dict[str, int] = {}
        for mode in ("stall", "trickle"):
            proxy.mode = mode  # type: ignore[assignment]
            seq = http.get(
                f"{deployment.url}/_local/calls?since=1000000000", headers=headers, timeout=30
            ).json()["nextSeq"]
            started = time.monotonic()
            with audit.raises(RequestTimeoutError, match="may or may not have been applied"):
                await store.resources.update(f"stalled-{mode}", working_memory=mode)
            took = time.monotonic() - started
            assert TIMEOUT * 0.95 <= took < TIMEOUT + 1.0
            # The deployment ran the write once; the client did not send it again.
            updates = [c for c in calls_since(seq) if c.get("op") == "updateResource"]
            assert len(updates) == 1
            proxy.mode = "pass"
            await anyio.sleep(1.2)  # the abandoned worker's socket times out, its slot is back
            stored = await store.resources.get(f"stalled-{mode}")
            assert stored is not None and stored.working_memory == mode
            figures[f"{mode}_elapsed_ms"] = round(took * 1000)
            figures[f"{mode}_writes_applied_once"] = len(updates)
    finally:
        await store.close()
        http.close()
    results.record("slow_dead", **figures)


async def test_connections_reset_on_accept(
    proxy: FaultProxy,
    deployment: LocalDeployment,
    results: Results,
    audit: SecretAudit,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Fresh clients each time: a pooled keep-alive connection would never meet the reset.
    caplog.set_level(logging.DEBUG, logger="convex_mastra.transport")
    proxy.mode = "reset"
    retry = RetryPolicy(attempts=4, base_delay=0.01, max_delay=0.05)
    async with ConvexStore(
        proxy.url, deployment.admin_key, request_timeout=10, retry=retry
    ) as store:
        before = proxy.accepted
        started = time.monotonic()
        with audit.raises(DeploymentUnavailable):
            await store.handler_info()  # the handler probe only reads: resent
        read_took = time.monotonic() - started
        read_attempts = proxy.accepted - before

    transport = Transport(
        proxy.url, admin_key=deployment.admin_key, request_timeout=10, retry=retry
    )
    mark = len(caplog.records)
    before = proxy.accepted
    started = time.monotonic()
    with audit.raises(DeploymentUnavailable):
        # A write that may have reached the server is never sent twice.
        await transport.mutation(
            "mastra/storage:handle",
            {
                "op": "updateResource",
                "tableName": "mastra_resources",
                "resourceId": "reset-r",
                "workingMemory": "x",
                "createdAt": "2026-04-01T00:00:00.000Z",
                "updatedAt": "2026-04-01T00:00:00.000Z",
            },
        )
    write_took = time.monotonic() - started
    write_attempts = proxy.accepted - before
    await transport.aclose()

    assert read_attempts == retry.attempts
    # A reset can land before the request is written (the send fails: provably not sent, so
    # resending is safe) or after (ambiguous: never resent). Which one happens is a race, so
    # the rule checked is: every resend of the write followed a failure to send.
    resends = [
        r.getMessage() for r in caplog.records[mark:] if r.getMessage().startswith("retrying")
    ]
    assert len(resends) == write_attempts - 1
    assert all("could not connect" in message for message in resends), resends
    assert read_took < 5 and write_took < 5  # fast failures, far inside the 10 s timeout
    results.record(
        "slow_dead",
        reset_read_attempts=read_attempts,
        reset_write_attempts=write_attempts,
        reset_read_failed_ms=round(read_took * 1000),
        reset_write_failed_ms=round(write_took * 1000),
    )


async def test_a_deployment_slower_than_the_timeout(
    deployment: LocalDeployment, results: Results, audit: SecretAudit
) -> None:
    headers = {"Authorization": f"Convex {deployment.admin_key}"}

    def delay(ms: float) -> None:
        reply = requests.post(
            f"{deployment.url}/_local/delay", json={"ms": ms}, headers=headers, timeout=30
        )
        reply.raise_for_status()

    async with ConvexStore(deployment.url, deployment.admin_key, request_timeout=TIMEOUT) as store:
        await store.handler_info()
        heartbeat = Heartbeat()
        delay(TIMEOUT * 2000)
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(heartbeat.run)
                started = time.monotonic()
                with audit.raises(RequestTimeoutError):
                    await store.resources.update("slow-deployment", working_memory="late")
                took = time.monotonic() - started
                heartbeat.stop()
        finally:
            delay(0)
        # The write committed before the (delayed) answer: honest "may have been applied".
        await anyio.sleep(TIMEOUT * 2 - took + 0.5)
        stored = await store.resources.get("slow-deployment")
        assert stored is not None and stored.working_memory == "late"
    assert TIMEOUT * 0.95 <= took < TIMEOUT + 1.0
    assert heartbeat.worst_gap < TIMEOUT / 3
    results.record(
        "slow_dead",
        slow_deployment_delay_ms=int(TIMEOUT * 2000),
        slow_deployment_elapsed_ms=round(took * 1000),
        slow_deployment_heartbeat_worst_gap_ms=round(heartbeat.worst_gap_ms, 1),
    )
