"""store.threads against a real local deployment (ours and, where shared, the stock handler)."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from convex_mastra import ConvexStore, NotFoundError, Thread, ValidationError
from convex_mastra._handlers import CAPABILITIES
from convex_mastra.pytest_plugin import Deployment
from tests.conftest import RawHttp
from tests.domains.conftest import is_stock

T0 = datetime(2026, 11, 23, 9, 0, 0, tzinfo=timezone.utc)


def thread(uid: str, n: int = 0, **extra: Any) -> dict[str, Any]:
    when = T0 + timedelta(minutes=n)
    return {
        "id": f"t{n}-{uid}",
        "resourceId": f"r-{uid}",
        "title": f"thread {n}",
        "createdAt": when,
        "updatedAt": when,
        **extra,
    }


def message(uid: str, thread_id: str, n: int, *, resource: str | None = None) -> dict[str, Any]:
    return {
        "id": f"m{n}-{uid}",
        "threadId": thread_id,
        "resourceId": resource or f"r-{uid}",
        "role": "user",
        "createdAt": T0 + timedelta(seconds=n),
        "content": {"format": 2, "parts": [{"type": "text", "text": f"message {n}"}]},
    }


async def test_save_and_get_round_trip_either_key_spelling(
    any_store: ConvexStore, uid: str
) -> None:
    saved = await any_store.threads.save(thread(uid, metadata={"topic": "billing", "n": 3}))
    snake = await any_store.threads.save(
        Thread(
            id=f"snake-{uid}",
            resource_id=f"r-{uid}",
            title="",
            created_at=T0,
            updated_at=T0,
        )
    )
    got = await any_store.threads.get(saved.id)
    assert got is not None
    assert got.model_dump(exclude={"last_message_at"}) == saved.model_dump(
        exclude={"last_message_at"}
    )
    assert got.metadata == {"topic": "billing", "n": 3}
    assert (await any_store.threads.get(snake.id)) == snake
    assert got.to_mastra()["resourceId"] == f"r-{uid}"


async def test_get_is_none_when_missing_or_owned_by_another_resource(
    any_store: ConvexStore, uid: str
) -> None:
    saved = await any_store.threads.save(thread(uid))
    assert await any_store.threads.get(f"missing-{uid}") is None
    assert await any_store.threads.get(saved.id, resource_id="someone-else") is None
    assert await any_store.threads.get(saved.id, resource_id=saved.resource_id) is not None


async def test_microseconds_are_cut_to_milliseconds_so_values_compare_equal(
    any_store: ConvexStore, uid: str
) -> None:
    precise = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=timezone.utc)
    saved = await any_store.threads.save(thread(uid, createdAt=precise, updatedAt=precise))
    assert saved.created_at == datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=timezone.utc)
    got = await any_store.threads.get(saved.id)
    assert got is not None and got.created_at == saved.created_at


async def test_naive_datetimes_are_refused(any_store: ConvexStore, uid: str) -> None:
    with pytest.raises(ValidationError, match="time zone"):
        await any_store.threads.save(thread(uid, createdAt=datetime(2026, 1, 1)))


@pytest.mark.parametrize(
    "metadata",
    [
        {"$schema": "https://json-schema.org/draft/2020-12/schema"},
        {"héllo": "wörld", "日本": ["語"]},
        {"_private": True, "nested": {"$ref": "#/x", "": "empty key"}},
        {"deep": {"a": {"b": {"c": {"d": {"e": {"f": {"g": {"h": {"i": {"j": {"k": {}}}}}}}}}}}}},
        {"big": 2**53 - 1, "float": 1.5, "none": None, "list": [1, "two", None, False]},
    ],
)
async def test_metadata_convex_would_refuse_round_trips_exactly(
    any_store: ConvexStore, uid: str, metadata: dict[str, Any]
) -> None:
    saved = await any_store.threads.save(thread(uid, metadata=metadata))
    got = await any_store.threads.get(saved.id)
    assert got is not None and got.metadata == metadata


async def test_list_pages_with_exact_totals(any_store: ConvexStore, uid: str) -> None:
    for n in range(7):
        await any_store.threads.save(thread(uid, n))
    await any_store.threads.save(thread(f"other-{uid}", 99))

    first = await any_store.threads.list(resource_id=f"r-{uid}", per_page=3)
    assert [t.id for t in first.items] == [f"t{n}-{uid}" for n in (6, 5, 4)]
    assert (first.total, first.page, first.per_page, first.has_more) == (7, 0, 3, True)
    last = await any_store.threads.list(resource_id=f"r-{uid}", page=2, per_page=3)
    assert [t.id for t in last.items] == [f"t0-{uid}"] and not last.has_more
    beyond = await any_store.threads.list(resource_id=f"r-{uid}", page=5, per_page=3)
    assert beyond.items == [] and beyond.total == 7

    everything = await any_store.threads.list(
        resource_id=f"r-{uid}", per_page=None, direction="ASC"
    )
    assert [t.id for t in everything.items] == [f"t{n}-{uid}" for n in range(7)]
    assert everything.per_page is None and not everything.has_more


async def test_list_orders_by_updated_at(any_store: ConvexStore, uid: str) -> None:
    for n in range(3):
        await any_store.threads.save(thread(uid, n, updatedAt=T0 + timedelta(hours=10 - n)))
    page = await any_store.threads.list(resource_id=f"r-{uid}", order_by="updatedAt")
    assert [t.id for t in page.items] == [f"t{n}-{uid}" for n in (0, 1, 2)]
    page = await any_store.threads.list(
        resource_id=f"r-{uid}", order_by="updated_at", direction="asc"
    )
    assert [t.id for t in page.items] == [f"t{n}-{uid}" for n in (2, 1, 0)]


async def test_list_filters_by_metadata_with_exact_totals(any_store: ConvexStore, uid: str) -> None:
    for n in range(6):
        await any_store.threads.save(
            thread(uid, n, metadata={"kind": "a" if n % 2 else "b", "$odd": n % 2 == 1})
        )
    page = await any_store.threads.list(resource_id=f"r-{uid}", metadata={"kind": "a"}, per_page=2)
    assert [t.id for t in page.items] == [f"t5-{uid}", f"t3-{uid}"]
    assert page.total == 3 and page.has_more
    page = await any_store.threads.list(resource_id=f"r-{uid}", metadata={"$odd": False})
    assert {t.id for t in page.items} == {f"t{n}-{uid}" for n in (0, 2, 4)}
    # Exact type equality, as in JavaScript: "1" is not 1 and True is not 1.
    assert (await any_store.threads.list(resource_id=f"r-{uid}", metadata={"kind": 1})).total == 0


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"page": -1}, "page"),
        ({"per_page": -5}, "per_page"),
        ({"order_by": "title"}, "order_by"),
        ({"direction": "UP"}, "direction"),
        ({"metadata": {"nested": {"a": 1}}}, "metadata"),
        ({"metadata": {"list": [1]}}, "metadata"),
        ({"resource_id": "  "}, "resource_id"),
    ],
)
async def test_bad_list_arguments_fail_before_any_call(kwargs: dict[str, Any], field: str) -> None:
    # Port 9 answers nothing: reaching the network would raise DeploymentUnavailable instead.
    async with ConvexStore("http://127.0.0.1:9", "no-key") as offline:
        with pytest.raises(ValidationError) as error:
            await offline.threads.list(**kwargs)
    assert error.value.field == field


async def test_update_merges_metadata_and_keeps_what_is_not_given(
    any_store: ConvexStore, uid: str
) -> None:
    saved = await any_store.threads.save(thread(uid, metadata={"a": 1, "$b": 2}))
    updated = await any_store.threads.update(saved.id, metadata={"c": 3, "a": 10})
    assert updated.metadata == {"a": 10, "$b": 2, "c": 3}
    assert updated.title == "thread 0"
    retitled = await any_store.threads.update(saved.id, title="")
    assert retitled.title == "" and retitled.metadata == {"a": 10, "$b": 2, "c": 3}
    got = await any_store.threads.get(saved.id)
    assert got is not None and got.title == "" and got.metadata == updated.metadata
    assert got.updated_at > saved.updated_at


async def test_update_of_a_missing_thread_raises_not_found(
    any_store: ConvexStore, uid: str
) -> None:
    with pytest.raises(NotFoundError):
        await any_store.threads.update(f"missing-{uid}", title="x")


async def test_update_strictly_increases_updated_at(any_store: ConvexStore, uid: str) -> None:
    future = datetime.now(timezone.utc) + timedelta(days=1)
    saved = await any_store.threads.save(thread(uid, updatedAt=future))
    first = await any_store.threads.update(saved.id, metadata={"n": 1})
    second = await any_store.threads.update(saved.id, metadata={"n": 2})
    assert saved.updated_at < first.updated_at < second.updated_at


async def test_last_message_at_follows_the_newest_message(store: ConvexStore, uid: str) -> None:
    saved = await store.threads.save(thread(uid))
    assert saved.last_message_at is None
    other = await store.threads.save(thread(uid, 1))
    await store.messages.save([message(uid, saved.id, 10), message(uid, saved.id, 20)])
    got = await store.threads.get(saved.id)
    assert got is not None and got.last_message_at == T0 + timedelta(seconds=20)

    await store.messages.save([message(uid, saved.id, 5)])  # older: no move back
    got = await store.threads.get(saved.id)
    assert got is not None and got.last_message_at == T0 + timedelta(seconds=20)

    await store.messages.delete([f"m20-{uid}"])
    got = await store.threads.get(saved.id)
    assert got is not None and got.last_message_at == T0 + timedelta(seconds=10)

    await store.messages.update([{"id": f"m10-{uid}", "thread_id": other.id}])
    got, moved_to = await store.threads.get(saved.id), await store.threads.get(other.id)
    assert got is not None and got.last_message_at == T0 + timedelta(seconds=5)
    assert moved_to is not None and moved_to.last_message_at == T0 + timedelta(seconds=10)


async def test_list_by_last_message_puts_threads_without_messages_last(
    store: ConvexStore, uid: str
) -> None:
    for n in range(3):
        await store.threads.save(thread(uid, n))
    await store.messages.save([message(uid, f"t0-{uid}", 50), message(uid, f"t2-{uid}", 40)])
    desc = await store.threads.list(resource_id=f"r-{uid}", order_by="lastMessageAt")
    assert [t.id for t in desc.items] == [f"t0-{uid}", f"t2-{uid}", f"t1-{uid}"]
    asc = await store.threads.list(
        resource_id=f"r-{uid}", order_by="lastMessageAt", direction="ASC"
    )
    assert [t.id for t in asc.items] == [f"t1-{uid}", f"t2-{uid}", f"t0-{uid}"]


async def test_delete_removes_the_thread_and_its_messages(any_store: ConvexStore, uid: str) -> None:
    saved = await any_store.threads.save(thread(uid))
    keep = await any_store.threads.save(thread(uid, 1))
    await any_store.messages.save([message(uid, saved.id, n) for n in range(5)])
    await any_store.messages.save([message(uid, keep.id, 100)])
    await any_store.threads.delete(saved.id)
    assert await any_store.threads.get(saved.id) is None
    assert await any_store.messages.get_many([f"m{n}-{uid}" for n in range(5)]) == []
    assert (await any_store.messages.list(keep.id)).total == 1
    await any_store.threads.delete(saved.id)  # deleting again is harmless


async def test_delete_of_a_big_thread_runs_in_bounded_batches(
    store: ConvexStore, convex_deployment: Deployment, uid: str
) -> None:
    saved = await store.threads.save(thread(uid))
    await store.messages.save([message(uid, saved.id, n) for n in range(1200)])
    http = RawHttp(convex_deployment.url, convex_deployment.admin_key)
    seq = http.next_seq()
    await store.threads.delete(saved.id)
    calls = [c for c in http.calls_since(seq) if c.get("op") == "deleteThread"]
    assert len(calls) == 3  # 500 + 500 + 200 messages, the thread row in the last
    # 500 messages, counters and the thread, and rank tree nodes (a leaf per 64 messages).
    assert all(c["documentsWritten"] <= 500 + 10 + 500 // 64 + 5 for c in calls)
    assert (await store.messages.list(saved.id)).total == 0


async def test_clone_copies_messages_with_new_ids(any_store: ConvexStore, uid: str) -> None:
    source = await any_store.threads.save(thread(uid, metadata={"team": "x"}))
    await any_store.messages.save([message(uid, source.id, n) for n in range(6)])

    clone = await any_store.threads.clone(source.id, new_thread_id=f"copy-{uid}", message_limit=4)
    assert clone.thread.id == f"copy-{uid}" and clone.thread.title == "Clone of thread 0"
    assert clone.thread.metadata is not None
    assert clone.thread.metadata["clone"]["sourceThreadId"] == source.id
    assert clone.thread.metadata["clone"]["lastMessageId"] == f"m5-{uid}"
    assert list(clone.message_id_map) == [f"m{n}-{uid}" for n in (2, 3, 4, 5)]
    copied = await any_store.messages.list(clone.thread.id)
    assert [m.id for m in copied.items] == list(clone.message_id_map.values())
    assert [m.content for m in copied.items] == [
        m.content for m in (await any_store.messages.list(source.id, page=0)).items[2:]
    ]
    assert (await any_store.messages.list(source.id)).total == 6  # the source is untouched

    dated = await any_store.threads.clone(
        source.id,
        resource_id=f"elsewhere-{uid}",
        title="mine",
        start_date=T0 + timedelta(seconds=1),
        end_date=T0 + timedelta(seconds=3),
    )
    assert dated.thread.resource_id == f"elsewhere-{uid}" and dated.thread.title == "mine"
    assert list(dated.message_id_map) == [f"m{n}-{uid}" for n in (1, 2, 3)]
    picked = await any_store.threads.clone(source.id, message_ids=[f"m0-{uid}", f"m4-{uid}"])
    assert list(picked.message_id_map) == [f"m0-{uid}", f"m4-{uid}"]


async def test_clone_refuses_a_missing_source_or_an_existing_target(
    any_store: ConvexStore, uid: str
) -> None:
    source = await any_store.threads.save(thread(uid))
    with pytest.raises(NotFoundError):
        await any_store.threads.clone(f"missing-{uid}")
    with pytest.raises(ValidationError, match="already exists"):
        await any_store.threads.clone(source.id, new_thread_id=source.id)


async def test_stock_handler_is_detected(any_store: ConvexStore) -> None:
    info = await any_store.handler_info()
    assert info.is_stock == await is_stock(any_store)
    assert info.supports("pageByIndex") != info.is_stock
    # Capabilities are declared by the handler the store chose: all of them, or none.
    assert await any_store.capabilities() == (frozenset() if info.is_stock else CAPABILITIES)


async def test_the_stock_handler_is_named_once_with_its_row_limit(
    stock_deployment: Deployment, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="convex_mastra")
    async with ConvexStore(stock_deployment.url, stock_deployment.admin_key) as stock:
        await stock.threads.list()
        await stock.messages.list("any-thread")
        await stock.threads.list(resource_id="anyone")
    warnings = [r for r in caplog.records if "10,000" in r.getMessage()]
    assert len(warnings) == 1 and "stock @mastra/convex" in warnings[0].getMessage()


async def test_a_thread_at_the_limit_keeps_room_for_what_the_handler_adds(
    store: ConvexStore, uid: str
) -> None:
    from convex_mastra import RecordTooLargeError
    from convex_mastra._codec import MAX_DOCUMENT_BYTES, document_size
    from convex_mastra._domains.threads import thread_record

    def fat(n: int) -> Thread:
        return Thread(id=f"fat-{uid}", resource_id=f"r-{uid}", metadata={"blob": "x" * n})

    # Stored, the thread also holds lastMessageAt (24 characters) and messageSeq (a number).
    beside = len("lastMessageAt") + 3 + 24 + len("messageSeq") + 10
    room = MAX_DOCUMENT_BYTES - beside - document_size(thread_record(fat(0)))
    with pytest.raises(RecordTooLargeError) as refused:
        await store.threads.save(fat(room + 1))
    assert refused.value.size == MAX_DOCUMENT_BYTES + 1
    assert await store.threads.get(f"fat-{uid}") is None
    # One byte less fits, and keeps fitting once messages give it lastMessageAt and messageSeq.
    await store.threads.save(fat(room))
    await store.messages.save([message(uid, f"fat-{uid}", n) for n in range(2)])
    saved = await store.threads.get(f"fat-{uid}")
    assert saved is not None and saved.last_message_at == T0 + timedelta(seconds=1)
