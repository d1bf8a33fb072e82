"""store.documents against a real local deployment (ours and, where shared, the stock handler)."""

from __future__ import annotations

from typing import Any

import pytest

from convex_mastra import ConvexStore, RecordTooLargeError, ValidationError
from convex_mastra._codec import MAX_DOCUMENT_BYTES, document_size
from convex_mastra._domains.documents import RESERVED_TABLES
from convex_mastra.pytest_plugin import Deployment
from tests.conftest import RawHttp, import_rows


def table(uid: str) -> str:
    return f"app_records_{uid}"


async def test_insert_get_and_replace_by_id(any_store: ConvexStore, uid: str) -> None:
    docs = any_store.documents
    record = {"id": "a", "name": "first", "tags": ["x", "y"], "nested": {"n": 1, "f": 1.5}}
    await docs.insert(table(uid), record)
    assert await docs.get(table(uid), id="a") == record
    await docs.insert(table(uid), {"id": "a", "name": "second"})
    assert await docs.get(table(uid), id="a") == {"id": "a", "name": "second"}  # whole record
    assert await docs.get(table(uid), name="second") == {"id": "a", "name": "second"}
    assert await docs.get(table(uid), id="missing") is None
    assert await docs.get(table(uid), name="nobody") is None
    assert await docs.get(f"other_{uid}", id="a") is None  # tables do not share records


async def test_insert_many_upserts_and_get_many_keeps_the_order_asked(
    any_store: ConvexStore, uid: str
) -> None:
    docs = any_store.documents
    records = [{"id": f"r{i:04d}", "n": i} for i in range(620)]  # more than one call's worth
    await docs.insert_many(table(uid), [*records, {"id": "r0001", "n": -1}])
    await docs.insert_many(table(uid), [])
    wanted = ["r0619", "missing", "r0001", "r0000", "r0001"]
    got = await docs.get_many(table(uid), wanted)
    assert got == [{"id": "r0619", "n": 619}, {"id": "r0001", "n": -1}, {"id": "r0000", "n": 0}]
    assert len(await docs.get_many(table(uid), [r["id"] for r in records])) == 620


async def test_query_with_filters_and_limit(any_store: ConvexStore, uid: str) -> None:
    docs = any_store.documents
    await docs.insert_many(
        table(uid), [{"id": f"q{i}", "kind": "even" if i % 2 == 0 else "odd"} for i in range(10)]
    )
    everything = await docs.query(table(uid))
    assert sorted(r["id"] for r in everything) == [f"q{i}" for i in range(10)]
    odd = await docs.query(table(uid), filters={"kind": "odd"})
    assert sorted(r["id"] for r in odd) == ["q1", "q3", "q5", "q7", "q9"]
    assert len(await docs.query(table(uid), filters={"kind": "even"}, limit=2)) == 2
    assert await docs.query(table(uid), filters={"kind": "none"}) == []
    assert await docs.query(f"empty_{uid}") == []


async def test_patch_merges_top_level_fields(any_store: ConvexStore, uid: str) -> None:
    docs = any_store.documents
    await docs.insert(table(uid), {"id": "p", "a": 1, "b": {"x": 1}})
    assert await docs.patch(table(uid), "p", {"b": {"y": 2}, "c": [3]})
    assert await docs.get(table(uid), id="p") == {"id": "p", "a": 1, "b": {"y": 2}, "c": [3]}
    assert not await docs.patch(table(uid), "missing", {"a": 2})
    assert await docs.get(table(uid), id="missing") is None


async def test_delete_many_and_clear(any_store: ConvexStore, uid: str) -> None:
    docs = any_store.documents
    await docs.insert_many(table(uid), [{"id": f"d{i}"} for i in range(130)])
    await docs.insert(f"kept_{uid}", {"id": "d0"})
    await docs.delete_many(table(uid), ["d0", "d1", "missing"])
    assert await docs.get_many(table(uid), ["d0", "d1", "d2"]) == [{"id": "d2"}]
    await docs.clear(table(uid))  # several batches on either handler
    assert await docs.query(table(uid)) == []
    assert await docs.get(f"kept_{uid}", id="d0") == {"id": "d0"}


async def test_keys_convex_rejects_round_trip_exactly(store: ConvexStore, uid: str) -> None:
    # Ours only: the stock handler stores records verbatim, so Convex refuses such keys there
    # (see the next test for the error the stock handler gets instead).
    docs = store.documents
    record = {
        "id": "schema",
        "$schema": "http://json-schema.org/draft-07/schema#",
        "properties": {"ünïcødé": {"$ref": "#/definitions/x"}, "": "empty key"},
    }
    await docs.insert(table(uid), record)
    assert await docs.get(table(uid), id="schema") == record
    assert await docs.get_many(table(uid), ["schema"]) == [record]
    assert await docs.query(table(uid), filters={"$schema": record["$schema"]}) == [record]
    assert await docs.patch(table(uid), "schema", {"$id": "urn:x", "properties": {}})
    assert await docs.get(table(uid), id="schema") == {**record, "$id": "urn:x", "properties": {}}
    await docs.insert_many(table(uid), [{"id": "é", "ключ": 1}, {"id": "plain", "k": 2}])
    assert await docs.get_many(table(uid), ["é", "plain"]) == [
        {"id": "é", "ключ": 1},
        {"id": "plain", "k": 2},
    ]


async def test_keys_the_stock_handler_cannot_store_are_refused_before_writing(
    stock_deployment: Deployment, uid: str
) -> None:
    # Stock only: there records are stored verbatim, and Convex refuses such keys.
    async with ConvexStore(stock_deployment.url, stock_deployment.admin_key) as stock:
        with pytest.raises(ValidationError, match="stock"):
            await stock.documents.insert(table(uid), {"id": "s", "$schema": "x"})
        with pytest.raises(ValidationError, match="stock"):
            await stock.documents.patch(table(uid), "s", {"ключ": 1})
        assert await stock.documents.get(table(uid), id="s") is None


async def test_a_record_over_1_mib_is_refused_before_anything_is_written(
    any_store: ConvexStore, uid: str
) -> None:
    docs = any_store.documents
    big = {"id": "big", "blob": "x" * (1024 * 1024)}
    with pytest.raises(RecordTooLargeError) as caught:
        await docs.insert(table(uid), big)
    assert caught.value.record_id == "big"
    with pytest.raises(RecordTooLargeError):
        await docs.insert_many(table(uid), [{"id": "small"}, big])
    assert await docs.get_many(table(uid), ["big", "small"]) == []
    await docs.insert(table(uid), {"id": "grows"})
    with pytest.raises(RecordTooLargeError):
        await docs.patch(table(uid), "grows", {"blob": "y" * (1024 * 1024)})
    assert await docs.get(table(uid), id="grows") == {"id": "grows"}


@pytest.mark.parametrize(
    "name",
    [
        *sorted(RESERVED_TABLES),
        "MASTRA_THREADS",
        "Mastra_Workflow_Snapshot",
        "mastra_vector_embeddings",
    ],
)
async def test_names_of_typed_tables_are_refused(store: ConvexStore, name: str) -> None:
    # The refusal happens before any call, so one handler is enough.
    with pytest.raises(ValidationError, match="typed convex-mastra table"):
        await store.documents.insert(name, {"id": "x"})
    with pytest.raises(ValidationError, match="typed convex-mastra table"):
        await store.documents.query(name)
    with pytest.raises(ValidationError, match="typed convex-mastra table"):
        await store.documents.clear(name)


async def test_bad_input_is_refused_before_anything_is_written(
    any_store: ConvexStore, uid: str
) -> None:
    docs = any_store.documents
    bad_calls: list[Any] = [
        docs.insert("", {"id": "x"}),
        docs.insert(table(uid), {"name": "no id"}),
        docs.insert(table(uid), {"id": ""}),
        docs.insert(table(uid), ["not", "a", "dict"]),
        docs.insert(table(uid), {"id": "x", "n": float("nan")}),
        docs.insert_many(table(uid), [{"id": "ok"}, {"id": 5}]),
        docs.get(table(uid)),
        docs.get(table(uid), id={"nested": 1}),
        docs.query(table(uid), limit=0),
        docs.query(table(uid), filters={"a": [1]}),
        docs.get_many(table(uid), "single-string"),
        docs.patch(table(uid), "x", ["not a dict"]),
        docs.delete_many(table(uid), [""]),
    ]
    for call in bad_calls:
        with pytest.raises(ValidationError):
            await call
    assert await docs.query(table(uid)) == []


async def test_query_returns_more_than_10000_records(
    convex_module_deployment: Deployment, uid: str
) -> None:
    # Ours only (the stock handler caps a read at 10,000). A fresh deployment, seeded with
    # POST /_local/import: convex-test scans whole tables, so a big mastra_documents table
    # would slow every other test of the session deployment.
    import_rows(
        convex_module_deployment,
        "mastra_documents",
        [
            {"table": table(uid), "primaryKey": f"k{i:05d}", "record": {"id": f"k{i:05d}", "i": i}}
            for i in range(10_500)
        ],
    )
    http = RawHttp(convex_module_deployment.url, convex_module_deployment.admin_key)
    async with ConvexStore(
        convex_module_deployment.url, convex_module_deployment.admin_key
    ) as store:
        seq = http.next_seq()
        records = await store.documents.query(table(uid))
        calls = http.calls_since(seq)
        assert sorted(r["id"] for r in records) == [f"k{i:05d}" for i in range(10_500)]
        assert len(calls) <= 12  # the handler probe and 11 pages
        odd = await store.documents.query(table(uid), filters={"i": 10_499})
        assert odd == [{"id": "k10499", "i": 10_499}]
        await store.documents.clear(table(uid))
        assert await store.documents.query(table(uid), limit=1) == []


async def test_the_1_mib_edge_is_exactly_convexs(
    store: ConvexStore, convex_deployment: Deployment, uid: str
) -> None:
    # A record whose stored row is exactly at Convex's limit is written (the handler, which
    # sizes rows with Convex's own getDocumentSize, accepts it); one byte more is refused by
    # the SDK before any call.
    name = table(uid)
    base = {"table": name, "primaryKey": "edge", "record": {"id": "edge", "blob": ""}}
    blob = "x" * (MAX_DOCUMENT_BYTES - document_size(base))
    await store.documents.insert(name, {"id": "edge", "blob": blob})
    assert (await store.documents.get(name, id="edge")) == {"id": "edge", "blob": blob}
    http = RawHttp(convex_deployment.url, convex_deployment.admin_key)
    seq = http.next_seq()
    with pytest.raises(RecordTooLargeError):
        await store.documents.insert(name, {"id": "edge", "blob": blob + "x"})
    assert http.calls_since(seq) == []
