"""store.messages against a real local deployment (ours and, where shared, the stock handler)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from convex_mastra import (
    ConvexStore,
    DeploymentUnavailable,
    Message,
    NotFoundError,
    PartialWriteError,
    RecordTooLargeError,
    ValidationError,
)
from tests.conftest import redeclare
from tests.domains.test_threads import T0, message, thread


async def seed(store: ConvexStore, uid: str, count: int, n: int = 0) -> str:
    saved = await store.threads.save(thread(uid, n))
    await store.messages.save([message(uid, saved.id, i) for i in range(count)])
    return saved.id


def ids(page: Any) -> list[str]:
    return [m.id.split("-")[0] for m in page.items]


async def test_save_returns_messages_in_input_order_and_upserts(
    any_store: ConvexStore, uid: str
) -> None:
    thread_id = (await any_store.threads.save(thread(uid))).id
    batch = [message(uid, thread_id, n) for n in (3, 1, 2)]
    saved = await any_store.messages.save(batch)
    assert [m.id for m in saved] == [f"m{n}-{uid}" for n in (3, 1, 2)]
    assert all(isinstance(m, Message) and m.thread_id == thread_id for m in saved)

    changed = {**message(uid, thread_id, 1), "content": {"format": 2, "parts": [], "x": 1}}
    await any_store.messages.save([changed])
    page = await any_store.messages.list(thread_id)
    assert ids(page) == ["m1", "m2", "m3"] and page.total == 3
    assert page.items[0].content.model_extra == {"x": 1}  # unknown content fields are kept


async def test_content_round_trips_exactly(any_store: ConvexStore, uid: str) -> None:
    thread_id = (await any_store.threads.save(thread(uid))).id
    content = {
        "format": 2,
        "parts": [{"type": "text", "text": "héllo 👋"}, {"type": "tool-invocation", "x": None}],
        "content": "héllo",
        "metadata": {"$schema": "s", "ключ": [1, 2.5, {"_id": "not a convex id"}]},
        "experimental_attachments": [{"url": "data:,"}],
    }
    await any_store.messages.save([{**message(uid, thread_id, 0), "content": content}])
    [got] = await any_store.messages.get_many([f"m0-{uid}"])
    assert got.content.model_dump(by_alias=True, exclude_none=True) == content


async def test_saving_bumps_updated_at_of_every_touched_thread(
    store: ConvexStore, uid: str
) -> None:
    a = await store.threads.save(thread(uid, 0))
    b = await store.threads.save(thread(uid, 1))
    await store.messages.save([message(uid, a.id, 0)])
    await store.messages.save([{**message(uid, a.id, 0), "threadId": b.id}])  # a move
    for before in (a, b):
        after = await store.threads.get(before.id)
        assert after is not None and after.updated_at > before.updated_at
    assert (await store.messages.list(a.id)).total == 0
    assert ids(await store.messages.list(b.id)) == ["m0"]


async def test_an_invalid_message_fails_the_whole_batch_before_writing(
    any_store: ConvexStore, uid: str
) -> None:
    thread_id = (await any_store.threads.save(thread(uid))).id
    good = message(uid, thread_id, 0)
    for bad, field in (
        ({**message(uid, thread_id, 1), "resourceId": None}, "resource_id"),
        ({**message(uid, thread_id, 1), "threadId": None}, "thread_id"),
        ({**message(uid, thread_id, 1), "createdAt": "yesterday"}, "messages[1]"),
        ({**message(uid, thread_id, 1), "content": {"parts": [float("nan")]}}, None),
        ({**message(uid, thread_id, 1), "content": {"parts": [2**60]}}, None),
    ):
        with pytest.raises(ValidationError) as error:
            await any_store.messages.save([good, bad])
        if field:
            assert error.value.field == field
    assert (await any_store.messages.list(thread_id)).total == 0


async def test_a_message_for_a_missing_thread_fails_the_batch(
    any_store: ConvexStore, uid: str
) -> None:
    thread_id = (await any_store.threads.save(thread(uid))).id
    with pytest.raises(NotFoundError):
        await any_store.messages.save(
            [message(uid, thread_id, 0), message(uid, f"missing-{uid}", 1)]
        )
    assert (await any_store.messages.list(thread_id)).total == 0


async def test_a_message_over_one_mib_is_refused_and_nothing_is_written(
    any_store: ConvexStore, uid: str
) -> None:
    thread_id = (await any_store.threads.save(thread(uid))).id
    huge = {**message(uid, thread_id, 1), "content": {"parts": [{"text": "x" * (1 << 20)}]}}
    with pytest.raises(RecordTooLargeError) as error:
        await any_store.messages.save([message(uid, thread_id, 0), huge])
    assert error.value.record_id == f"m1-{uid}" and error.value.size > 1 << 20
    assert (await any_store.messages.list(thread_id)).total == 0


async def test_the_deployments_size_refusal_is_a_record_too_large_error(
    store: ConvexStore, uid: str
) -> None:
    # The client's estimate catches almost everything; what slips past it (Convex measures a
    # document slightly differently) is refused by the handler before writing, with the id.
    thread_id = (await store.threads.save(thread(uid))).id
    row = {
        "id": f"big-{uid}",
        "thread_id": thread_id,
        "content": "x" * (1 << 20),
        "role": "user",
        "type": "v2",
        "createdAt": "2026-11-23T09:00:00.000Z",
        "resourceId": f"r-{uid}",
    }
    with pytest.raises(RecordTooLargeError) as error:
        await store._dispatcher.call("saveMessages", None, messages=[row])
    assert error.value.record_id == f"big-{uid}" and error.value.size > 1 << 20
    assert (await store.messages.list(thread_id)).total == 0


async def test_list_pages_in_both_directions(any_store: ConvexStore, uid: str) -> None:
    thread_id = await seed(any_store, uid, 10)
    page = await any_store.messages.list(thread_id, page=1, per_page=4)
    assert ids(page) == ["m4", "m5", "m6", "m7"]
    assert (page.total, page.has_more) == (10, True)
    page = await any_store.messages.list(thread_id, page=2, per_page=4)
    assert ids(page) == ["m8", "m9"] and not page.has_more
    page = await any_store.messages.list(thread_id, per_page=3, direction="DESC")
    assert ids(page) == ["m9", "m8", "m7"]
    page = await any_store.messages.list(thread_id, page=3, per_page=3, direction="DESC")
    assert ids(page) == ["m0"]
    page = await any_store.messages.list(thread_id, per_page=None)
    assert ids(page) == [f"m{n}" for n in range(10)] and not page.has_more


async def test_equal_timestamps_keep_insertion_order(any_store: ConvexStore, uid: str) -> None:
    thread_id = (await any_store.threads.save(thread(uid))).id
    same = [{**message(uid, thread_id, n), "createdAt": T0} for n in (5, 3, 9, 1)]
    await any_store.messages.save(same[:2])
    await any_store.messages.save(same[2:])
    page = await any_store.messages.list(thread_id)
    assert ids(page) == ["m5", "m3", "m9", "m1"]
    page = await any_store.messages.list(thread_id, direction="DESC")
    assert ids(page) == ["m1", "m9", "m3", "m5"]


async def test_include_adds_context_windows_without_duplicates(
    any_store: ConvexStore, uid: str
) -> None:
    a = await seed(any_store, uid, 10, 0)
    b = (await any_store.threads.save(thread(uid, 1))).id
    await any_store.messages.save([message(uid, b, n) for n in range(100, 105)])

    page = await any_store.messages.list(
        a,
        per_page=2,
        include=[
            {"id": f"m5-{uid}", "withPreviousMessages": 2, "withNextMessages": 1},
            {"id": f"m102-{uid}", "with_previous_messages": 1},
            {"id": f"m1-{uid}", "withNextMessages": 1},  # overlaps the page
            {"id": f"missing-{uid}"},
        ],
    )
    assert ids(page) == ["m0", "m1", "m2", "m3", "m4", "m5", "m6", "m101", "m102"]
    assert page.total == 10 and page.has_more

    only = await any_store.messages.list(
        a, per_page=0, include=[{"id": f"m9-{uid}", "withPreviousMessages": 1}]
    )
    assert ids(only) == ["m8", "m9"] and only.total == 0 and not only.has_more
    assert ids(await any_store.messages.list(a, per_page=0)) == []


async def test_resource_id_drops_other_resources_messages_and_includes(
    any_store: ConvexStore, uid: str
) -> None:
    thread_id = (await any_store.threads.save(thread(uid))).id
    mine, theirs = f"r-{uid}", f"other-{uid}"
    await any_store.messages.save(
        [message(uid, thread_id, n, resource=mine if n % 2 else theirs) for n in range(6)]
    )
    page = await any_store.messages.list(thread_id, resource_id=mine)
    assert ids(page) == ["m1", "m3", "m5"] and page.total == 3
    page = await any_store.messages.list(
        thread_id,
        resource_id=mine,
        per_page=0,
        include=[
            {"id": f"m2-{uid}", "withNextMessages": 5},
            {"id": f"m3-{uid}", "withPreviousMessages": 1},
        ],
    )
    assert ids(page) == ["m1", "m3"]


async def test_date_ranges_page_by_time_without_gaps_or_duplicates(
    any_store: ConvexStore, uid: str
) -> None:
    thread_id = await seed(any_store, uid, 10)
    at = lambda n: T0 + timedelta(seconds=n)  # noqa: E731
    page = await any_store.messages.list(thread_id, date_range={"start": at(2), "end": at(4)})
    assert ids(page) == ["m2", "m3", "m4"] and page.total == 3
    page = await any_store.messages.list(
        thread_id,
        date_range={"start": at(2), "end": at(4), "startExclusive": True, "end_exclusive": True},
    )
    assert ids(page) == ["m3"]

    seen: list[str] = []
    cursor: datetime | None = None
    while True:
        window = {"start": cursor, "start_exclusive": True} if cursor else {}
        page = await any_store.messages.list(thread_id, date_range=window, per_page=3)
        seen += ids(page)
        if not page.has_more:
            break
        cursor = page.items[-1].created_at
    assert seen == [f"m{n}" for n in range(10)]


async def test_metadata_filter_matches_content_metadata(any_store: ConvexStore, uid: str) -> None:
    thread_id = (await any_store.threads.save(thread(uid))).id
    await any_store.messages.save(
        [
            {
                **message(uid, thread_id, n),
                "content": {"parts": [], "metadata": {"tag": n % 3, "$k": "v"}},
            }
            for n in range(9)
        ]
    )
    page = await any_store.messages.list(thread_id, metadata={"tag": 1}, per_page=2, page=1)
    assert ids(page) == ["m7"] and page.total == 3 and not page.has_more
    page = await any_store.messages.list(
        thread_id, metadata={"tag": 0, "$k": "v"}, direction="DESC"
    )
    assert ids(page) == ["m6", "m3", "m0"]
    assert (await any_store.messages.list(thread_id, metadata={"tag": "1"})).total == 0


async def test_several_threads_list_as_one_sorted_listing(any_store: ConvexStore, uid: str) -> None:
    a = (await any_store.threads.save(thread(uid, 0))).id
    b = (await any_store.threads.save(thread(uid, 1))).id
    await any_store.messages.save([message(uid, a if n % 2 else b, n) for n in range(8)])
    page = await any_store.messages.list([a, b], page=1, per_page=3)
    assert ids(page) == ["m3", "m4", "m5"] and page.total == 8
    page = await any_store.messages.list([a, b], page=2, per_page=3, direction="DESC")
    assert ids(page) == ["m1", "m0"]


async def test_list_by_resource_spans_threads(any_store: ConvexStore, uid: str) -> None:
    a = (await any_store.threads.save(thread(uid, 0))).id
    b = (await any_store.threads.save(thread(uid, 1))).id
    await any_store.messages.save([message(uid, a if n < 3 else b, n) for n in range(5)])
    page = await any_store.messages.list_by_resource(f"r-{uid}", per_page=2, direction="DESC")
    assert ids(page) == ["m4", "m3"] and page.total == 5 and page.has_more


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda s: s.messages.list(""), "thread_id[0]"),
        (lambda s: s.messages.list([]), "thread_id"),
        (lambda s: s.messages.list(["ok", " "]), "thread_id[1]"),
        (lambda s: s.messages.list("t", page=-1), "page"),
        (lambda s: s.messages.list("t", per_page=-1), "per_page"),
        (lambda s: s.messages.list("t", order_by="updatedAt"), "order_by"),
        (lambda s: s.messages.list("t", metadata={"a": {"b": 1}}), "metadata"),
        (lambda s: s.messages.list("t", include=[{"id": ""}]), "include[0]"),
        (lambda s: s.messages.list("t", date_range={"start": "soon"}), "date_range"),
        (lambda s: s.messages.save([{"id": "m", "role": "user"}]), "messages[0]"),
        (lambda s: s.messages.get_many("abc"), "ids"),
        (lambda s: s.messages.delete([""]), "ids[0]"),
    ],
)
async def test_bad_arguments_fail_before_any_call(call: Any, field: str) -> None:
    async with ConvexStore("http://127.0.0.1:9", "no-key") as offline:
        with pytest.raises(ValidationError) as error:
            await call(offline)
    assert error.value.field == field


async def test_get_many_keeps_the_order_asked_for(any_store: ConvexStore, uid: str) -> None:
    await seed(any_store, uid, 4)
    got = await any_store.messages.get_many([f"m{n}-{uid}" for n in (2, 0, 9, 3, 2)])
    assert [m.id for m in got] == [f"m{n}-{uid}" for n in (2, 0, 3)]


async def test_update_merges_content_and_metadata_one_level_deeper(
    any_store: ConvexStore, uid: str
) -> None:
    thread_id = (await any_store.threads.save(thread(uid))).id
    await any_store.messages.save(
        [
            {
                **message(uid, thread_id, 0),
                "content": {"parts": [1], "content": "a", "metadata": {"x": 1, "y": {"z": 1}}},
            }
        ]
    )
    [updated] = await any_store.messages.update(
        [
            {
                "id": f"m0-{uid}",
                "role": "assistant",
                "content": {"content": "b", "metadata": {"y": {"w": 2}, "k": 3}},
            }
        ]
    )
    assert updated.role == "assistant"
    assert updated.content.content == "b" and updated.content.parts == [1]
    assert updated.content.metadata == {"x": 1, "y": {"w": 2}, "k": 3}
    [stored] = await any_store.messages.get_many([f"m0-{uid}"])
    assert stored == updated
    assert await any_store.messages.update([{"id": f"missing-{uid}", "role": "user"}]) == []


async def test_totals_stay_exact_after_deletes_and_moves(any_store: ConvexStore, uid: str) -> None:
    a = await seed(any_store, uid, 10, 0)
    b = (await any_store.threads.save(thread(uid, 1))).id
    await any_store.messages.delete([f"m{n}-{uid}" for n in (0, 1, 1, 2)] + [f"missing-{uid}"])
    await any_store.messages.update([{"id": f"m{n}-{uid}", "threadId": b} for n in (3, 4)])
    await any_store.messages.save([{**message(uid, b, 5)}])  # an upsert that moves m5 as well
    assert (await any_store.messages.list(a)).total == 4
    assert ids(await any_store.messages.list(b)) == ["m3", "m4", "m5"]
    assert (await any_store.messages.list_by_resource(f"r-{uid}")).total == 7


async def test_iter_walks_a_thread_one_page_at_a_time(any_store: ConvexStore, uid: str) -> None:
    thread_id = await seed(any_store, uid, 25)
    forward = [m.id async for m in any_store.messages.iter(thread_id, page_size=7)]
    assert forward == [f"m{n}-{uid}" for n in range(25)]
    backward = [m.id async for m in any_store.messages.iter(thread_id, direction="DESC")]
    assert backward == forward[::-1]


async def test_last_message_at_is_kept_where_the_handler_declares_it(
    any_store: ConvexStore, uid: str
) -> None:
    thread_id = await seed(any_store, uid, 2)
    got = await any_store.threads.get(thread_id)
    assert got is not None
    assert (got.last_message_at is not None) == (
        "last_message_at" in await any_store.capabilities()
    )


async def test_many_ids_and_moves_on_either_handler(any_store: ConvexStore, uid: str) -> None:
    # The stock handler's loadMany takes at most 10 ids a call: 55 ids take six of them.
    a = await any_store.threads.save(thread(uid, 0))
    b = await any_store.threads.save(thread(uid, 1))
    await any_store.messages.save([message(uid, a.id, n) for n in range(55)])
    wanted = [f"m{n}-{uid}" for n in range(55)]
    assert [m.id for m in await any_store.messages.get_many(wanted[::-1])] == wanted[::-1]
    updated = await any_store.messages.update(
        [{"id": i, "content": {"metadata": {"seen": True}}} for i in wanted]
    )
    assert len(updated) == 55 and all(m.content.metadata == {"seen": True} for m in updated)

    before = {t.id: await any_store.threads.get(t.id) for t in (a, b)}
    await any_store.messages.update([{"id": wanted[0], "threadId": b.id}])
    for thread_id, old in before.items():  # the thread it left and the one it joined
        now = await any_store.threads.get(thread_id)
        assert old is not None and now is not None and now.updated_at > old.updated_at
    assert ids(await any_store.messages.list(b.id)) == ["m0"]

    before_delete = await any_store.threads.get(a.id)
    await any_store.messages.delete(wanted[1:])
    assert (await any_store.messages.list(a.id)).total == 0
    assert await any_store.messages.get_many(wanted) != []  # m0, now in thread b, is kept
    after_delete = await any_store.threads.get(a.id)
    assert before_delete is not None and after_delete is not None
    assert after_delete.updated_at > before_delete.updated_at


async def test_a_delete_failing_midway_says_which_ids_were_deleted(
    any_store: ConvexStore, uid: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    thread_id = (await any_store.threads.save(thread(uid))).id
    await any_store.messages.save([message(uid, thread_id, n) for n in range(25)])
    wanted = [f"m{n}-{uid}" for n in range(25)]
    step = (await any_store.handler_info()).load_many
    dispatcher = any_store._dispatcher
    real_call = dispatcher.call
    deletes = 0

    async def third_delete_fails(op: str, table: str | None, /, **fields: Any) -> Any:
        nonlocal deletes
        if op in ("deleteMany", "deleteMessages"):
            deletes += 1
            if deletes == 3:
                raise DeploymentUnavailable("connection lost (injected)")
        return await real_call(op, table, **fields)

    monkeypatch.setattr(dispatcher, "call", third_delete_fails)
    info = await any_store.handler_info()
    # Ten ids a call on either handler: a handler declaring loadManyIds 10 gets chunks of 10.
    await redeclare(any_store, limits={**info.limits, "loadManyIds": 10})
    with pytest.raises(PartialWriteError) as raised:
        await any_store.messages.delete(wanted)
    error = raised.value
    assert error.done == wanted[:20] and error.not_done == wanted[20:]
    assert isinstance(error.__cause__, DeploymentUnavailable)
    assert "20 of 25" in str(error) and repr(wanted[20]) in str(error)
    monkeypatch.undo()
    await redeclare(any_store, limits=info.limits)
    assert step == (await any_store.handler_info()).load_many
    left = [m.id for m in await any_store.messages.get_many(wanted)]
    assert left == error.not_done  # exactly the ids it says were not deleted are still there
    await any_store.messages.delete(error.not_done)
    assert await any_store.messages.get_many(wanted) == []


async def test_pop_takes_the_newest_by_created_at_then_insertion(
    any_store: ConvexStore, uid: str
) -> None:
    thread_id = (await any_store.threads.save(thread(uid))).id
    before = (await any_store.threads.get(thread_id)).updated_at  # type: ignore[union-attr]
    # Saved out of order; m2 and m9 share a createdAt, and m9 was saved last.
    late = message(uid, thread_id, 9)
    late["createdAt"] = T0 + timedelta(seconds=2)
    await any_store.messages.save([message(uid, thread_id, n) for n in (2, 0, 1)] + [late])
    popped = [await any_store.messages.pop(thread_id) for _ in range(5)]
    assert [m.id.split("-")[0] if m else None for m in popped] == ["m9", "m2", "m1", "m0", None]
    assert popped[0] is not None and popped[0].content.parts == late["content"]["parts"]
    after = await any_store.threads.get(thread_id)
    assert after is not None and after.updated_at > before
    assert (await any_store.messages.list(thread_id)).items == []
    assert await any_store.messages.pop(f"no-such-thread-{uid}") is None
