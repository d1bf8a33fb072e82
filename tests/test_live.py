"""store.messages.watch against a real local deployment: live over the sync protocol."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from convex_mastra import (
    AuthenticationError,
    ConvexServerCache,
    ConvexStore,
    LocalDeployment,
    Message,
    NotFoundError,
)
from convex_mastra.pytest_plugin import Deployment
from tests.conftest import RawHttp, import_rows
from tests.domains.test_threads import message, thread

LIVE_PATHS = ("mastra/live:messages", "mastra/live.js:messages")


async def until(condition: Callable[[], bool], what: str, seconds: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


def live_subscriptions(deployment: Deployment | LocalDeployment) -> list[dict[str, Any]]:
    raw = RawHttp(deployment.url, deployment.admin_key)
    with raw.session:
        return raw.subscriptions()


def watchers_of(deployment: Deployment | LocalDeployment, thread_id: str) -> int:
    return sum(
        1
        for s in live_subscriptions(deployment)
        if s["udfPath"] in LIVE_PATHS and s["args"].get("threadId") == thread_id
    )


async def collect(watch: Any, into: list[Message]) -> None:
    async for m in watch:
        into.append(m)


async def test_saved_messages_then_new_ones_each_once_in_order(
    store: ConvexStore, uid: str
) -> None:
    thread_id = (await store.threads.save(thread(uid))).id
    await store.messages.save([message(uid, thread_id, n) for n in range(3)])
    seen: list[Message] = []
    consumer = asyncio.create_task(collect(store.messages.watch(thread_id), seen))
    try:
        await until(lambda: len(seen) == 3, "the saved messages")
        for n in range(3, 8):
            await store.messages.save([message(uid, thread_id, n)])
        await store.messages.save([message(uid, thread_id, n) for n in range(8, 11)])
        await until(lambda: len(seen) == 11, "the new messages")
        await asyncio.sleep(0.2)  # nothing more, nothing twice
        assert [m.id for m in seen] == [f"m{n}-{uid}" for n in range(11)]
        assert seen[4].content.parts == [{"type": "text", "text": "message 4"}]
        assert all(m.thread_id == thread_id for m in seen)
    finally:
        consumer.cancel()


async def test_a_changed_or_moved_message_comes_again_once_and_deletions_leave_no_gap(
    store: ConvexStore, uid: str
) -> None:
    thread_id = (await store.threads.save(thread(uid))).id
    other = (await store.threads.save(thread(f"other-{uid}"))).id
    await store.messages.save([message(uid, thread_id, n) for n in range(3)])
    await store.messages.save([message(f"x-{uid}", other, 0)])
    seen: list[Message] = []
    watch = store.messages.watch(thread_id)
    consumer = asyncio.create_task(collect(watch, seen))
    try:
        await until(lambda: len(seen) == 3, "the saved messages")
        # Changed through update, and through a save of the whole message.
        await store.messages.update([{"id": f"m0-{uid}", "content": {"metadata": {"v": 2}}}])
        changed = message(uid, thread_id, 1)
        changed["content"]["parts"] = [{"type": "text", "text": "edited"}]
        await store.messages.save([changed])
        # Saved again as it is: nothing to see again.
        await store.messages.save([message(uid, thread_id, 2)])
        # Moved in from another thread.
        await store.messages.update([{"id": f"m0-x-{uid}", "thread_id": thread_id}])
        # The newest is deleted, then one more saved: the thread's counter outlives the row,
        # so the new message is not given the deleted one's place (which the cursor passed).
        await until(lambda: len(seen) == 6, "the changed and moved messages")
        await store.messages.delete([f"m0-x-{uid}"])
        await store.messages.save([message(uid, thread_id, 3)])
        await until(lambda: len(seen) == 7, "the message after the deletion")
        await asyncio.sleep(0.2)  # nothing more, nothing twice
        ids = [m.id for m in seen]
        assert ids == [f"m{n}-{uid}" for n in range(3)] + [
            f"m0-{uid}",
            f"m1-{uid}",
            f"m0-x-{uid}",
            f"m3-{uid}",
        ]
        assert seen[3].content.metadata == {"v": 2}
        assert seen[4].content.parts == [{"type": "text", "text": "edited"}]
        assert seen[5].thread_id == thread_id
        cursor = watch.cursor
    finally:
        consumer.cancel()
    # Resumed from the cursor, a new watch yields what came after it and nothing before.
    assert cursor is not None and cursor.startswith("cm2:")
    await store.messages.update([{"id": f"m2-{uid}", "role": "assistant"}])
    async with store.messages.watch(thread_id, after=cursor) as resumed:
        again = await anext(resumed)
    assert (again.id, again.role) == (f"m2-{uid}", "assistant")


async def test_rows_stored_before_write_order_come_first_then_the_rest(
    store: ConvexStore, convex_deployment: Deployment, uid: str
) -> None:
    thread_id = (await store.threads.save(thread(uid))).id
    # Rows as another writer (the stock handler, an import) leaves them: no writeSeq.
    import_rows(
        convex_deployment,
        "mastra_messages",
        [
            {
                "id": f"old{n}-{uid}",
                "thread_id": thread_id,
                "content": f'{{"format":2,"parts":[{{"type":"text","text":"old {n}"}}]}}',
                "role": "user",
                "type": "v2",
                "createdAt": f"2024-01-0{n + 1}T00:00:00.000Z",
                "resourceId": f"r-{uid}",
            }
            for n in range(3)
        ],
    )
    await store.messages.save([message(uid, thread_id, n) for n in range(2)])
    expected = [f"old{n}-{uid}" for n in range(3)] + [f"m{n}-{uid}" for n in range(2)]
    cursors: list[str | None] = []
    async with store.messages.watch(thread_id) as watch:
        for _ in expected:
            cursors.append((await anext(watch), watch.cursor)[1])
        # An old row that changes gets its place in the write order: it comes again.
        await store.messages.update([{"id": f"old0-{uid}", "role": "assistant"}])
        assert (await anext(watch)).id == f"old0-{uid}"
    assert cursors[1] is not None and cursors[1].startswith("cm1:")
    assert cursors[3] is not None and cursors[3].startswith("cm2:")
    for after in (cursors[1], f"old1-{uid}"):
        async with store.messages.watch(thread_id, after=after) as resumed:
            assert [(await anext(resumed)).id for _ in range(3)] == [
                f"old2-{uid}",
                f"m0-{uid}",
                f"m1-{uid}",
            ]


async def test_a_long_thread_is_read_a_page_at_a_time(store: ConvexStore, uid: str) -> None:
    thread_id = (await store.threads.save(thread(uid))).id
    await store.messages.save([message(uid, thread_id, n) for n in range(250)])
    seen: list[Message] = []
    async with store.messages.watch(thread_id) as watch:
        async for m in watch:
            seen.append(m)
            if len(seen) == 250:
                await store.messages.save([message(uid, thread_id, 250)])
            if len(seen) == 251:
                break
    assert [m.id for m in seen] == [f"m{n}-{uid}" for n in range(251)]


async def test_resumes_after_a_cursor_or_a_message_id(store: ConvexStore, uid: str) -> None:
    thread_id = (await store.threads.save(thread(uid))).id
    await store.messages.save([message(uid, thread_id, n) for n in range(6)])
    first = store.messages.watch(thread_id)
    assert first.cursor is None
    got = [await anext(first) for _ in range(4)]
    assert [m.id for m in got] == [f"m{n}-{uid}" for n in range(4)]
    cursor = first.cursor
    assert cursor is not None
    await first.aclose()
    await store.messages.save([message(uid, thread_id, 6)])

    again = store.messages.watch(thread_id, after=cursor)
    assert [(await anext(again)).id for _ in range(3)] == [f"m{n}-{uid}" for n in (4, 5, 6)]
    await again.aclose()
    by_id = store.messages.watch(thread_id, after=f"m2-{uid}")
    assert [(await anext(by_id)).id for _ in range(4)] == [f"m{n}-{uid}" for n in (3, 4, 5, 6)]
    await by_id.aclose()

    with pytest.raises(NotFoundError, match="no message 'nope'"):
        await anext(store.messages.watch(thread_id, after="nope"))


async def test_leaving_a_watch_removes_its_subscription(
    store: ConvexStore, convex_deployment: Deployment, uid: str
) -> None:
    thread_id = (await store.threads.save(thread(uid))).id
    await store.messages.save([message(uid, thread_id, 0)])
    async with store.messages.watch(thread_id) as watch:
        async for _ in watch:
            assert watchers_of(convex_deployment, thread_id) == 1
            break
    assert watchers_of(convex_deployment, thread_id) == 0

    # `break` without `async with`: dropping the watch removes it.
    async for _ in store.messages.watch(thread_id):
        break
    await until(lambda: watchers_of(convex_deployment, thread_id) == 0, "the removal")

    # A cancelled consumer: the same.
    seen: list[Message] = []
    consumer = asyncio.create_task(collect(store.messages.watch(thread_id), seen))
    await until(lambda: len(seen) == 1, "the first message")
    consumer.cancel()
    await asyncio.gather(consumer, return_exceptions=True)
    await until(lambda: watchers_of(convex_deployment, thread_id) == 0, "the removal")


async def test_a_wrong_admin_key_is_refused_clearly(convex_deployment: Deployment) -> None:
    async with ConvexStore(convex_deployment.url, "not-the-admin-key") as store:
        with pytest.raises(AuthenticationError, match="refused the credentials") as caught:
            await anext(store.messages.watch("t-any"))
        assert "not-the-admin-key" not in str(caught.value)


async def test_watchers_survive_a_restart_and_see_every_acknowledged_message_once() -> None:
    with LocalDeployment() as local:
        async with ConvexStore(local.url, local.admin_key) as store:
            uid = "restart"
            thread_id = (await store.threads.save(thread(uid))).id
            watchers = [store.messages.watch(thread_id) for _ in range(50)]
            seen: list[list[Message]] = [[] for _ in watchers]
            consumers = [
                asyncio.create_task(collect(w, s)) for w, s in zip(watchers, seen, strict=True)
            ]
            acknowledged: list[str] = []

            async def write() -> None:
                for n in range(60):
                    try:
                        await store.messages.save([message(uid, thread_id, n)])
                    except Exception:  # a save that may or may not have committed: not counted
                        continue
                    acknowledged.append(f"m{n}-{uid}")
                    await asyncio.sleep(0.005)

            writer = asyncio.create_task(write())
            try:
                await until(lambda: len(acknowledged) >= 15, "some saves")
                # Off the loop, so the writer and the watchers run through the kill and restart.
                await asyncio.to_thread(local.kill)
                await asyncio.to_thread(local.start)  # same port and data directory
                await writer
                assert len(acknowledged) > 30
                await until(
                    lambda: all(set(acknowledged) <= {m.id for m in s} for s in seen),
                    "every acknowledged message, on every watcher",
                    seconds=30,
                )
                for s in seen:
                    ids = [m.id for m in s]
                    assert len(ids) == len(set(ids)), "a message yielded twice"
                    assert [i for i in ids if i in acknowledged] == acknowledged
            finally:
                for c in consumers:
                    c.cancel()


async def test_a_run_is_yielded_as_it_changes_until_it_finishes(
    store: ConvexStore, convex_deployment: Deployment, uid: str
) -> None:
    from tests.domains.test_workflows import snapshot

    name, run_id = f"wf-{uid}", f"run-{uid}"
    statuses: list[str | None] = []

    async def follow() -> None:
        # Started before the run exists: it waits for it.
        async for run in store.workflows.watch(name, run_id):
            assert run.workflow_name == name and run.run_id == run_id
            statuses.append(getattr(run.snapshot, "status", None))

    consumer = asyncio.create_task(follow())
    await until(lambda: watchers_of_run(convex_deployment, run_id) == 1, "the subscription")
    await store.workflows.persist_snapshot(name, run_id, snapshot(run_id, "running"))
    await until(lambda: statuses == ["running"], "the new run")
    await store.workflows.update_state(name, run_id, status="suspended")
    await until(lambda: statuses[-1:] == ["suspended"], "the suspension")
    await store.workflows.update_state(name, run_id, status="success")
    await asyncio.wait_for(consumer, 15)  # the loop ends after a terminal status
    assert statuses == ["running", "suspended", "success"]
    await until(lambda: watchers_of_run(convex_deployment, run_id) == 0, "the removal")

    # A finished run: yielded once, then the loop ends.
    assert [r.run_id async for r in store.workflows.watch(name, run_id)] == [run_id]

    # A run deleted while watched ends the loop.
    other = f"other-{uid}"
    await store.workflows.persist_snapshot(name, other, snapshot(other, "running"))
    seen = []
    async for run in store.workflows.watch(name, other):
        seen.append(run.run_id)
        await store.workflows.delete_run(other, name)
    assert seen == [other]


def watchers_of_run(deployment: Deployment, run_id: str) -> int:
    return sum(1 for s in live_subscriptions(deployment) if s["args"].get("runId") == run_id)


async def test_a_cache_list_is_yielded_as_it_is_pushed(
    convex_deployment: Deployment, uid: str
) -> None:
    async with ConvexServerCache(
        convex_deployment.url, convex_deployment.admin_key, key_prefix=f"live:{uid}:"
    ) as cache:
        await cache.list_push_many("stream", [{"chunk": n} for n in range(150)])
        seen: list[Any] = []
        watch = cache.watch_list("stream")
        consumer = asyncio.create_task(collect(watch, seen))
        try:
            await until(lambda: len(seen) == 150, "the items already pushed")
            for n in range(150, 155):
                await cache.list_push("stream", {"chunk": n})
            await until(lambda: len(seen) == 155, "the new items")
            await asyncio.sleep(0.2)
            assert seen == [{"chunk": n} for n in range(155)]
            assert watch.index == 155
        finally:
            consumer.cancel()

        # From an index: the rest of the list, then what comes next.
        later = cache.watch_list("stream", start=153)
        assert [await anext(later) for _ in range(2)] == [{"chunk": 153}, {"chunk": 154}]
        await cache.list_push("stream", "last")
        assert await anext(later) == "last"
        await later.aclose()


async def test_messages_saved_by_the_typescript_client_are_yielded(
    store: ConvexStore, convex_deployment: Deployment, uid: str
) -> None:
    from tests.domains.conftest import date
    from tests.local.test_ts_client import run_ts_client

    thread_id = f"ts-live-{uid}"
    seen: list[Message] = []
    consumer = asyncio.create_task(collect(store.messages.watch(thread_id), seen))
    when = "2026-11-23T09:00:00.000Z"
    calls = [
        {
            "domain": "memory",
            "method": "saveThread",
            "args": {
                "thread": {
                    "id": thread_id,
                    "resourceId": f"r-{uid}",
                    "title": "from TypeScript",
                    "createdAt": date(when),
                    "updatedAt": date(when),
                }
            },
        },
        {
            "domain": "memory",
            "method": "saveMessages",
            "args": {
                "messages": [
                    {
                        "id": f"ts-m{n}-{uid}",
                        "threadId": thread_id,
                        "resourceId": f"r-{uid}",
                        "role": "user",
                        "type": "v2",
                        "createdAt": date(f"2026-11-23T09:00:0{n}.000Z"),
                        "content": {"format": 2, "parts": [{"type": "text", "text": f"ts {n}"}]},
                    }
                    for n in range(2)
                ]
            },
        },
    ]
    try:
        await until(lambda: watchers_of(convex_deployment, thread_id) == 1, "the subscription")
        await asyncio.to_thread(run_ts_client, convex_deployment, calls)
        await until(lambda: len(seen) == 2, "the TypeScript client's messages")
        assert [m.id for m in seen] == [f"ts-m0-{uid}", f"ts-m1-{uid}"]
        assert [m.content.parts[0]["text"] for m in seen] == ["ts 0", "ts 1"]
    finally:
        consumer.cancel()


async def test_a_rerun_reads_the_page_after_the_cursor_not_the_thread(
    store: ConvexStore, convex_deployment: Deployment, uid: str
) -> None:
    thread_id = (await store.threads.save(thread(uid))).id
    await store.messages.save([message(uid, thread_id, n) for n in range(300)])
    watch = store.messages.watch(thread_id)
    for _ in range(295):
        await anext(watch)
    cursor = watch.cursor
    await watch.aclose()
    assert cursor is not None
    raw = RawHttp(convex_deployment.url, convex_deployment.admin_key)
    with raw.session:

        def read(args: dict[str, Any]) -> tuple[int, int]:
            """(messages answered, documents read) of one run of the watched query."""
            seq = raw.next_seq()
            status, body = raw.post("query", "mastra/live:messages", args)
            assert status == 200 and body["status"] == "success", body
            [call] = raw.calls_since(seq)
            return len(body["value"]["rows"]), int(call["documentsRead"])

        # What the subscription re-runs after each commit: the 5 messages after the cursor.
        after = float(cursor.removeprefix("cm2:"))
        assert read({"threadId": thread_id, "afterSeq": after}) == (5, 5)
        # From the start: one page of 100, not the 300-message thread.
        assert read({"threadId": thread_id}) == (100, 100)
        # After a message id: its lookup, then the page.
        assert read({"threadId": thread_id, "afterId": f"m298-{uid}"}) == (1, 2)
