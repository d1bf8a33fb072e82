"""ConvexVector against a local deployment, on our handler and on the stock one.

Exact search is held to a brute-force top-k computed here, independently, over the same rows;
interop runs @mastra/convex's own TypeScript ConvexVector on the same indexes both ways.
"""

from __future__ import annotations

import math
import random
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import pytest

from convex_mastra import (
    ConvexVector,
    IndexStats,
    NotFoundError,
    QueryResult,
    ValidationError,
)
from convex_mastra._vector_filter import compile_filter
from convex_mastra.pytest_plugin import Deployment
from tests.conftest import RawHttp, import_rows
from tests.local.test_ts_client import run_ts_client


@pytest.fixture
async def vectors(any_deployment: Deployment) -> AsyncIterator[ConvexVector]:
    async with ConvexVector(any_deployment.url, any_deployment.admin_key) as client:
        yield client


def brute_force(
    rows: dict[str, tuple[list[float], dict[str, Any] | None]],
    query: Sequence[float],
    top_k: int,
    metric: str = "cosine",
    where: dict[str, Any] | None = None,
) -> list[tuple[str, float]]:
    """The top-k by an independent formula: fsum, hypot, every row scored, sorted whole."""
    match = compile_filter(where)

    def score(v: list[float]) -> float:
        if metric == "dotproduct":
            return math.fsum(a * b for a, b in zip(query, v, strict=True))
        if metric == "euclidean":
            return 1 / (1 + math.dist(query, v))
        norms = math.hypot(*query) * math.hypot(*v)
        return (
            math.fsum(a * b for a, b in zip(query, v, strict=True)) / norms if norms else math.nan
        )

    scored = [
        (score(vector), rid) for rid, (vector, meta) in rows.items() if match is None or match(meta)
    ]
    ranked = sorted((s, rid) for s, rid in scored if math.isfinite(s))
    ranked.sort(key=lambda pair: (-pair[0], pair[1]))
    return [(rid, s) for s, rid in ranked[:top_k]]


def same_ranking(got: list[QueryResult], want: list[tuple[str, float]]) -> None:
    assert [r.id for r in got] == [rid for rid, _ in want]
    for result, (_, score) in zip(got, want, strict=True):
        assert result.score == pytest.approx(score, rel=1e-9, abs=1e-12)


FILTERS: list[dict[str, Any] | None] = [
    None,
    {"group": 3},
    {"group": {"$in": [1, 2]}, "flag": True},
    {"$or": [{"tag": "a"}, {"weight": {"$gt": 0.9}}]},
    {"metadata": {"tag": {"$ne": "b"}, "weight": {"$gte": 0.2, "$lt": 0.6}}},
    {"$and": [{"flag": False}, {"group": {"$nin": [0, 1, 2]}}]},
    {"tag": {"$eq": "c"}, "group": {"$lte": 2}},
]


async def test_queries_equal_a_brute_force_top_k_over_10000_vectors(
    any_deployment: Deployment, vectors: ConvexVector, uid: str
) -> None:
    rnd = random.Random(31)
    name = f"exact_{uid}"
    await vectors.create_index(name, 64)
    rows: dict[str, tuple[list[float], dict[str, Any] | None]] = {}
    for i in range(10_000):
        meta = {
            "group": i % 7,
            "tag": rnd.choice("abc"),
            "weight": rnd.random(),
            "flag": rnd.random() < 0.5,
        }
        rows[f"v{i:05d}"] = ([rnd.gauss(0, 1) for _ in range(64)], meta if i % 50 else None)
    # Seeded as upstream's rows, straight into the table: upserting 10,000 through the local
    # deployment takes minutes (its index lookups scan the table); upserts are tested below.
    import_rows(
        any_deployment,
        "mastra_vectors",
        [
            {"id": rid, "indexName": name, "embedding": vector}
            | ({"metadata": meta} if meta is not None else {})
            for rid, (vector, meta) in rows.items()
        ],
    )
    stats = await vectors.describe_index(name)
    assert stats == IndexStats(dimension=64, count=10_000, metric="cosine")
    query = [rnd.gauss(0, 1) for _ in range(64)]
    for where in FILTERS:
        got = await vectors.query(name, query, top_k=10, filter=where)
        same_ranking(got, brute_force(rows, query, 10, where=where))
    http = RawHttp(any_deployment.url, any_deployment.admin_key)
    seq = http.next_seq()
    widest = await vectors.query(name, query, top_k=256, include_vector=True)
    calls = http.calls_since(seq)
    same_ranking(widest, brute_force(rows, query, 256))
    if (await vectors.handler_info()).supports("vectorQuery"):
        # Scored where the rows are: the index row, then one call per page of the index,
        # whose answer is its best 256 rather than its 10,000.
        assert [c["op"] for c in calls][:2] == ["load", "vectorQuery"]
        assert {c["op"] for c in calls[1:]} == {"vectorQuery"}
        assert len(calls) <= 3
    else:
        assert {c["op"] for c in calls[1:]} == {"queryTable"}
    assert all(r.vector == rows[r.id][0] for r in widest)
    assert all(r.metadata == rows[r.id][1] for r in widest)  # ints come back as ints


@pytest.mark.parametrize("metric", ["euclidean", "dotproduct", "cosine"])
async def test_each_metric_ranks_as_its_formula(
    vectors: ConvexVector, uid: str, metric: Any
) -> None:
    rnd = random.Random(metric)
    name = f"{metric}_{uid}"
    await vectors.create_index(name, 8, metric)
    rows = {f"m{i:03d}": ([rnd.uniform(-1, 1) for _ in range(8)], None) for i in range(300)}
    rows["zero"] = ([0.0] * 8, None)  # cosine has no score for it: left out
    await vectors.upsert(name, [v for v, _ in rows.values()], ids=list(rows))
    assert (await vectors.describe_index(name)).metric == metric
    for _ in range(3):
        query = [rnd.uniform(-1, 1) for _ in range(8)]
        same_ranking(
            await vectors.query(name, query, top_k=20), brute_force(rows, query, 20, metric)
        )


async def test_equal_scores_come_in_id_order(vectors: ConvexVector, uid: str) -> None:
    name = f"ties_{uid}"
    await vectors.create_index(name, 3)
    await vectors.upsert(name, [[1, 0, 0]] * 5, ids=["e", "b", "d", "a", "c"])
    assert [r.id for r in await vectors.query(name, [2, 0, 0], top_k=4)] == ["a", "b", "c", "d"]


async def test_upsert_is_last_write_wins_and_metadata_is_replaced(
    vectors: ConvexVector, uid: str
) -> None:
    name = f"upsert_{uid}"
    await vectors.create_index(name, 2)
    ids = await vectors.upsert(name, [[1, 0], [0, 1]], metadata=[{"a": 1}, {"b": 2}])
    assert len(ids) == 2 and len(set(ids)) == 2  # fresh UUIDs
    await vectors.upsert(name, [[1, 1], [0, 2]], ids=["x", "x"], metadata=[{"n": 1}, {"n": 2}])
    [x] = await vectors.query(name, [0, 1], top_k=1, filter={"n": {"$gte": 0}}, include_vector=True)
    assert (x.id, x.vector, x.metadata) == ("x", [0.0, 2.0], {"n": 2})  # the last of the call
    await vectors.upsert(name, [[1, 0]], ids=["x"], metadata=[{"m": 3}])
    [x] = await vectors.query(name, [1, 0], top_k=1, filter={"m": 3}, include_vector=True)
    assert (x.vector, x.metadata) == ([1.0, 0.0], {"m": 3})  # replaced, not merged
    await vectors.upsert(name, [[0, 1]], ids=["x"])
    assert await vectors.query(name, [1, 0], filter={"m": 3}) == []  # no metadata now
    assert (await vectors.describe_index(name)).count == 3


async def test_update_merges_metadata_and_keeps_the_vector(vectors: ConvexVector, uid: str) -> None:
    name = f"update_{uid}"
    await vectors.create_index(name, 2)
    await vectors.upsert(
        name,
        [[1, 0], [0, 1], [1, 1]],
        ids=["a", "b", "c"],
        metadata=[{"k": 1, "keep": "yes"}, {"k": 2}, {"k": 1}],
    )
    assert await vectors.update_vector(name, id="a", metadata={"k": 5, "new": True}) == 1
    [a] = await vectors.query(name, [1, 0], top_k=1, include_vector=True)
    assert (a.id, a.vector, a.metadata) == ("a", [1.0, 0.0], {"k": 5, "keep": "yes", "new": True})
    assert await vectors.update_vector(name, id="b", vector=[3, 4]) == 1
    [b] = await vectors.query(name, [3, 4], top_k=1, include_vector=True)
    assert (b.id, b.vector, b.metadata) == ("b", [3.0, 4.0], {"k": 2})
    assert (
        await vectors.update_vector(name, filter={"k": {"$in": [1, 2]}}, metadata={"hit": 1}) == 2
    )
    hits = await vectors.query(name, [1, 1], filter={"hit": 1})
    assert sorted(r.id for r in hits) == ["b", "c"]
    assert await vectors.update_vector(name, id="missing", metadata={"x": 1}) == 0


async def test_delete_by_ids_and_by_filter_then_truncate_and_delete_the_index(
    vectors: ConvexVector, uid: str
) -> None:
    name = f"delete_{uid}"
    await vectors.create_index(name, 2)
    ids = [f"d{i:03d}" for i in range(60)]  # more than one deleteMany on the stock handler
    await vectors.upsert(
        name, [[1, i] for i in range(60)], ids=ids, metadata=[{"i": i} for i in range(60)]
    )
    await vectors.delete_vector(name, "d000")
    assert await vectors.delete_vectors(name, ids=ids[1:25]) == 24
    assert await vectors.delete_vectors(name, filter={"i": {"$gte": 50}}) == 10
    assert (await vectors.describe_index(name)).count == 25
    await vectors.truncate_index(name)
    assert (await vectors.describe_index(name)).count == 0
    await vectors.delete_index(name)
    assert name not in await vectors.list_indexes()
    with pytest.raises(NotFoundError, match="not found"):
        await vectors.describe_index(name)
    await vectors.delete_index(name)  # again: fine


async def test_create_index_is_idempotent_and_refuses_a_different_shape(
    vectors: ConvexVector, uid: str
) -> None:
    name = f"shape_{uid}"
    await vectors.create_index(name, 16, "euclidean")
    await vectors.create_index(name, 16, "euclidean")
    assert name in await vectors.list_indexes()
    with pytest.raises(ValidationError, match="exists with dimension 16 and metric euclidean"):
        await vectors.create_index(name, 32)


BAD_CALLS: list[tuple[str, Callable[[ConvexVector, str], Any], str]] = [
    ("dimension 1", lambda v, n: v.create_index(n + "_new", 1), "dimension"),
    ("dimension 4097", lambda v, n: v.create_index(n + "_new", 4097), "dimension"),
    ("unknown metric", lambda v, n: v.create_index(n + "_new", 3, "manhattan"), "metric"),
    ("wrong length", lambda v, n: v.upsert(n, [[1, 2, 3], [1, 2]]), r"vectors\[1\]"),
    ("NaN", lambda v, n: v.upsert(n, [[1, 2, math.nan]]), r"vectors\[0\]"),
    ("infinity", lambda v, n: v.upsert(n, [[1, math.inf, 2]]), r"vectors\[0\]"),
    ("a string", lambda v, n: v.upsert(n, [[1, "2", 3]]), r"vectors\[0\]"),
    ("ids count", lambda v, n: v.upsert(n, [[1, 2, 3]], ids=["a", "b"]), "ids"),
    ("blank id", lambda v, n: v.upsert(n, [[1, 2, 3]], ids=[" "]), r"ids\[0\]"),
    ("$ key", lambda v, n: v.upsert(n, [[1, 2, 3]], metadata=[{"$x": 1}]), r"metadata\[0\]"),
    ("top_k 0", lambda v, n: v.query(n, [1, 2, 3], top_k=0), "top_k"),
    ("top_k 257", lambda v, n: v.query(n, [1, 2, 3], top_k=257), "top_k"),
    ("query length", lambda v, n: v.query(n, [1, 2]), "query_vector"),
    (
        "unknown operator",
        lambda v, n: v.query(n, [1, 2, 3], filter={"a": {"$regex": "x"}}),
        r"\$regex",
    ),
    ("top-level operator", lambda v, n: v.query(n, [1, 2, 3], filter={"$nor": []}), r"\$nor"),
    ("$in not a list", lambda v, n: v.query(n, [1, 2, 3], filter={"a": {"$in": 1}}), r"\$in"),
    (
        "id and filter",
        lambda v, n: v.update_vector(n, id="a", filter={"k": 1}, metadata={}),
        "exactly one",
    ),
    ("neither", lambda v, n: v.delete_vectors(n), "exactly one"),
    ("empty filter", lambda v, n: v.delete_vectors(n, filter={}), "every vector"),
    ("update vector length", lambda v, n: v.update_vector(n, id="a", vector=[1]), "vector"),
]


@pytest.mark.parametrize(("case", "call", "named"), BAD_CALLS, ids=[c for c, _, _ in BAD_CALLS])
async def test_bad_input_is_refused_before_anything_is_written(
    vectors: ConvexVector, uid: str, case: str, call: Any, named: str
) -> None:
    name = f"bad_{uid}"
    await vectors.create_index(name, 3)
    await vectors.upsert(name, [[1, 0, 0]], ids=["a"], metadata=[{"k": 1}])
    with pytest.raises(ValidationError, match=named):
        await call(vectors, name)
    assert await vectors.list_indexes() == sorted({name, *await vectors.list_indexes()})
    assert name + "_new" not in await vectors.list_indexes()
    [a] = await vectors.query(name, [1, 0, 0], include_vector=True)
    assert (a.id, a.vector, a.metadata) == ("a", [1.0, 0.0, 0.0], {"k": 1})
    assert (await vectors.describe_index(name)).count == 1


async def test_an_unknown_index_is_not_found(vectors: ConvexVector, uid: str) -> None:
    for call in (
        vectors.upsert(f"nope_{uid}", [[1, 2]]),
        vectors.query(f"nope_{uid}", [1, 2]),
        vectors.describe_index(f"nope_{uid}"),
        vectors.truncate_index(f"nope_{uid}"),
        vectors.update_vector(f"nope_{uid}", id="a", metadata={"k": 1}),
    ):
        with pytest.raises(NotFoundError, match=f"nope_{uid}"):
            await call


async def test_what_typescript_writes_python_reads_and_back(
    any_deployment: Deployment, vectors: ConvexVector, uid: str
) -> None:
    rnd = random.Random(7)
    ts_index, py_index = f"ts_{uid}", f"py_{uid}"
    points = [[rnd.uniform(-1, 1) for _ in range(16)] for _ in range(40)]
    meta = [{"message_id": f"m{i}", "thread_id": f"t{i % 3}", "n": i} for i in range(40)]
    query = [rnd.uniform(-1, 1) for _ in range(16)]
    ids = [f"i{i:02d}" for i in range(40)]
    ts = run_ts_client(
        any_deployment,
        [
            {
                "vector": {},
                "method": "createIndex",
                "args": {"indexName": ts_index, "dimension": 16},
            },
            {
                "vector": {},
                "method": "upsert",
                "args": {"indexName": ts_index, "vectors": points, "ids": ids, "metadata": meta},
            },
            {
                "vector": {},
                "method": "query",
                "args": {
                    "indexName": ts_index,
                    "queryVector": query,
                    "topK": 5,
                    "filter": {"thread_id": "t1"},
                },
            },
        ],
    )
    assert all("error" not in r for r in ts), ts
    ts_top = ts[2]["result"]
    ours = await vectors.query(ts_index, query, top_k=5, filter={"thread_id": "t1"})
    assert [r.id for r in ours] == [r["id"] for r in ts_top]
    assert [r.score for r in ours] == pytest.approx([r["score"] for r in ts_top], rel=1e-12)
    assert [r.metadata for r in ours] == [r["metadata"] for r in ts_top]
    assert await vectors.describe_index(ts_index) == IndexStats(
        dimension=16, count=40, metric="cosine"
    )

    await vectors.create_index(py_index, 16)
    await vectors.upsert(py_index, points, ids=ids, metadata=meta)
    await vectors.update_vector(py_index, id="i03", metadata={"thread_id": "t1"})
    ours = await vectors.query(py_index, query, top_k=20, filter={"thread_id": "t1"})
    ts = run_ts_client(
        any_deployment,
        [
            {"vector": {}, "method": "listIndexes", "args": {}},
            {"vector": {}, "method": "describeIndex", "args": {"indexName": py_index}},
            {
                "vector": {},
                "method": "query",
                "args": {
                    "indexName": py_index,
                    "queryVector": query,
                    "topK": 20,
                    "filter": {"thread_id": "t1"},
                },
            },
        ],
    )
    assert all("error" not in r for r in ts), ts
    assert {ts_index, py_index} <= set(ts[0]["result"])
    assert ts[1]["result"] == {"dimension": 16, "count": 40, "metric": "cosine"}
    assert [r["id"] for r in ts[2]["result"]] == [r.id for r in ours]
    assert "i03" in [r.id for r in ours]
