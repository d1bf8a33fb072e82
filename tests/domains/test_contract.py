"""What @mastra/core 1.71's storage contract added, on our handler and the stock one.

Defaults for ``createdAt``/``updatedAt``, plain-string content, error parts, uncounted listings
(``includeTotal: false``), ``copyThread``'s id map, partial and functional thread updates,
moving a thread to another resource, and runs listed by thread.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from convex_mastra import ConvexStore, Message, Resource, Thread
from convex_mastra.pytest_plugin import Deployment
from tests.conftest import RawHttp
from tests.domains.conftest import date
from tests.domains.test_threads import message, thread
from tests.local.test_ts_client import run_ts_client


def _now() -> datetime:
    return datetime.now(timezone.utc)


# -- defaults ----------------------------------------------------------------------------------


async def test_a_thread_without_times_is_stamped_now(any_store: ConvexStore, uid: str) -> None:
    before = _now() - timedelta(milliseconds=1)
    saved = await any_store.threads.save({"id": f"t-{uid}", "resourceId": f"r-{uid}"})
    after = _now()
    assert before <= saved.created_at <= after
    assert saved.updated_at == saved.created_at
    assert saved.created_at.microsecond % 1000 == 0  # milliseconds, as a JavaScript Date
    got = await any_store.threads.get(f"t-{uid}")
    assert got is not None and got.created_at == saved.created_at
    assert got.updated_at >= saved.created_at


def test_given_times_are_kept_and_updated_at_follows_created_at() -> None:
    when = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=timezone.utc)
    only_created = Thread.model_validate({"id": "t", "resource_id": "r", "created_at": when})
    assert only_created.created_at == only_created.updated_at == when
    both = {"id": "t", "resourceId": "r", "createdAt": when, "updatedAt": when.replace(year=2027)}
    assert Thread.model_validate(both).updated_at.year == 2027
    assert Resource.model_validate({"id": "x", "created_at": when}).updated_at == when
    original = {"id": "t", "resourceId": "r"}
    Thread.model_validate(original)
    assert original == {"id": "t", "resourceId": "r"}  # the caller's dict is not changed


async def test_a_message_without_created_at_or_with_string_content(
    any_store: ConvexStore, uid: str
) -> None:
    thread_id = (await any_store.threads.save(thread(uid))).id
    before = _now() - timedelta(milliseconds=1)
    ids = {"id": f"m-{uid}", "threadId": thread_id, "resourceId": f"r-{uid}"}
    [saved] = await any_store.messages.save([{**ids, "role": "user", "content": "plain words"}])
    assert before <= saved.created_at <= _now()
    [got] = await any_store.messages.get_many([f"m-{uid}"])
    assert got.created_at == saved.created_at
    assert got.content.parts == [{"type": "text", "text": "plain words"}]
    assert got.content.content == "plain words" and got.content.format == 2


ERROR_CONTENT = {
    "format": 2,
    "parts": [
        {"type": "text", "text": "calling the tool"},
        {"type": "error", "error": {"name": "ToolError", "message": "boom"}, "isError": True},
        {"type": "tool-invocation", "toolInvocation": {"state": "result"}, "isError": True},
    ],
}


async def test_error_parts_round_trip_both_ways(any_deployment: Deployment, uid: str) -> None:
    thread_id, resource_id = f"err-{uid}", f"r-{uid}"
    async with ConvexStore(any_deployment.url, any_deployment.admin_key) as store:
        await store.threads.save({"id": thread_id, "resourceId": resource_id})
        mine = {"id": f"py-{uid}", "threadId": thread_id, "resourceId": resource_id}
        await store.messages.save([{**mine, "role": "assistant", "content": ERROR_CONTENT}])
        [saved] = await store.messages.get_many([f"py-{uid}"])
        assert saved.content.model_dump(exclude_none=True) == ERROR_CONTENT

    [written, read] = run_ts_client(
        any_deployment,
        [
            {
                "domain": "memory",
                "method": "saveMessages",
                "args": {
                    "messages": [
                        {
                            "id": f"ts-{uid}",
                            "threadId": thread_id,
                            "resourceId": resource_id,
                            "role": "assistant",
                            "type": "v2",
                            "content": ERROR_CONTENT,
                            "createdAt": date("2026-11-23T09:00:00.000Z"),
                        }
                    ]
                },
            },
            {
                "domain": "memory",
                "method": "listMessagesById",
                "args": {"messageIds": [f"py-{uid}"]},
            },
        ],
    )
    assert "error" not in written, written
    assert read["result"]["messages"][0]["content"] == ERROR_CONTENT, read
    async with ConvexStore(any_deployment.url, any_deployment.admin_key) as store:
        [got] = await store.messages.get_many([f"ts-{uid}"])
        assert got.content.model_dump(exclude_none=True) == ERROR_CONTENT


# -- listings without a total ------------------------------------------------------------------


async def test_include_total_false_pages_by_one_more_row(any_store: ConvexStore, uid: str) -> None:
    thread_id = (await any_store.threads.save(thread(uid))).id
    await any_store.messages.save([message(uid, thread_id, n) for n in range(25)])

    first = await any_store.messages.list(thread_id, per_page=10, include_total=False)
    assert [m.id for m in first.items] == [f"m{n}-{uid}" for n in range(10)]
    assert first.has_more and first.total == 11  # a lower bound: the page and one more
    last = await any_store.messages.list(thread_id, page=2, per_page=10, include_total=False)
    assert [m.id for m in last.items] == [f"m{n}-{uid}" for n in range(20, 25)]
    assert not last.has_more and last.total == 25
    exact = await any_store.messages.list(thread_id, page=1, per_page=10, direction="DESC")
    loose = await any_store.messages.list(
        thread_id, page=1, per_page=10, direction="DESC", include_total=False
    )
    assert loose.items == exact.items and loose.has_more == exact.has_more
    beyond = await any_store.messages.list(thread_id, page=9, per_page=10, include_total=False)
    assert beyond.items == [] and not beyond.has_more and beyond.total == 0
    everything = await any_store.messages.list(thread_id, per_page=None, include_total=False)
    assert len(everything.items) == 25 and not everything.has_more

    # Filtered, several threads, and across a resource: the same window as when counted.
    other = (await any_store.threads.save(thread(uid, 1))).id
    await any_store.messages.save(
        [{**message(uid, other, n), "id": f"o{n}-{uid}"} for n in range(30, 36)]
    )
    for kwargs in (
        {"thread_id": [thread_id, other], "per_page": 7, "page": 3},
        {"thread_id": [thread_id, other], "per_page": 7, "page": 4},
        {"thread_id": thread_id, "date_range": {"start": message(uid, "", 5)["createdAt"]}},
    ):
        counted = await any_store.messages.list(**kwargs)
        uncounted = await any_store.messages.list(**kwargs, include_total=False)
        assert uncounted.items == counted.items and uncounted.has_more == counted.has_more
    by_resource = await any_store.messages.list_by_resource(
        f"r-{uid}", per_page=30, include_total=False
    )
    assert len(by_resource.items) == 30 and by_resource.has_more


async def test_include_total_false_reads_less_when_counting_would_scan(
    store: ConvexStore, convex_deployment: Deployment, uid: str
) -> None:
    thread_id = (await store.threads.save(thread(uid))).id
    rows: list[dict[str, Any]] = []
    for n in range(300):
        row = message(uid, thread_id, n)
        row["content"] = {**row["content"], "metadata": {"kind": "note"}}
        rows.append(row)
    await store.messages.save(rows)
    http = RawHttp(convex_deployment.url, convex_deployment.admin_key)

    def read_since(seq: int) -> int:
        return sum(int(call["documentsRead"]) for call in http.calls_since(seq))

    seq = http.next_seq()
    counted = await store.messages.list(thread_id, per_page=10, metadata={"kind": "note"})
    counted_reads = read_since(seq)
    seq = http.next_seq()
    loose = await store.messages.list(
        thread_id, per_page=10, metadata={"kind": "note"}, include_total=False
    )
    loose_reads = read_since(seq)
    assert loose.items == counted.items and counted.total == 300
    assert loose_reads <= counted_reads - 300, (loose_reads, counted_reads)  # no counting scan


# -- copy ----------------------------------------------------------------------------------------


async def test_copy_returns_the_thread_and_the_id_map_and_clone_is_the_same(
    any_store: ConvexStore, uid: str
) -> None:
    source = await any_store.threads.save(thread(uid))
    await any_store.messages.save([message(uid, source.id, n) for n in range(3)])
    copy = await any_store.threads.copy(source.id, new_thread_id=f"copy-{uid}")
    assert copy.thread.id == f"copy-{uid}"
    assert list(copy.message_id_map) == [f"m{n}-{uid}" for n in range(3)]
    listed = await any_store.messages.list(copy.thread.id)
    assert [m.id for m in listed.items] == list(copy.message_id_map.values())
    clone = await any_store.threads.clone(source.id)
    assert type(clone) is type(copy) and len(clone.message_id_map) == 3


@pytest.mark.parametrize("bad", [{"createdAt": "yesterday"}, {"updatedAt": 5.5j}])
def test_bad_times_are_still_refused(bad: dict[str, Any]) -> None:
    from convex_mastra import ValidationError
    from convex_mastra._models import coerce

    with pytest.raises(ValidationError, match="thread"):
        coerce(Thread, {"id": "t", "resourceId": "r", **bad}, "thread")
    assert Message.model_validate({"id": "m", "role": "user", "content": "x"}).created_at


# -- partial and functional thread updates -----------------------------------------------------


async def test_update_and_patch_leave_what_they_are_not_given(
    any_store: ConvexStore, uid: str
) -> None:
    saved = await any_store.threads.save(thread(uid, metadata={"a": 1, "b": 2}))
    titled = await any_store.threads.patch(saved.id, title="renamed")
    assert titled.title == "renamed" and titled.metadata == {"a": 1, "b": 2}
    merged = await any_store.threads.update(saved.id, metadata={"b": 3, "c": 4})
    assert merged.title == "renamed" and merged.metadata == {"a": 1, "b": 3, "c": 4}
    touched = await any_store.threads.update(saved.id)
    assert touched.title == "renamed" and touched.metadata == merged.metadata
    assert touched.updated_at > merged.updated_at > saved.updated_at


async def test_update_metadata_replaces_with_what_the_function_returns(
    any_store: ConvexStore, uid: str
) -> None:
    saved = await any_store.threads.save(thread(uid, metadata={"keep": 1, "drop": 2}))
    seen: list[Thread] = []

    def update(current: Thread) -> dict[str, Any]:
        seen.append(current)
        return {"keep": current.metadata["keep"] + 1, "$schema": "kept as JSON"}  # type: ignore[index]

    result = await any_store.threads.update_metadata(saved.id, update)
    assert result is not None and result.metadata == {"keep": 2, "$schema": "kept as JSON"}
    assert seen[0].metadata == {"keep": 1, "drop": 2} and result.title == saved.title
    assert (await any_store.threads.get(saved.id)) == result

    async def unchanged(current: Thread) -> None:
        return None

    same = await any_store.threads.update_metadata(saved.id, unchanged)
    assert same == result  # None: nothing written
    assert await any_store.threads.update_metadata(f"missing-{uid}", update) is None
    assert await any_store.threads.update_metadata(saved.id, update, resource_id="other") is None

    from convex_mastra import ValidationError

    with pytest.raises(ValidationError, match="update"):
        await any_store.threads.update_metadata(saved.id, lambda t: ["not", "a", "dict"])  # type: ignore[arg-type,return-value]
    assert (await any_store.threads.get(saved.id)) == result  # nothing written


async def test_update_metadata_loses_none_of_200_concurrent_updates(
    any_store: ConvexStore, uid: str
) -> None:
    import anyio

    saved = await any_store.threads.save(thread(uid, metadata={}))

    async def add(n: int) -> None:
        await any_store.threads.update_metadata(
            saved.id, lambda t: {**(t.metadata or {}), f"k{n}": n}
        )

    async with anyio.create_task_group() as group:
        for n in range(200):
            group.start_soon(add, n)
    final = await any_store.threads.get(saved.id)
    assert final is not None and final.metadata == {f"k{n}": n for n in range(200)}


async def test_update_metadata_across_stores_never_loses_an_update(
    convex_deployment: Deployment, uid: str
) -> None:
    """Two stores (two processes, as far as locks go) race: the handler's conditional write
    sends the loser round again."""
    import anyio

    async with (
        ConvexStore(convex_deployment.url, convex_deployment.admin_key) as one,
        ConvexStore(convex_deployment.url, convex_deployment.admin_key) as two,
    ):
        saved = await one.threads.save(thread(uid, metadata={}))
        calls = 0

        async def add(store: ConvexStore, n: int) -> None:
            def update(current: Thread) -> dict[str, Any]:
                nonlocal calls
                calls += 1
                return {**(current.metadata or {}), f"k{n}": n}

            await store.threads.update_metadata(saved.id, update)

        async with anyio.create_task_group() as group:
            for n in range(60):
                group.start_soon(add, one if n % 2 else two, n)
        final = await one.threads.get(saved.id)
    assert final is not None and final.metadata == {f"k{n}": n for n in range(60)}
    assert calls >= 60


# -- moving a thread to another resource -------------------------------------------------------


async def test_move_gives_the_thread_and_its_messages_the_new_resource(
    any_store: ConvexStore, uid: str
) -> None:
    saved = await any_store.threads.save(thread(uid))
    await any_store.messages.save([message(uid, saved.id, n) for n in range(7)])
    other = (await any_store.threads.save(thread(uid, 1))).id
    await any_store.messages.save([{**message(uid, other, 9), "id": f"other-{uid}"}])

    moved = await any_store.threads.move(saved.id, f"new-{uid}")
    assert moved.resource_id == f"new-{uid}" and moved.created_at == saved.created_at
    assert moved.updated_at > saved.updated_at
    mine = await any_store.messages.list(saved.id, per_page=None)
    assert {m.resource_id for m in mine.items} == {f"new-{uid}"} and mine.total == 7
    by_new = await any_store.messages.list_by_resource(f"new-{uid}", per_page=None)
    assert [m.id for m in by_new.items] == [f"m{n}-{uid}" for n in range(7)]
    by_old = await any_store.messages.list_by_resource(f"r-{uid}", per_page=None)
    assert [m.id for m in by_old.items] == [f"other-{uid}"]  # another thread's stay
    listed = await any_store.threads.list(resource_id=f"new-{uid}")
    assert [t.id for t in listed.items] == [saved.id]

    assert await any_store.threads.move(saved.id, f"new-{uid}") == moved  # no-op
    from convex_mastra import NotFoundError

    with pytest.raises(NotFoundError):
        await any_store.threads.move(f"missing-{uid}", f"new-{uid}")


async def test_move_of_a_thread_past_one_transaction_is_whole(
    convex_test_deployment: Deployment, uid: str
) -> None:
    """20,000 messages: more than Convex's 16,000 writes per transaction. On a deployment of its
    own: the emulator's index lookups scan tables, so these rows would slow every later test."""
    deployment = convex_test_deployment
    async with ConvexStore(deployment.url, deployment.admin_key) as store:
        await _move_20_000(store, deployment, uid)


async def _move_20_000(store: ConvexStore, deployment: Deployment, uid: str) -> None:
    from tests.conftest import import_rows

    thread_id, old = f"big-{uid}", f"r-{uid}"
    await store.threads.save({"id": thread_id, "resourceId": old})
    import_rows(
        deployment,
        "mastra_messages",
        [
            {
                "id": f"m{n:05d}-{uid}",
                "thread_id": thread_id,
                "resourceId": old,
                "role": "user",
                "type": "v2",
                "content": '{"format":2,"parts":[]}',
                "createdAt": f"2026-11-23T09:{n // 6000:02d}:{n // 100 % 60:02d}.{n % 100:03d}Z",
            }
            for n in range(20_000)
        ],
    )
    await store.rebuild_counters()
    http = RawHttp(deployment.url, deployment.admin_key)
    seq = http.next_seq()
    moved = await store.threads.move(thread_id, f"new-{uid}")
    calls = http.calls_since(seq)
    writes = [int(c["documentsWritten"]) for c in calls if c.get("op") == "moveThread"]
    assert moved.resource_id == f"new-{uid}"
    assert len(writes) >= 40 and max(writes) < 16_000
    assert (await store.messages.list_by_resource(f"new-{uid}", per_page=1)).total == 20_000
    assert (await store.messages.list_by_resource(old, per_page=1)).total == 0


async def test_a_failed_move_is_undone(
    store: ConvexStore, convex_deployment: Deployment, uid: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from convex_mastra import DeploymentUnavailable

    saved = await store.threads.save(thread(uid))
    await store.messages.save([message(uid, saved.id, n) for n in range(12)])
    monkeypatch.setattr("convex_mastra._handlers.MOVE_BATCH", 5)
    real_send = store._dispatcher.send
    sent = 0

    async def fail_third_batch(op: str, table: str | None, /, **fields: Any) -> Any:
        nonlocal sent
        if op == "moveThread" and fields["resourceId"] == f"new-{uid}":
            sent += 1
            if sent == 3:
                raise DeploymentUnavailable("the network went away")
        return await real_send(op, table, **fields)

    monkeypatch.setattr(store._dispatcher, "send", fail_third_batch)
    with pytest.raises(DeploymentUnavailable):
        await store.threads.move(saved.id, f"new-{uid}")
    after = await store.threads.get(saved.id)
    assert after is not None and after.resource_id == f"r-{uid}"
    listed = await store.messages.list(saved.id, per_page=None)
    assert {m.resource_id for m in listed.items} == {f"r-{uid}"}
    assert (await store.messages.list_by_resource(f"new-{uid}")).total == 0


# -- runs by thread ----------------------------------------------------------------------------


def _snapshot(
    run_id: str,
    *,
    suspended_in: str | None = None,
    durable: str | None = None,
    status: str = "running",
) -> dict[str, Any]:
    context: dict[str, Any] = {}
    if durable is not None:
        context["input"] = {"messageListState": {"memoryInfo": {"threadId": durable}}}
    if suspended_in is not None:
        context["agentic-step"] = {
            "status": "suspended",
            "suspendPayload": {
                "__streamState": {"messageList": {"memoryInfo": {"threadId": suspended_in}}}
            },
        }
    return {"runId": run_id, "status": status, "value": {}, "context": context, "timestamp": 1}


async def test_list_runs_by_thread_finds_both_places_mastra_keeps_it(
    any_store: ConvexStore, uid: str
) -> None:
    wf = f"wf-{uid}"
    runs = {
        "loop": _snapshot("loop", suspended_in=f"t-{uid}"),
        "durable": _snapshot("durable", durable=f"t-{uid}", status="success"),
        # The suspended step names another thread: the durable place no longer counts.
        "shadowed": _snapshot("shadowed", suspended_in=f"x-{uid}", durable=f"t-{uid}"),
        "other": _snapshot("other", durable=f"x-{uid}"),
        "none": _snapshot("none"),
    }
    for n, (run_id, snap) in enumerate(runs.items()):
        await any_store.workflows.persist_snapshot(
            wf, run_id, snap, created_at=datetime(2026, 1, 1, 0, n, tzinfo=timezone.utc)
        )
    mine = await any_store.workflows.list_runs(workflow_name=wf, thread_id=f"t-{uid}")
    assert [r.run_id for r in mine.items] == ["durable", "loop"] and mine.total == 2
    done = await any_store.workflows.list_runs(
        workflow_name=wf, thread_id=f"t-{uid}", status="success"
    )
    assert [r.run_id for r in done.items] == ["durable"] and done.total == 1
    paged = await any_store.workflows.list_runs(
        workflow_name=wf, thread_id=f"t-{uid}", per_page=1, page=1
    )
    assert [r.run_id for r in paged.items] == ["loop"] and paged.total == 2
    other = await any_store.workflows.list_runs(thread_id=f"x-{uid}")
    assert sorted(r.run_id for r in other.items) == ["other", "shadowed"]
