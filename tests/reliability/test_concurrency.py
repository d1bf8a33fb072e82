"""Concurrency: many tasks writing to one record or one thread through one store.

- 200 concurrent ``threads.update`` calls on one thread, each adding a distinct metadata key;
  half of the keys start with ``$``, so those updates travel (and are merged) as JSON text.
- 200 concurrent ``resources.update`` calls on one resource that does not exist yet, each adding
  a distinct metadata key and setting the working memory.
- 50 tasks saving messages to one thread, with deliberately equal timestamps.

Nothing may be lost: merges happen inside one mutation on the server, not as read-modify-write
on the client. Listing order is by ``createdAt`` and, for equal timestamps, by insertion, the
same on every read, every page size and in both directions.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import anyio

from convex_mastra import ConvexStore, Message
from tests.reliability.conftest import Results, scaled, thread_record

UPDATES = scaled(200, 2000)
WRITERS = scaled(50, 200)
SAVES_PER_WRITER = 6
T0 = datetime(2026, 5, 1, 8, 0, tzinfo=timezone.utc)


async def test_concurrent_thread_metadata_updates_lose_nothing(
    rstore: ConvexStore, uid: str, results: Results
) -> None:
    thread_id = f"busy-{uid}"
    await rstore.threads.save(thread_record(thread_id, f"r-{uid}", T0, metadata={"seed": True}))
    acknowledged = 0

    async def update(n: int) -> None:
        nonlocal acknowledged
        key = f"$k{n}" if n % 2 else f"k{n}"  # "$" keys cannot be Convex fields: JSON text
        await rstore.threads.update(thread_id, metadata={key: n})
        acknowledged += 1

    async with anyio.create_task_group() as tg:
        for n in range(UPDATES):
            tg.start_soon(update, n)

    stored = await rstore.threads.get(thread_id)
    assert stored is not None and stored.metadata is not None
    expected = {"seed": True} | {(f"$k{n}" if n % 2 else f"k{n}"): n for n in range(UPDATES)}
    missing = sorted(set(expected) - set(stored.metadata))
    assert missing == [], f"{len(missing)} keys lost, e.g. {missing[:5]}"
    assert stored.metadata == expected
    assert stored.updated_at > T0
    results.record(
        "concurrency",
        thread_updates_attempted=UPDATES,
        thread_updates_acknowledged=acknowledged,
        thread_keys_found=len(stored.metadata) - 1,
    )


async def test_concurrent_resource_updates_lose_nothing(
    rstore: ConvexStore, uid: str, results: Results
) -> None:
    resource_id = f"res-{uid}"  # does not exist yet: the first update creates it
    acknowledged = 0

    async def update(n: int) -> None:
        nonlocal acknowledged
        await rstore.resources.update(
            resource_id, working_memory=f"memory {n}", metadata={f"k{n}": n}
        )
        acknowledged += 1

    async with anyio.create_task_group() as tg:
        for n in range(UPDATES):
            tg.start_soon(update, n)

    stored = await rstore.resources.get(resource_id)
    assert stored is not None and stored.metadata is not None
    assert stored.metadata == {f"k{n}": n for n in range(UPDATES)}
    assert stored.working_memory in {f"memory {n}" for n in range(UPDATES)}
    # Created once, not once per racing first writer.
    rows = await rstore._dispatcher.call(
        "queryTable", "mastra_resources", filters=[{"field": "id", "value": resource_id}]
    )
    assert len(rows) == 1
    results.record(
        "concurrency",
        resource_updates_attempted=UPDATES,
        resource_updates_acknowledged=acknowledged,
        resource_keys_found=len(stored.metadata),
        resource_rows=len(rows),
    )


def _message(thread_id: str, writer: int, save: int, part: int) -> dict[str, Any]:
    return {
        "id": f"w{writer}-s{save}-p{part}",
        "thread_id": thread_id,
        "resource_id": "writers",
        "role": "user",
        # Only three distinct timestamps: most messages tie with many others.
        "created_at": T0 + timedelta(seconds=save % 3),
        "content": {"format": 2, "parts": [{"type": "text", "text": f"{writer}/{save}/{part}"}]},
    }


async def test_fifty_writers_on_one_thread(rstore: ConvexStore, uid: str, results: Results) -> None:
    thread_id = f"shared-{uid}"
    await rstore.threads.save(thread_record(thread_id, "writers", T0))
    acknowledged = 0

    async def writer(w: int) -> None:
        nonlocal acknowledged
        for s in range(SAVES_PER_WRITER):  # one after another: each save commits after the last
            await rstore.messages.save([_message(thread_id, w, s, p) for p in range(2)])
            acknowledged += 1

    async with anyio.create_task_group() as tg:
        for w in range(WRITERS):
            tg.start_soon(writer, w)

    total = WRITERS * SAVES_PER_WRITER * 2
    listing = (await rstore.messages.list(thread_id, per_page=None)).items
    assert len(listing) == total
    assert {m.id for m in listing} == {
        f"w{w}-s{s}-p{p}" for w in range(WRITERS) for s in range(SAVES_PER_WRITER) for p in range(2)
    }
    # Sorted by createdAt; among equal timestamps, each writer's messages in the order written.
    assert [m.created_at for m in listing] == sorted(m.created_at for m in listing)
    for w in range(WRITERS):
        for tick in range(3):
            mine = [
                m.id
                for m in listing
                if m.id.startswith(f"w{w}-") and m.created_at == T0 + timedelta(seconds=tick)
            ]
            order = [
                f"w{w}-s{s}-p{p}"
                for s in range(SAVES_PER_WRITER)
                if s % 3 == tick
                for p in range(2)
            ]
            assert mine == order, f"writer {w}: {mine} != {order}"

    # Stable: the same order on every read, every page size, iteration and both directions.
    ids = [m.id for m in listing]
    reads = 1
    for per_page in (7, 37, 100, 1000):
        paged: list[str] = []
        page = 0
        while True:
            got = await rstore.messages.list(thread_id, per_page=per_page, page=page)
            paged += [m.id for m in got.items]
            reads += 1
            if not got.has_more:
                break
            page += 1
        assert paged == ids, f"per_page={per_page} lists another order"
    descending = (await rstore.messages.list(thread_id, per_page=None, direction="DESC")).items
    assert [m.id for m in descending] == ids[::-1]
    iterated: list[Message] = [m async for m in rstore.messages.iter(thread_id, page_size=64)]
    assert [m.id for m in iterated] == ids
    again = (await rstore.messages.list(thread_id, per_page=None)).items
    assert [m.id for m in again] == ids
    reads += 3

    thread = await rstore.threads.get(thread_id)
    assert thread is not None and thread.last_message_at == T0 + timedelta(seconds=2)
    results.record(
        "concurrency",
        message_writers=WRITERS,
        message_saves_attempted=WRITERS * SAVES_PER_WRITER,
        message_saves_acknowledged=acknowledged,
        messages_saved=total,
        messages_found=len(listing),
        listings_compared=reads,
    )
