"""What every benchmark scenario needs: the deployment's own stats, the Node driver, a lag probe.

Costs come from the local deployment's per-call stats (``/_local/calls``), never from timing its
engine: an emulator's engine time is not Convex's, so documents read and round trips are the
honest measure. Time is measured only on the client side, against a fixed response delay.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import orjson

from convex_mastra.local import find_node
from convex_mastra.local._runtime import _locked
from tests.conftest import RawHttp

NODE_DIR = Path(__file__).parent / "node"


@dataclass
class Cost:
    """What one logical operation cost the deployment."""

    calls: int
    read: int
    written: int
    engine_ms: float = 0.0

    @classmethod
    def of(cls, calls: list[dict[str, Any]]) -> Cost:
        return cls(
            calls=len(calls),
            read=sum(int(c["documentsRead"]) for c in calls),
            written=sum(int(c["documentsWritten"]) for c in calls),
            engine_ms=sum(float(c["engineMs"]) for c in calls),
        )

    @classmethod
    def from_node(cls, result: dict[str, Any]) -> Cost:
        """From bench.mjs's "once" result (the sums of its Convex-Mastra-Stats headers)."""
        return cls(result["calls"], result["documentsRead"], result["documentsWritten"])


class Stats(RawHttp):
    """The deployment's per-call counters and its response delay."""

    @contextmanager
    def window(self) -> Iterator[list[dict[str, Any]]]:
        """Collect the calls made inside the ``with`` block (the caller runs nothing else)."""
        calls: list[dict[str, Any]] = []
        since = self.next_seq()
        yield calls
        calls.extend(self.calls_since(since))

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Convex {self.admin_key}", "Content-Type": "application/json"}

    def set_delay(self, ms: float) -> None:
        response = self.session.post(
            f"{self.url}/_local/delay",
            data=orjson.dumps({"ms": ms}),
            headers=self.headers,
            timeout=30,
        )
        response.raise_for_status()

    def import_rows(self, table: str, rows: list[dict[str, Any]]) -> None:
        """Seed rows without running functions: the fast bulk path (8,000 per request)."""
        for start in range(0, len(rows), 8000):
            response = self.session.post(
                f"{self.url}/_local/import",
                data=orjson.dumps({"table": table, "documents": rows[start : start + 8000]}),
                headers=self.headers,
                timeout=300,
            )
            response.raise_for_status()


def install_node_client() -> None:
    """``npm ci`` the suite's own lockfile of @mastra/convex once."""
    marker = NODE_DIR / "node_modules" / ".convex-mastra-installed"
    if marker.is_file():
        return
    with _locked(NODE_DIR / ".install.lock"):
        if not marker.is_file():
            subprocess.run(
                [*find_node().npm_cli, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                cwd=NODE_DIR,
                check=True,
            )
            marker.write_text("ok")


def run_node(
    url: str, admin_key: str, jobs: list[dict[str, Any]], *, allow_errors: bool = False
) -> list[dict[str, Any]]:
    """Run jobs through @mastra/convex's TypeScript client (node/bench.mjs); raise when a job
    failed, unless ``allow_errors`` (its result is then ``{"error": message}``)."""
    proc = subprocess.run(
        [str(find_node().node), "bench.mjs", url],
        input=orjson.dumps(jobs),
        capture_output=True,
        cwd=NODE_DIR,
        env={**os.environ, "CONVEX_ADMIN_KEY": admin_key},
        timeout=1800,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"bench.mjs failed: {proc.stderr.decode(errors='replace')[-2000:]}")
    results: list[dict[str, Any]] = orjson.loads(proc.stdout)
    for job, result in zip(jobs, results, strict=True):
        if "error" in result and not allow_errors:
            raise RuntimeError(f"bench.mjs job {job.get('method')} failed: {result['error']}")
    return results


@contextmanager
def instant_backend(answers: dict[str, str], delay_ms: float) -> Iterator[tuple[str, int]]:
    """An HTTP server that answers each op with its recorded answer after ``delay_ms``
    (node/echo.mjs); yields its URL and process id."""
    proc = subprocess.Popen(
        [str(find_node().node), "echo.mjs", str(delay_ms)],
        cwd=NODE_DIR,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        proc.stdin.write(orjson.dumps(answers))
        proc.stdin.close()
        yield proc.stdout.readline().decode().strip(), proc.pid
    finally:
        proc.terminate()
        proc.wait()


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile (0 for no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered)) - 1))]


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of another process, from /proc (Linux); 0 elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> float:
    """CPU-seconds all cores of the machine have been busy (not idle), from /proc/stat."""
    try:
        ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except OSError:
        return 0.0
    idle = ticks[3] + ticks[4]  # idle, iowait
    return (sum(ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK")


@dataclass
class Load:
    """One closed-loop run: every latency, the wall time and how the event loop fared."""

    latencies_ms: list[float]
    seconds: float
    lag_max_ms: float
    lag_p99_ms: float
    client_cpu: float = 0.0
    """Client process CPU seconds per wall second (Python runs only)."""
    server_cpu: float = 0.0
    """Backend process CPU seconds per wall second: near 1.0 it is saturated (one thread)."""
    machine_cpu: float = 0.0
    """Busy CPU-seconds of the whole machine per wall second (up to the number of cores)."""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ops_per_s(self) -> float:
        return len(self.latencies_ms) / self.seconds

    @classmethod
    def from_node(cls, result: dict[str, Any]) -> Load:
        return cls(
            latencies_ms=list(result["latenciesMs"]),
            seconds=float(result["seconds"]),
            lag_max_ms=float(result["lagMaxMs"]),
            lag_p99_ms=float(result["lagP99Ms"]),
        )


@asynccontextmanager
async def lag_probe() -> AsyncIterator[list[float]]:
    """Event-loop lag while the block runs: how many ms longer than asked each
    ``anyio.sleep(0.001)`` took, sampled back to back (as docs/architecture.md's table does)."""
    lags: list[float] = []
    done = anyio.Event()

    async def probe() -> None:
        while not done.is_set():
            start = time.perf_counter()
            await anyio.sleep(0.001)
            lags.append((time.perf_counter() - start - 0.001) * 1000)

    async with anyio.create_task_group() as tg:
        tg.start_soon(probe)
        await anyio.sleep(0.01)
        try:
            yield lags
        finally:
            done.set()


async def closed_loop(
    call: Callable[[], Awaitable[object]], concurrency: int, seconds: float, server_pid: int
) -> Load:
    """``concurrency`` tasks call in a loop for ``seconds``; latencies, loop lag and CPU use."""
    async with anyio.create_task_group() as warm:  # every worker's connection exists first
        for _ in range(concurrency):
            warm.start_soon(call)
    latencies: list[float] = []

    async def worker(deadline: float) -> None:
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            await call()
            latencies.append((time.perf_counter() - start) * 1000)

    async with lag_probe() as lags:
        cpu, server = time.process_time(), process_cpu_seconds(server_pid)
        machine = machine_busy_seconds()
        started = time.perf_counter()
        async with anyio.create_task_group() as work:
            for _ in range(concurrency):
                work.start_soon(worker, started + seconds)
        wall = time.perf_counter() - started
        cpu, server = time.process_time() - cpu, process_cpu_seconds(server_pid) - server
        machine = machine_busy_seconds() - machine
    return Load(
        latencies_ms=latencies,
        seconds=wall,
        lag_max_ms=max(lags),
        lag_p99_ms=percentile(lags, 99),
        client_cpu=cpu / wall,
        server_cpu=server / wall,
        machine_cpu=machine / wall,
    )


def median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0
