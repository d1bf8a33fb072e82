"""Rank trees stay exact under mixed writes: every page equals the index's own order.

Pages through a rank tree (``pageByRank``) are checked against a full listing
(``per_page=None``), which walks the real index and never uses a tree. The writes are random
but seeded: batches of messages with many equal timestamps (so pages start inside runs of
ties), deletes, moves between threads, thread deletes, and messages that move threads'
``updatedAt`` (a sort value of the resource's thread tree). Trees have 64 values per leaf, so a
few hundred rows already exercise splits, merges of empty nodes and root changes.
"""

from __future__ import annotations

import logging
import random
from datetime import timedelta
from typing import Any

import pytest

from convex_mastra import ConvexStore
from convex_mastra.pytest_plugin import Deployment
from tests.conftest import RawHttp, import_rows
from tests.domains.test_threads import T0


def msg(uid: str, n: int, thread_id: str, rng: random.Random) -> dict[str, Any]:
    return {
        "id": f"m{n}-{uid}",
        "threadId": thread_id,
        "resourceId": f"r-{uid}",
        "role": "user",
        # 120 distinct instants for hundreds of messages: long runs of equal createdAt.
        "createdAt": T0 + timedelta(seconds=rng.randrange(120)),
        "content": {"format": 2, "parts": [{"type": "text", "text": str(n)}]},
    }


async def check_message_pages(store: ConvexStore, http: RawHttp, thread_id: str) -> int:
    for direction in ("ASC", "DESC"):
        everything = await store.messages.list(thread_id, per_page=None, direction=direction)
        ids = [m.id for m in everything.items]
        for per_page in (7, 40):
            for page_no in range(len(ids) // per_page + 1):
                seq = http.next_seq()
                page = await store.messages.list(
                    thread_id, page=page_no, per_page=per_page, direction=direction
                )
                calls = http.calls_since(seq)
                assert [m.id for m in page.items] == ids[
                    page_no * per_page : (page_no + 1) * per_page
                ], (thread_id, direction, per_page, page_no)
                assert page.total == len(ids)
                assert len(calls) == 1, "served by the rank tree"
                # The page, its ties and a few tree nodes, never the rows before it.
                assert calls[0]["documentsRead"] <= per_page + 64 + 12
    return len(ids)


async def check_date_ranges(
    store: ConvexStore, thread_id: str, rng: random.Random, rounds: int = 6
) -> None:
    everything = (await store.messages.list(thread_id, per_page=None)).items
    for _ in range(rounds):
        a, b = sorted(rng.sample(range(121), 2))
        start, end = T0 + timedelta(seconds=a), T0 + timedelta(seconds=b)
        start_exclusive, end_exclusive = rng.random() < 0.5, rng.random() < 0.5
        inside = [
            m.id
            for m in everything
            if (m.created_at > start if start_exclusive else m.created_at >= start)
            and (m.created_at < end if end_exclusive else m.created_at <= end)
        ]
        dates = {
            "start": start,
            "end": end,
            "startExclusive": start_exclusive,
            "endExclusive": end_exclusive,
        }
        for direction in ("ASC", "DESC"):
            expected = inside if direction == "ASC" else inside[::-1]
            for page_no in range(len(inside) // 9 + 1):
                page = await store.messages.list(
                    thread_id, page=page_no, per_page=9, date_range=dates, direction=direction
                )
                assert page.total == len(inside)
                assert [m.id for m in page.items] == expected[page_no * 9 : page_no * 9 + 9]


async def test_message_pages_stay_exact_under_mixed_writes(
    store: ConvexStore, convex_deployment: Deployment, uid: str
) -> None:
    rng = random.Random(20261123)
    http = RawHttp(convex_deployment.url, convex_deployment.admin_key)
    a = await store.threads.save(
        {"id": f"a-{uid}", "resourceId": f"r-{uid}", "createdAt": T0, "updatedAt": T0}
    )
    b = await store.threads.save(
        {"id": f"b-{uid}", "resourceId": f"r-{uid}", "createdAt": T0, "updatedAt": T0}
    )
    live: dict[str, str] = {}  # message id -> thread id
    n = 0
    for _ in range(25):
        batch = []
        for _ in range(rng.randrange(1, 40)):
            target = a.id if rng.random() < 0.8 else b.id
            batch.append(msg(uid, n, target, rng))
            live[f"m{n}-{uid}"] = target
            n += 1
        await store.messages.save(batch)
        if rng.random() < 0.5 and live:
            gone = rng.sample(sorted(live), min(len(live), rng.randrange(1, 15)))
            await store.messages.delete(gone)
            for message_id in gone:
                del live[message_id]
        if rng.random() < 0.4 and live:
            moved = rng.sample(sorted(live), min(len(live), rng.randrange(1, 10)))
            for message_id in moved:
                live[message_id] = b.id if live[message_id] == a.id else a.id
            await store.messages.update([{"id": i, "threadId": live[i]} for i in moved])

    counted = await check_message_pages(store, http, a.id)
    counted += await check_message_pages(store, http, b.id)
    assert counted == len(live)
    await check_date_ranges(store, a.id, rng)

    # A rebuild throws the trees away and builds them again from the rows.
    await store.rebuild_counters(force=True)
    await check_message_pages(store, http, a.id)

    # Emptying a thread removes its tree; it grows again from nothing.
    await store.messages.delete([i for i, t in live.items() if t == b.id])
    assert (await store.messages.list(b.id, page=3, per_page=5)).items == []
    await store.messages.save([msg(uid, n + k, b.id, rng) for k in range(3)])
    assert await check_message_pages(store, http, b.id) == 3


async def test_thread_pages_stay_exact_as_threads_are_touched(
    store: ConvexStore, convex_deployment: Deployment, uid: str
) -> None:
    rng = random.Random(7)
    http = RawHttp(convex_deployment.url, convex_deployment.admin_key)
    resource = f"r-{uid}"
    threads = [
        {
            "id": f"t{k}-{uid}",
            "resourceId": resource,
            # 40 distinct instants for 150 threads: ties in createdAt too.
            "createdAt": T0 + timedelta(minutes=rng.randrange(40)),
        }
        for k in range(150)
    ]
    for thread in threads:
        thread["updatedAt"] = thread["createdAt"]
        await store.threads.save(thread)
    # Each message save moves its thread's updatedAt, reordering the updatedAt tree.
    for n in range(60):
        target = rng.choice(threads)["id"]
        await store.messages.save([msg(uid, n, target, rng)])
    for k in rng.sample(range(150), 20):
        await store.threads.delete(f"t{k}-{uid}")

    for order_by in ("createdAt", "updatedAt"):
        for direction in ("ASC", "DESC"):
            everything = await store.threads.list(
                resource_id=resource, per_page=None, order_by=order_by, direction=direction
            )
            ids = [t.id for t in everything.items]
            assert len(ids) == 130
            for page_no in range(len(ids) // 20 + 1):
                seq = http.next_seq()
                page = await store.threads.list(
                    resource_id=resource,
                    page=page_no,
                    per_page=20,
                    order_by=order_by,
                    direction=direction,
                )
                calls = http.calls_since(seq)
                assert [t.id for t in page.items] == ids[page_no * 20 : page_no * 20 + 20], (
                    order_by,
                    direction,
                    page_no,
                )
                assert page.total == 130
                assert len(calls) == 1 and calls[0]["documentsRead"] <= 20 + 64 + 12


async def test_counters_from_before_rank_trees_are_upgraded_by_one_rebuild(
    convex_test_deployment: Deployment, uid: str, caplog: pytest.LogCaptureFixture
) -> None:
    # A deployment counted by a version of the functions that kept no rank trees: READY
    # counters and exact totals, but no "#ranks" row and no tree nodes.
    dep = convex_test_deployment
    n = 300
    when = [(T0 + timedelta(seconds=k)).isoformat().replace("+00:00", "Z") for k in range(n)]
    import_rows(
        dep,
        "mastra_threads",
        [{"id": "t", "resourceId": "r", "title": "", "createdAt": when[0], "updatedAt": when[0]}],
    )
    import_rows(
        dep,
        "mastra_messages",
        [
            {
                "id": f"m{k:03d}",
                "thread_id": "t",
                "resourceId": "r",
                "role": "user",
                "type": "v2",
                "content": "{}",
                "createdAt": when[k],
            }
            for k in range(n)
        ],
    )
    counters = {
        "mastra_threads": {"*": 1, '{"resourceId":"r"}': 1},
        "mastra_messages": {
            '{"thread_id":"t"}': n,
            '{"resourceId":"r"}': n,
            '{"thread_id":"t","resourceId":"r"}': n,
        },
    }
    import_rows(
        dep,
        "mastra_counters",
        [
            {"table": table, "group": group, "count": count}
            for table, groups in counters.items()
            for group, count in {**groups, "#state": 1}.items()
        ],
    )
    http = RawHttp(dep.url, dep.admin_key)
    expected = [f"m{k:03d}" for k in range(140, 160)]
    async with ConvexStore(dep.url, dep.admin_key) as store:
        seq = http.next_seq()
        with caplog.at_level(logging.WARNING, logger="convex_mastra.paging"):
            page = await store.messages.list("t", page=7, per_page=20)
        # Right, by reading the rows before the page, and the SDK says why.
        assert [m.id for m in page.items] == expected and page.total == n
        assert sum(int(c["documentsRead"]) for c in http.calls_since(seq)) > 140
        assert "rebuild_counters()" in caplog.text

        await store.rebuild_counters()  # unforced: trees missing is reason enough

        seq = http.next_seq()
        page = await store.messages.list("t", page=7, per_page=20)
        calls = http.calls_since(seq)
        assert [m.id for m in page.items] == expected and page.total == n
        assert len(calls) == 1 and int(calls[0]["documentsRead"]) <= 20 + 12
