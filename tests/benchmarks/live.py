"""Live watchers (``store.messages.watch``) on the local deployment: latency, loop lag, memory.

    python -m tests.benchmarks.live [--updates 200]

On a deployment of its own (our functions). Three runs, each with one ConvexStore:

1. Latency with 100 watchers: 99 watch threads of their own; the measured one watches the
   thread that ``updates`` saves go to, one at a time. Latency runs from calling
   ``store.messages.save`` to the watcher yielding the message (so it includes the save's
   round trip and commit); the deployment's own commit -> Transition stamps
   (``POST /_local/sync/latencies``) are reported beside it.
2. 1,000 watchers on one store, each on its own thread: the event loop's worst lag (the
   suite's 1 ms sleep probe) while they start and while 100 saves reach 100 of them; then,
   started again under tracemalloc, the Python memory each watcher holds once all are live.
3. A black-holed deployment (tests/reliability's FaultProxy: accepts, never answers): 100
   watchers started and left waiting for 2 s; the loop's worst lag meanwhile.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import time
import tracemalloc
from dataclasses import dataclass
from typing import Any

import anyio

from convex_mastra import ConvexStore, LocalDeployment, Message
from tests.conftest import RawHttp
from tests.domains.test_threads import message, thread
from tests.reliability.faults import FaultProxy

from .harness import lag_probe, percentile


@dataclass(frozen=True)
class LiveResults:
    watchers: int
    save_to_item_p50_ms: float
    save_to_item_p99_ms: float
    commit_p50_ms: float
    commit_p99_ms: float
    many: int
    many_start_lag_ms: float
    many_update_lag_ms: float
    bytes_per_watcher: float
    blackholed: int
    blackholed_lag_ms: float


async def until(condition: Any, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the watchers did not get there")
        await asyncio.sleep(0.002)


async def until_served(raw: RawHttp, n: int, seconds: float = 60.0) -> None:
    """Wait until the deployment holds ``n`` subscriptions, asking from a worker thread: the
    harness's blocking HTTP call must not count as the watchers' loop lag."""
    deadline = time.monotonic() + seconds
    while len(await asyncio.to_thread(raw.subscriptions)) < n:
        if time.monotonic() > deadline:
            raise TimeoutError("the watchers did not get there")
        await asyncio.sleep(0.002)


async def watch_threads(
    store: ConvexStore, thread_ids: list[str]
) -> tuple[list[list[Message]], list[asyncio.Task[None]]]:
    seen: list[list[Message]] = [[] for _ in thread_ids]

    async def consume(thread_id: str, into: list[Message]) -> None:
        async for m in store.messages.watch(thread_id):
            into.append(m)

    tasks = [asyncio.create_task(consume(t, s)) for t, s in zip(thread_ids, seen, strict=True)]
    return seen, tasks


async def save_threads(store: ConvexStore, prefix: str, n: int) -> list[str]:
    ids = []
    for i in range(n):
        ids.append((await store.threads.save(thread(f"{prefix}-{i}"))).id)
    return ids


async def latency(local: LocalDeployment, n: int, updates: int) -> tuple[float, ...]:
    raw = RawHttp(local.url, local.admin_key)
    async with ConvexStore(local.url, local.admin_key) as store:
        ids = await save_threads(store, "lat", n)
        # The measured watcher stamps each message as it is yielded (no polling in between).
        arrivals: list[float] = []
        arrived = asyncio.Event()

        async def measured() -> None:
            async for _ in store.messages.watch(ids[-1]):
                arrivals.append(time.perf_counter())
                arrived.set()

        _, tasks = await watch_threads(store, ids[:-1])
        tasks.append(asyncio.create_task(measured()))
        await until_served(raw, n)

        async def one(k: int, tag: str) -> float:
            started = time.perf_counter()
            await store.messages.save([message(f"{tag}{k}", ids[-1], k)])
            while len(arrivals) <= k + (0 if tag == "warm" else 20):
                arrived.clear()
                await arrived.wait()
            return (arrivals[-1] - started) * 1000

        for k in range(20):  # warm-up
            await one(k, "warm")
        raw.sync_latencies()
        latencies = [await one(k, "lat") for k in range(updates)]
        stamped = raw.sync_latencies()
        for task in tasks:
            task.cancel()
    return (
        percentile(latencies, 50),
        percentile(latencies, 99),
        percentile(stamped, 50),
        percentile(stamped, 99),
    )


async def many(local: LocalDeployment, n: int) -> tuple[float, float, float]:
    raw = RawHttp(local.url, local.admin_key)
    async with ConvexStore(local.url, local.admin_key) as store:
        ids = await save_threads(store, "many", n)
        async with lag_probe() as start_lags:
            seen, tasks = await watch_threads(store, ids)
            await until_served(raw, n)
        async with lag_probe() as update_lags:
            for k in range(100):
                index = k * (n // 100)
                await store.messages.save([message(f"many{k}", ids[index], k)])
            await until(lambda: sum(len(s) for s in seen) == 100)
        for task in tasks:
            task.cancel()
        await until(lambda: not raw.subscriptions())
        # Memory apart from the lag runs: tracing every allocation slows the loop.
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        _, tasks = await watch_threads(store, ids)
        await until(lambda: len(raw.subscriptions()) >= n)
        gc.collect()
        per_watcher = (tracemalloc.get_traced_memory()[0] - before) / n
        tracemalloc.stop()
        for task in tasks:
            task.cancel()
    return max(start_lags), max(update_lags), per_watcher


async def blackholed(local: LocalDeployment, n: int) -> float:
    with FaultProxy(local.url) as proxy:
        proxy.mode = "blackhole"
        async with ConvexStore(proxy.url, local.admin_key) as store:
            async with lag_probe() as lags:
                _, tasks = await watch_threads(store, [f"t-{i}" for i in range(n)])
                await asyncio.sleep(2.0)
            for task in tasks:
                task.cancel()
    return max(lags)


async def run(updates: int = 200) -> LiveResults:
    async with LocalDeployment() as local:
        lat = await latency(local, 100, updates)
        start_lag, update_lag, per_watcher = await many(local, 1000)
        hole = await blackholed(local, 100)
    return LiveResults(100, *lat, 1000, start_lag, update_lag, per_watcher, 100, hole)


def section(r: LiveResults) -> str:
    return "\n".join(
        [
            "| what | measured |",
            "|---|---|",
            f"| {r.watchers} watchers: save called -> message yielded, p50 / p99 | "
            f"{r.save_to_item_p50_ms:.2f} / {r.save_to_item_p99_ms:.2f} ms |",
            f"| {r.watchers} watchers: commit -> Transition sent (deployment), p50 / p99 | "
            f"{r.commit_p50_ms:.2f} / {r.commit_p99_ms:.2f} ms |",
            f"| {r.many:,} watchers on one store: worst loop lag while they start | "
            f"{r.many_start_lag_ms:.1f} ms |",
            f"| {r.many:,} watchers: worst loop lag while 100 saves reach 100 of them | "
            f"{r.many_update_lag_ms:.1f} ms |",
            f"| {r.many:,} watchers: Python memory per watcher (tracemalloc) | "
            f"{r.bytes_per_watcher:,.0f} bytes |",
            f"| {r.blackholed} watchers on a black-holed deployment: worst loop lag over 2 s | "
            f"{r.blackholed_lag_ms:.1f} ms |",
        ]
    )


def targets(r: LiveResults) -> list[tuple[str, str, bool, str]]:
    return [
        (
            "live watchers, commit -> item, 100 watchers: p50 < 10 ms, p99 < 50 ms",
            f"{r.save_to_item_p50_ms:.2f} / {r.save_to_item_p99_ms:.2f} ms "
            "(from calling save, so the save's round trip is included)",
            r.save_to_item_p50_ms < 10 and r.save_to_item_p99_ms < 50,
            "",
        ),
        (
            "1,000 watchers on one store: worst event-loop lag < 20 ms",
            f"{max(r.many_start_lag_ms, r.many_update_lag_ms):.1f} ms "
            f"({r.bytes_per_watcher:,.0f} bytes per watcher)",
            max(r.many_start_lag_ms, r.many_update_lag_ms) < 20,
            "",
        ),
        (
            "watchers on a black-holed deployment: worst event-loop lag < 20 ms",
            f"{r.blackholed_lag_ms:.1f} ms",
            r.blackholed_lag_ms < 20,
            "",
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks.live")
    parser.add_argument("--updates", type=int, default=200)
    args = parser.parse_args()
    results = anyio.run(run, args.updates)
    print(section(results))
    for what, got, met, _ in targets(results):
        print(f"{'met' if met else 'NOT MET'}: {what}: {got}")


if __name__ == "__main__":
    main()
