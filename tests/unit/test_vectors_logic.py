"""ConvexVector's pure logic: the filter language, batching of upserts, pages of a query.

The handlers' side (what is stored, what both clients read) is tested against the local
deployment in tests/domains/test_vectors.py; here a fake transport answers the record ops.
"""

from __future__ import annotations

from typing import Any

import pytest

from convex_mastra import (
    ConvexVector,
    NotFoundError,
    PartialWriteError,
    StorageOperationError,
    ValidationError,
)
from convex_mastra._vector_filter import compile_filter, same
from tests.unit.fakes import OUR_STORAGE_INFO, FakeHandler, FakeTransport

ROW = {"tag": "a", "n": 3, "f": 2.5, "flag": True, "list": [1, "x"], "obj": {"k": 1}}


@pytest.mark.parametrize(
    ("where", "matches"),
    [
        (None, True),
        ({}, True),
        ({"metadata": {}}, True),
        ({"tag": "a"}, True),
        ({"tag": "b"}, False),
        ({"tag": {"$eq": "a"}}, True),  # upstream: never (compares the operator object)
        ({"n": 3.0}, True),
        ({"flag": 1}, False),  # booleans are not numbers
        ({"n": {"$gt": 2, "$lt": 3}}, False),  # every operator (upstream: the first only)
        ({"n": {"$gte": 3, "$lte": 3}}, True),
        ({"n": {"$gt": "2"}}, False),  # a number and a string do not compare
        ({"tag": {"$lt": "b"}}, True),
        ({"missing": {"$ne": 1}}, True),
        ({"missing": {"$nin": [1]}}, True),
        ({"missing": None}, False),  # missing is not null
        ({"n": {"$in": [1, 3]}}, True),
        ({"n": {"$nin": [1, 3]}}, False),
        ({"list": [1, "x"]}, True),  # by content (upstream: by identity, never)
        ({"obj": {"k": 1}}, True),
        ({"obj": {"k": 2}}, False),
        ({"$and": [{"tag": "a"}, {"n": 3}]}, True),
        ({"$and": []}, True),
        ({"$or": [{"tag": "z"}, {"n": 3}]}, True),
        ({"$or": []}, False),
        ({"metadata": {"$or": [{"tag": "z"}, {"f": {"$gt": 2}}]}}, True),
        ({"tag": "a", "n": 4}, False),
    ],
)
def test_filters_match_as_documented(where: dict[str, Any] | None, matches: bool) -> None:
    match = compile_filter(where)
    assert (match is None or match(ROW)) is matches


def test_a_row_without_metadata_matches_only_the_empty_filter() -> None:
    assert compile_filter({}) is None
    match = compile_filter({"missing": {"$ne": 1}})
    assert match is not None and not match(None)


@pytest.mark.parametrize(
    ("where", "named"),
    [
        ({"n": {"$regex": "x"}}, r"filter\.n\.\$regex"),
        ({"$nor": []}, r"filter\.\$nor"),
        ({"n": {"$in": 3}}, r"filter\.n\.\$in must be a list"),
        ({"$or": {"a": 1}}, r"filter\.\$or must be a list"),
        ({"$and": [1]}, r"filter\.\$and must be a list of filters"),
        ({"n": {"$gt": float("nan")}}, r"filter\.n\.\$gt"),
        ({"n": {"$eq": object()}}, r"filter\.n\.\$eq"),
        ({"metadata": {"n": {"$exists": True}}}, r"filter\.metadata\.n\.\$exists"),
        ("tag", "must be a dict"),
    ],
)
def test_bad_filters_are_refused_naming_where(where: Any, named: str) -> None:
    with pytest.raises(ValidationError, match=named):
        compile_filter(where)


def test_json_equality() -> None:
    assert same(1, 1.0) and not same(True, 1) and not same(0, False) and same(None, None)
    assert same({"a": [1, {"b": 2}]}, {"a": [1.0, {"b": 2}]})
    assert not same([1, 2], [2, 1]) and not same({"a": 1}, {"a": 1, "b": 2})
    assert not same("1", 1)


class Deployment:
    """Index rows and vector rows held by a fake handler speaking the record ops."""

    def __init__(self, fail_batch: int | None = None) -> None:
        self.indexes: dict[str, dict[str, Any]] = {}
        self.rows: dict[str, dict[str, Any]] = {}
        self.batches: list[list[str]] = []
        self.pages: list[int] = []
        self.fail_batch = fail_batch

    def handler(self) -> FakeHandler:
        info = {
            **OUR_STORAGE_INFO,
            "ops": [*OUR_STORAGE_INFO["ops"], "deleteMany", "clearTable"],
            "limits": {**OUR_STORAGE_INFO["limits"], "batchItems": 3, "pageItems": 4},
        }
        return FakeHandler(
            info=info,
            ops={
                "load": self.load,
                "insert": self.insert,
                "batchInsert": self.batch_insert,
                "queryTable": self.query_table,
            },
        )

    def load(self, request: dict[str, Any]) -> dict[str, Any]:
        table, key = request["tableName"], request["keys"]["id"]
        found = self.indexes if table == "mastra_vector_indexes" else self.rows
        return {"ok": True, "result": found.get(key)}

    def insert(self, request: dict[str, Any]) -> dict[str, Any]:
        self.indexes[request["record"]["id"]] = request["record"]
        return {"ok": True}

    def batch_insert(self, request: dict[str, Any]) -> dict[str, Any]:
        if len(self.batches) == self.fail_batch:
            return {"ok": False, "error": "too busy", "code": "CONFLICT"}
        self.batches.append([r["id"] for r in request["records"]])
        for record in request["records"]:
            self.rows[record["id"]] = record
        return {"ok": True}

    def query_table(self, request: dict[str, Any]) -> dict[str, Any]:
        ordered = sorted(self.rows)
        start = int(request.get("cursor") or 0)
        size = request["pageSize"]
        self.pages.append(size)
        page = [self.rows[i] for i in ordered[start : start + size]]
        more = start + size < len(ordered)
        return {
            "ok": True,
            "result": page,
            "hasMore": more,
            "continuationCursor": str(start + size),
        }


async def test_a_big_upsert_goes_in_several_calls_and_a_failure_says_what_was_written() -> None:
    deployment = Deployment(fail_batch=2)
    async with ConvexVector(transport=FakeTransport(deployment.handler())) as vectors:
        await vectors.create_index("i", 2)
        with pytest.raises(PartialWriteError) as caught:
            await vectors.upsert("i", [[1, n] for n in range(8)], ids=[f"v{n}" for n in range(8)])
    assert deployment.batches == [["v0", "v1", "v2"], ["v3", "v4", "v5"]]
    assert caught.value.done == [f"v{n}" for n in range(6)]
    assert caught.value.not_done == ["v6", "v7"]
    assert isinstance(caught.value.__cause__, StorageOperationError)


async def test_a_failing_first_call_raises_as_it_is() -> None:
    deployment = Deployment(fail_batch=0)
    async with ConvexVector(transport=FakeTransport(deployment.handler())) as vectors:
        await vectors.create_index("i", 2)
        with pytest.raises(StorageOperationError, match="too busy"):
            await vectors.upsert("i", [[1, 0]])


async def test_a_query_reads_every_page_and_keeps_the_best() -> None:
    deployment = Deployment()
    async with ConvexVector(transport=FakeTransport(deployment.handler())) as vectors:
        await vectors.create_index("i", 2, "dotproduct")
        await vectors.upsert("i", [[n, 0] for n in range(10)], ids=[f"v{n}" for n in range(10)])
        top = await vectors.query("i", [1, 0], top_k=3)
        assert [(r.id, r.score) for r in top] == [("v9", 9.0), ("v8", 8.0), ("v7", 7.0)]
        assert deployment.pages == [4, 4, 4]  # the handler's pageItems bound: 3 pages for 10
        with pytest.raises(NotFoundError):
            await vectors.query("other", [1, 0])


async def test_on_a_handler_that_scores_the_best_of_each_page_are_merged() -> None:
    deployment = Deployment()
    handler = deployment.handler()
    assert handler.info is not None
    handler.info["ops"] = [*handler.info["ops"], "vectorQuery"]
    pages = [
        [{"id": "a", "score": 0.5}, {"id": "b", "score": 0.1}],
        [{"id": "c", "score": 0.9, "metadata": {"k": 1.0}}, {"id": "d", "score": 0.5}],
    ]
    sent: list[dict[str, Any]] = []

    def vector_query(request: dict[str, Any]) -> dict[str, Any]:
        sent.append(request)
        n = int(request.get("cursor") or 0)
        more = n + 1 < len(pages)
        return {
            "ok": True,
            "result": {"results": pages[n], "scanned": 2},
            "hasMore": more,
            "continuationCursor": str(n + 1),
        }

    handler.ops["vectorQuery"] = vector_query
    async with ConvexVector(transport=FakeTransport(handler)) as vectors:
        await vectors.create_index("i", 2)
        top = await vectors.query("i", [1, 0], top_k=3, filter={"k": {"$gte": 1}})
    assert [(r.id, r.score, r.metadata) for r in top] == [
        ("c", 0.9, {"k": 1}),
        ("a", 0.5, None),
        ("d", 0.5, None),  # equal scores in id order, across pages
    ]
    assert [r.get("cursor") for r in sent] == [None, "1"]
    # Operators cannot be argument field names: the filter goes as JSON text.
    assert sent[0]["filter"] == '{"k":{"$gte":1}}' and sent[0]["topK"] == 3
