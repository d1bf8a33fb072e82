"""The local deployment's sync protocol: how soon a subscription sees a commit.

    python -m tests.benchmarks.sync [--updates 200]

On a deployment of its own serving the local server's test functions (public
``messages:byAuthor``, ``messages:firstByAuthor`` and ``messages:send``). One official
``ConvexClient`` holds the measured subscription (an author's messages); another holds
``n - 1`` idle ones. Idle subscriptions read other authors' ranges (a commit re-runs none of
them) or, in the "shared" rows, the measured author's range (a commit re-runs all of them,
though their answers, the author's first message, stop changing). Each update is an HTTP
mutation sent from a worker thread. Two latencies per update: commit -> Transition sent, as
the deployment stamps it (``POST /_local/sync/latencies``; from the commit applied in memory,
so it includes the wait for the WAL's fsync), and HTTP mutation sent -> new result yielded by
the client's subscription. Memory per subscription: how much the deployment's resident memory
grew while the 999 idle subscriptions were added and answered once, over 999.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
from convex import ConvexClient

from convex_mastra import LocalDeployment
from tests.conftest import RawHttp

from .engine import rss_mib
from .harness import percentile

FIXTURES = Path(__file__).parents[2] / "convex_mastra" / "local" / "server" / "test" / "fixtures"


@dataclass(frozen=True)
class SyncRow:
    subscriptions: int
    shared: bool
    """Whether every idle subscription reads the range each commit writes."""
    commit_p50_ms: float
    commit_p99_ms: float
    p50_ms: float
    p99_ms: float
    rss_mib: float
    bytes_per_subscription: float
    """Resident memory the idle subscriptions added, over their number."""


async def measure(
    local: LocalDeployment, idle: ConvexClient, n: int, updates: int, *, shared: bool = False
) -> SyncRow:
    raw = RawHttp(local.url, local.admin_key)
    consumers = []
    first_results = 0
    all_idle = asyncio.Event()

    async def drain(sub: Any) -> None:
        nonlocal first_results
        first = True
        async for _ in sub:
            if first:
                first, first_results = False, first_results + 1
                if first_results == n - 1:
                    all_idle.set()

    author = f"measured-{n}-{shared}"
    rss_before = rss_mib(local.pid)
    for i in range(n - 1):
        if shared:
            sub = idle.subscribe("messages:firstByAuthor", {"author": author, "k": i})
        else:
            sub = idle.subscribe("messages:byAuthor", {"author": f"idle-{n}-{i}"})
        consumers.append(asyncio.create_task(drain(sub)))
    await all_idle.wait()
    added = (rss_mib(local.pid) - rss_before) * 2**20 / (n - 1)
    client = ConvexClient(local.url)
    arrived: dict[int, float] = {}  # number of messages seen -> when
    changed = asyncio.Event()

    async def watch() -> None:
        async for value in client.subscribe("messages:byAuthor", {"author": author}):
            arrived.setdefault(len(value), time.perf_counter())
            changed.set()

    async def seen(count: int) -> float:
        while count not in arrived:
            changed.clear()
            await changed.wait()
        return arrived[count]

    consumers.append(asyncio.create_task(watch()))
    await seen(0)
    latencies = []
    raw.sync_latencies()
    for k in range(1, updates + 1):
        sent = time.perf_counter()
        args = {"author": author, "body": str(k)}
        await asyncio.to_thread(raw.post, "mutation", "messages:send", args)
        latencies.append((await seen(k) - sent) * 1000)
    # One Transition per update to the measured session (the idle session gets one only for the
    # first message of a shared range).
    stamped = raw.sync_latencies()
    rss = rss_mib(local.pid)
    for consumer in consumers:
        consumer.cancel()
    await asyncio.sleep(0.2)
    return SyncRow(
        n,
        shared,
        percentile(stamped, 50),
        percentile(stamped, 99),
        percentile(latencies, 50),
        percentile(latencies, 99),
        rss,
        added,
    )


async def run(updates: int = 200) -> list[SyncRow]:
    with tempfile.TemporaryDirectory(prefix="convex-mastra-sync-") as tmp:
        functions = Path(tmp) / "functions"
        shutil.copytree(FIXTURES / "functions", functions)
        shutil.copytree(FIXTURES / "fake-lib", functions / "node_modules" / "fake-lib")
        with LocalDeployment(functions_dir=functions) as local:
            rows = []
            for n, shared in ((100, False), (1000, False), (1000, True)):
                # A client per row: the previous row's subscriptions are gone from the server.
                idle = ConvexClient(local.url)
                rows.append(await measure(local, idle, n, updates, shared=shared))
            return rows


def section(rows: list[SyncRow]) -> str:
    lines = [
        "| subscriptions | a commit re-runs | commit -> Transition sent: p50 / p99 ms "
        "| HTTP mutation sent -> result yielded: p50 / p99 ms | deployment resident MiB |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {r.subscriptions:,} | {'all of them' if r.shared else 'the measured one'} "
        f"| {r.commit_p50_ms:.2f} / {r.commit_p99_ms:.2f} | {r.p50_ms:.2f} / {r.p99_ms:.2f} "
        f"| {r.rss_mib:,.0f} |"
        for r in rows
    ]
    big = rows[1]
    lines += [
        "",
        f"Resident memory per subscription: {big.bytes_per_subscription:,.0f} bytes (the "
        f"deployment's growth while {big.subscriptions - 1:,} subscriptions were added and "
        "answered once, over their number).",
    ]
    return "\n".join(lines)


def targets(rows: list[SyncRow]) -> list[tuple[str, str, bool, str]]:
    row = rows[0]
    return [
        (
            "local deployment, commit -> Transition, 100 subscriptions: p50 < 5 ms, p99 < 30 ms",
            f"{row.commit_p50_ms:.2f} / {row.commit_p99_ms:.2f} ms "
            f"({row.p50_ms:.2f} / {row.p99_ms:.2f} ms from sending the HTTP mutation "
            "to the client yielding the result)",
            row.commit_p50_ms < 5 and row.commit_p99_ms < 30,
            "",
        )
    ]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks.sync")
    parser.add_argument("--updates", type=int, default=200)
    args = parser.parse_args()
    rows = anyio.run(run, args.updates)
    print(section(rows))
    for what, got, met, _ in targets(rows):
        print(f"{'met' if met else 'NOT MET'}: {what}: {got}")


if __name__ == "__main__":
    main()
