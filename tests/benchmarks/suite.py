"""The benchmark run: every scenario of issue 9 on one local deployment, in an order that keeps
the big tables out of the timed runs.

Timed runs (CPU, throughput) come first, on a small thread; the big datasets are bulk-imported
afterwards, and only documents read and round trips are measured on them, so a timed run never
depends on what another left behind. The engine section (the deployment's own cost as a table
grows), the sync section (subscriptions pushed after commits) and the live watchers run last,
each on a deployment of its own.
"""

from __future__ import annotations

import gc
import itertools
import time
import tracemalloc
from dataclasses import dataclass, field
from typing import Any

import anyio

from convex_mastra import ConvexServerCache, ConvexStore, LocalDeployment

from . import client_cpu, engine, live, sync, vectors, ws_clients
from . import scenarios as sc
from .harness import (
    Cost,
    Load,
    Stats,
    closed_loop,
    install_node_client,
    instant_backend,
    median,
    run_node,
)

CONCURRENCY = (1, 8, 32, 128)
DELAY_MS = 20.0
CPU_CALLS = 100
SDK_CALLS = 2000
MEMORY_SIZES = (5_000, 20_000)


@dataclass
class CostRow:
    name: str
    cost: dict[str, Cost]
    """Per client: ours, ts, raw."""
    verdict: dict[str, str] = field(default_factory=dict)
    """Per client, for listings: "right page" or what was wrong with it."""


@dataclass
class LoadRow:
    backend: str
    op: str
    concurrency: int
    runs: dict[str, Load]


@dataclass
class CpuRow:
    op: str
    sdk_us: float
    """This SDK's own work per call (domain, dispatch, encode, decode), network replaced."""
    ours_us: float
    """All of this process's CPU per call against the deployment: SDK + transport."""
    raw_us: float
    ts_us: float
    engine_ms: float
    """Median engine time per call inside the deployment."""


@dataclass
class Results:
    costs: list[CostRow] = field(default_factory=list)
    loads: list[LoadRow] = field(default_factory=list)
    cpu: list[CpuRow] = field(default_factory=list)
    memory: dict[int, tuple[float, float]] = field(default_factory=dict)
    """Messages in the thread -> (peak traced MiB while iterating, seconds)."""
    client_cpu: list[client_cpu.CpuRun] = field(default_factory=list)
    """This process's CPU per call in closed loops against the instant backend."""
    vectors: list[vectors.VectorRow] = field(default_factory=list)
    """Upserts and queries of vector indexes, both clients (a deployment of their own)."""
    engine: engine.EngineResults | None = None
    sync: list[sync.SyncRow] | None = None
    live: live.LiveResults | None = None
    ws_clients: ws_clients.WsResults | None = None
    """websockets and wsproto against one WebSocket server of their own."""
    """The local deployment's cost per call as its table grows (a deployment of its own)."""


_started = time.monotonic()


def step(what: str) -> None:
    print(f"[{time.monotonic() - _started:6.1f} s] {what} ...", flush=True)


def verdict(got: tuple[list[str], int], expected: tuple[list[str], int]) -> str:
    ids, total = got
    want, want_total = expected
    if ids == want and total == want_total:
        return "right page"
    right = len(set(ids) & set(want))
    return f"wrong: {right} of {len(want)} right rows, total {total:,} (true {want_total:,})"


async def run(seconds: float) -> Results:
    install_node_client()
    results = Results()
    async with LocalDeployment() as dep:
        stats = Stats(dep.url, dep.admin_key)
        raw = sc.Raw(dep.url, dep.admin_key)
        # max_concurrency at the highest concurrency measured; the default (16) would cap it.
        async with ConvexStore(dep.url, dep.admin_key, max_concurrency=max(CONCURRENCY)) as store:
            await store.handler_info()  # the one-time probe, so no measured operation pays it
            await store.threads.save(sc.thread_row(sc.THREAD, sc.RESOURCE, sc.T0))
            small = sc.small_ops(store, raw)
            ts = lambda jobs: run_node(dep.url, dep.admin_key, jobs)  # noqa: E731

            step("costs of small operations")
            results.costs += await costs(stats, small, ts, repeat=2)
            step("CPU per operation")
            save1, _, _, get, update = small
            results.cpu = await cpu(store, stats, [save1, get, update], ts)
            step(f"throughput with a {DELAY_MS:g} ms round trip")
            stats.set_delay(DELAY_MS)
            pair = [save1, get]
            results.loads = await loads("local deployment", pair, ts, seconds, dep.pid or 0, stats)
            stats.set_delay(0)
            step(f"throughput against an instant backend, {DELAY_MS:g} ms round trip")
            answers = client_cpu.answers_of(stats)
            results.loads += await instant_loads(answers, seconds)
            step("client CPU per call against the instant backend")
            results.client_cpu = await client_cpu.runs(answers, max(seconds, 2.0))

            step("memory while iterating")
            results.memory = await memory(store, stats)
            stats.import_rows("mastra_threads", sc.big_resource_threads())
            raw.rebuild_counters()  # forced, see there: imports bypass the counters
            step("costs of listings")
            listings = sc.listing_ops(store, raw)
            results.costs += await costs(stats, listings, ts, repeat=1)

            step("clearing 10,000 cache keys, three times")
            async with ConvexServerCache(dep.url, dep.admin_key, key_prefix="bench:ours:") as c:
                await c.get("warm-up")
                results.costs.append(await clear_costs(stats, sc.clear_op(c, raw), ts))

    step("vector indexes: upserts and queries, on a deployment of their own")
    async with LocalDeployment() as vector_dep:
        results.vectors = await vectors.run(vector_dep.url, vector_dep.admin_key)
    step("engine: calls as the table grows to 1,000,000 messages, on a deployment of its own")
    results.engine = await engine.run(seconds=seconds, log=lambda line: print(line, flush=True))
    step("sync: subscriptions pushed after commits, on a deployment of its own")
    results.sync = await sync.run()
    step("live watchers: latency, loop lag and memory, on a deployment of its own")
    results.live = await live.run()
    step("WebSocket clients: websockets and wsproto head to head, on a server of their own")
    results.ws_clients = await ws_clients.run()
    return results


async def costs(stats: Stats, ops: list[sc.Op], ts: Any, *, repeat: int) -> list[CostRow]:
    """Each operation once per client (the last of ``repeat`` runs, so warm), with its verdict."""
    ts_results = ts([{**op.ts, "run": "once"} for op in ops for _ in range(repeat)])
    rows = []
    for i, op in enumerate(ops):
        for _ in range(repeat):
            with stats.window() as ours_calls:
                ours = await op.ours()
        for _ in range(repeat):
            with stats.window() as raw_calls:
                raw = op.raw()
        node = ts_results[(i + 1) * repeat - 1]
        row = CostRow(
            op.name,
            {
                "ours": Cost.of(ours_calls),
                "ts": Cost.from_node(node),
                "raw": Cost.of(raw_calls),
            },
        )
        if op.expected is not None:
            got_ts = (node["result"]["ids"], node["result"]["total"])
            for client, got in (("ours", ours), ("ts", got_ts), ("raw", raw)):
                row.verdict[client] = verdict(got, op.expected)
        rows.append(row)
    return rows


async def clear_costs(stats: Stats, op: sc.Op, ts: Any) -> CostRow:
    """Each client clears its own prefix, seeded just before: one prefix in the table at a time,
    as convex-test's scans would slow the later clears otherwise."""
    cost = {}
    for client in ("ours", "ts", "raw"):
        stats.import_rows("mastra_cache", sc.cache_rows(f"bench:{client}:"))
        if client == "ts":
            cost[client] = Cost.from_node(ts([{**op.ts, "run": "once"}])[0])
            continue
        with stats.window() as calls:
            if client == "ours":
                await op.ours()
            else:
                op.raw()
        cost[client] = Cost.of(calls)
    return CostRow(op.name, cost)


async def cpu(store: ConvexStore, stats: Stats, ops: list[sc.Op], ts: Any) -> list[CpuRow]:
    """CPU time per call of each client, and this SDK's share of it with the network replaced."""
    node = ts([{**op.ts, "run": "cpu", "count": CPU_CALLS} for op in ops])
    rows = []
    for op, ts_result in zip(ops, node, strict=True):
        await op.ours()
        with stats.window() as calls:
            started = time.process_time()
            for _ in range(CPU_CALLS):
                await op.ours()
            ours_us = (time.process_time() - started) / CPU_CALLS * 1e6
        op.raw()
        started = time.process_time()
        for _ in range(CPU_CALLS):
            op.raw()
        raw_us = (time.process_time() - started) / CPU_CALLS * 1e6
        rows.append(
            CpuRow(
                op.name,
                sdk_us=await sdk_cpu(store, op),
                ours_us=ours_us,
                raw_us=raw_us,
                ts_us=float(ts_result["cpuUs"]),
                engine_ms=median([float(c["engineMs"]) for c in calls]),
            )
        )
    return rows


async def sdk_cpu(store: ConvexStore, op: sc.Op) -> float:
    """CPU per call of everything but the transport: the operation runs for real once, and then
    replays its recorded answers while requests are still encoded as for sending.

    Left out is what the transport adds per call: the limiter, the JSON envelope and HTTP
    framing on a kept-alive asyncio connection (the difference to ``ours_us``).
    """
    transport: Any = store._transport
    decode = transport._decode
    answers: list[bytes] = []

    def record(kind: str, path: str, status: int, content: bytes) -> Any:
        answers.append(content)
        return decode(kind, path, status, content)

    transport._decode = record
    try:
        await op.ours()
    finally:
        del transport._decode
    replies = itertools.cycle(answers)

    async def attempt(kind: str, path: str, body: bytes, limit: float | None, loop: Any) -> Any:
        # The request was encoded by the caller (_with_retries), as for sending.
        return decode(kind, path, 200, next(replies))

    transport._attempt = attempt
    try:
        started = time.process_time()
        for _ in range(SDK_CALLS):
            await op.ours()
        return (time.process_time() - started) / SDK_CALLS * 1e6
    finally:
        del transport._attempt


async def loads(
    backend: str,
    ops: list[sc.Op],
    ts: Any,
    seconds: float,
    server_pid: int,
    stats: Stats | None = None,
) -> list[LoadRow]:
    """Each op at each concurrency, by each client, in closed loops of ``seconds``."""
    rows = []
    for op in ops:
        jobs = [{**op.ts, "run": "load", "concurrency": c, "seconds": seconds} for c in CONCURRENCY]
        for c, ts_result in zip(CONCURRENCY, ts(jobs), strict=True):
            limiter = anyio.CapacityLimiter(c)

            async def raw_call(op: sc.Op = op, limiter: anyio.CapacityLimiter = limiter) -> Any:
                return await anyio.to_thread.run_sync(op.raw, limiter=limiter)

            since = stats.next_seq() if stats else 0
            ours = await closed_loop(op.ours, c, seconds, server_pid)
            if stats:
                engine = [float(x["engineMs"]) for x in stats.calls_since(since)]
                ours.extra["engine_ms"] = median(engine)
            raw = await closed_loop(raw_call, c, seconds, server_pid)
            print(f"  {backend}: {op.name} at {c}: {ours.ops_per_s:,.0f} ops/s", flush=True)
            runs = {"ours": ours, "ts": Load.from_node(ts_result), "raw": raw}
            rows.append(LoadRow(backend, op.name, c, runs))
    return rows


async def instant_loads(answers: dict[str, str], seconds: float) -> list[LoadRow]:
    """The same runs against a backend that answers at once after the same delay: what each
    client reaches when the emulator is not the limit."""
    key = "instant|benchmark"
    with instant_backend(answers, DELAY_MS) as (url, pid):
        async with ConvexStore(url, key, max_concurrency=max(CONCURRENCY)) as store:
            save1, _, _, get, _ = sc.small_ops(store, sc.Raw(url, key))
            ts = lambda jobs: run_node(url, key, jobs)  # noqa: E731
            return await loads("instant backend", [save1, get], ts, seconds, pid)


async def memory(store: ConvexStore, stats: Stats) -> dict[int, tuple[float, float]]:
    """Peak Python memory while iterating the whole big thread, as it grows 5,000 -> 20,000."""
    stats.import_rows(
        "mastra_threads", [sc.thread_row(sc.BIG_THREAD, sc.BIG_THREAD_RESOURCE, sc.T0)]
    )
    out: dict[int, tuple[float, float]] = {}
    have = 0
    for size in MEMORY_SIZES:
        stats.import_rows("mastra_messages", sc.big_messages(have, size))
        have = size
        gc.collect()
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        started = time.perf_counter()
        count = 0
        async for _ in store.messages.iter(sc.BIG_THREAD, page_size=1000):
            count += 1
        elapsed = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1] - base
        tracemalloc.stop()
        assert count == size, (count, size)
        out[size] = (peak / 2**20, elapsed)
    return out
