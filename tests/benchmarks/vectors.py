"""Vector indexes: upserts and exact queries, this SDK beside @mastra/convex's TypeScript
``ConvexVector``, on one local deployment serving our functions.

    python -m tests.benchmarks.vectors [--count 10000] [--dim 768] [--big 100000]

- Upsert ``count`` vectors of ``dim`` dimensions: calls, request bytes, documents written and
  time. @mastra/convex sends one ``batchInsert`` per ``upsert``, whatever its size; it runs once
  with everything (as an app would call it) and once 500 at a time.
- Query (top 10) an index of ``count`` vectors of ``dim`` dimensions (the one upserted) and
  indexes of 10,000 and ``big`` vectors of 64 dimensions (seeded straight into the table):
  time, calls, documents read and bytes answered. Our handler scores on the server
  (``vectorQuery``); @mastra/convex reads every row back and scores in Node.

The suite (``python -m tests.benchmarks``) runs the same and writes docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import random
import time
from dataclasses import dataclass
from typing import Any

import anyio
import orjson

from convex_mastra import ConvexVector, HttpTransport, LocalDeployment
from convex_mastra._transport import DEFAULT, Kind, Timeout

from .harness import Stats, install_node_client, run_node

TS_CHUNK = 500


@dataclass(frozen=True)
class VectorRow:
    """One measured operation of one client."""

    op: str
    client: str
    seconds: float
    calls: int
    read: int
    written: int
    bytes_sent: int
    bytes_answered: int | None = None
    note: str = ""


class Counting:
    """Wraps a transport: counts the bytes of the arguments sent and of the results answered."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.sent = 0
        self.answered = 0

    @property
    def url(self) -> str:
        return str(self.inner.url)

    @property
    def closed(self) -> bool:
        return bool(self.inner.closed)

    async def call(
        self,
        kind: Kind,
        path: str,
        args: Any,
        *,
        timeout: Timeout = DEFAULT,
        idempotent: bool = False,
    ) -> Any:
        self.sent += len(orjson.dumps(args))
        result = await self.inner.call(kind, path, args, timeout=timeout, idempotent=idempotent)
        self.answered += len(orjson.dumps(result))
        return result

    async def aclose(self) -> None:
        await self.inner.aclose()


def gaussian_rows(count: int, dim: int, seed: int) -> list[list[float]]:
    rnd = random.Random(seed)
    return [[rnd.uniform(-1, 1) for _ in range(dim)] for _ in range(count)]


async def ours(
    stats: Stats, counting: Counting, op: str, call: Any, note: str = ""
) -> tuple[VectorRow, Any]:
    counting.sent = counting.answered = 0
    with stats.window() as calls:
        started = time.perf_counter()
        result = await call()
        seconds = time.perf_counter() - started
    row = VectorRow(
        op,
        "convex-mastra",
        seconds,
        len(calls),
        sum(int(c["documentsRead"]) for c in calls),
        sum(int(c["documentsWritten"]) for c in calls),
        counting.sent,
        counting.answered,
        note,
    )
    return row, result


def theirs(op: str, result: dict[str, Any], note: str = "") -> VectorRow:
    if "error" in result:
        return VectorRow(op, "@mastra/convex", 0, 0, 0, 0, 0, None, f"failed: {result['error']}")
    return VectorRow(
        op,
        "@mastra/convex",
        result["ms"] / 1000,
        result["calls"],
        result["documentsRead"],
        result["documentsWritten"],
        result["bytesSent"],
        result.get("bytesAnswered"),
        note,
    )


async def run(
    url: str, admin_key: str, *, count: int = 10_000, dim: int = 768, big: int = 100_000
) -> list[VectorRow]:
    install_node_client()
    stats = Stats(url, admin_key)
    counting = Counting(HttpTransport(url, admin_key=admin_key, request_timeout=None))
    rows: list[VectorRow] = []

    def ts(jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return run_node(url, admin_key, jobs, allow_errors=True)

    async with ConvexVector(transport=counting) as vectors:
        upserted = f"bench_{dim}"
        await vectors.create_index(upserted, dim)
        data = gaussian_rows(count, dim, 1)
        ids = [f"py-{i}" for i in range(count)]
        row, _ = await ours(
            stats,
            counting,
            f"upsert {count:,} x {dim}",
            lambda: vectors.upsert(upserted, data, ids=ids),
        )
        rows.append(row)
        generate = {"count": count, "dim": dim, "seed": 7}
        one, chunked = ts(
            [
                *(
                    {
                        "vector": {},
                        "method": "createIndex",
                        "args": {"indexName": index, "dimension": dim},
                        "run": "once",
                    }
                    for index in (f"ts_{dim}", f"ts_chunked_{dim}")
                ),
                {
                    "vector": {},
                    "method": "upsert",
                    "args": {"indexName": f"ts_{dim}", "generate": generate},
                    "run": "once",
                },
                {
                    "vector": {},
                    "method": "upsert",
                    "args": {
                        "indexName": f"ts_chunked_{dim}",
                        "generate": generate,
                        "chunk": TS_CHUNK,
                    },
                    "run": "once",
                },
            ]
        )[2:]
        rows.append(theirs(f"upsert {count:,} x {dim}", one, "one upsert call"))
        rows.append(theirs(f"upsert {count:,} x {dim}", chunked, f"{TS_CHUNK} per upsert call"))

        seeded = {}
        for n in (10_000, big):
            name = f"bench_seeded_{n}"
            await vectors.create_index(name, 64)
            rnd = random.Random(n)
            for start in range(0, n, 20_000):
                stats.import_rows(
                    "mastra_vectors",
                    [
                        {
                            "id": f"s{i:06d}",
                            "indexName": name,
                            "embedding": [rnd.uniform(-1, 1) for _ in range(64)],
                            "metadata": {"group": i % 10},
                        }
                        for i in range(start, min(n, start + 20_000))
                    ],
                )
            seeded[name] = (n, 64)

        for name, (n, d) in {upserted: (count, dim), **seeded}.items():
            query = gaussian_rows(1, d, 99)[0]
            op = f"query top 10 of {n:,} x {d}"
            await vectors.query(name, query)  # warm: the index row and the handler probe
            row, _ = await ours(
                stats,
                counting,
                op,
                lambda: vectors.query(name, query),  # noqa: B023
            )
            rows.append(row)
            [result] = ts(
                [
                    {
                        "vector": {},
                        "method": "query",
                        "args": {"indexName": name, "queryVector": query, "topK": 10},
                        "run": "once",
                    }
                ]
            )
            rows.append(theirs(op, result))
    return rows


def section(rows: list[VectorRow]) -> str:
    lines = [
        "| operation | client | time s | calls | documents read | documents written | "
        "bytes sent | bytes answered | note |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        answered = f"{r.bytes_answered:,}" if r.bytes_answered is not None else "n/a"
        lines.append(
            f"| {r.op} | {r.client} | {r.seconds:.2f} | {r.calls:,} | {r.read:,} | "
            f"{r.written:,} | {r.bytes_sent:,} | {answered} | {r.note} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--dim", type=int, default=768)
    parser.add_argument("--big", type=int, default=100_000)
    args = parser.parse_args()

    async def go() -> None:
        async with LocalDeployment() as dep:
            rows = await run(dep.url, dep.admin_key, count=args.count, dim=args.dim, big=args.big)
        print(section(rows))

    anyio.run(go)


if __name__ == "__main__":
    main()
