"""Event-loop lag of three ways to call Convex from asyncio, on one local deployment.

    python -m tests.benchmarks.loop_lag [--calls 64] [--delay-ms 20]

The full suite (``python -m tests.benchmarks``, docs/benchmarks.md) measures the same lag, with
the same probe, during its throughput runs; this script adds the two naive ways for comparison.

1. naive: ``ConvexHttpClient.mutation`` called straight from a coroutine (blocks the loop);
2. naive-thread: the same client in ``anyio.to_thread.run_sync`` (a new connection per call,
   no timeout, shares the default 40-thread pool);
3. convex-mastra: ``Transport.mutation`` (pooled keep-alive sessions, own limiter, fail_after).

The deployment delays every response by ``--delay-ms`` to model a cloud round trip. The
WebSocket ``ConvexClient`` is not measured here because the local deployment speaks only the HTTP
API; it holds the GIL while it waits (see docs/architecture.md), which is worse than case 1.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Awaitable, Callable

import anyio
from convex.http_client import ConvexHttpClient

from convex_mastra import LocalDeployment
from convex_mastra._transport import Transport

from .harness import lag_probe

PATH = "mastra/storage:handle"
ARGS = {"op": "load", "tableName": "mastra_threads", "keys": {"id": "missing"}}


async def measure(calls: int, one: Callable[[], Awaitable[object]]) -> tuple[float, float, int]:
    """Run ``calls`` concurrent calls; return wall ms, worst loop lag ms, probe ticks."""
    async with lag_probe() as lags:
        started = time.perf_counter()
        async with anyio.create_task_group() as work:
            for _ in range(calls):
                work.start_soon(one)
        wall = time.perf_counter() - started
    return wall * 1000, max(lags), len(lags)


async def main(calls: int, delay_ms: float) -> None:
    async with LocalDeployment(response_delay_ms=delay_ms) as dep:
        client = ConvexHttpClient(dep.url)
        client.set_admin_auth(dep.admin_key)
        transport = Transport(dep.url, admin_key=dep.admin_key, max_concurrency=calls)

        async def naive() -> object:
            return client.mutation(PATH, ARGS)

        async def naive_thread() -> object:
            return await anyio.to_thread.run_sync(client.mutation, PATH, ARGS)

        async def ours() -> object:
            return await transport.mutation(PATH, ARGS)

        print(f"{calls} concurrent calls, {delay_ms:g} ms response delay")
        print(f"{'client':<16}{'wall ms':>10}{'worst lag ms':>14}{'probe ticks':>13}")
        for name, fn in (("naive", naive), ("naive-thread", naive_thread), ("convex-mastra", ours)):
            await measure(calls, fn)  # warm up: threads and connections exist for all
            wall, lag, ticks = await measure(calls, fn)
            print(f"{name:<16}{wall:>10.0f}{lag:>14.1f}{ticks:>13}")
        await transport.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=64)
    parser.add_argument("--delay-ms", type=float, default=20)
    ns = parser.parse_args()
    anyio.run(main, ns.calls, ns.delay_ms)
