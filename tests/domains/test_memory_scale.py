"""A 25,000-message thread: listed completely, and its pages cost about their size.

Runs on its own deployment (convex-test scans a whole table on every lookup, so a big table
would slow every other test sharing the session deployment). Seeded with POST /_local/import;
costs are the deployment's own per-call stats.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
import pytest_asyncio

from convex_mastra import ConvexStore
from convex_mastra.pytest_plugin import Deployment
from tests.conftest import RawHttp, import_rows
from tests.domains.test_threads import T0

N = 25_000
THREAD = "big-thread"
RESOURCE = "big-resource"


def iso(n: int) -> str:
    # Every fifth pair of messages shares a timestamp, to exercise the tie-break.
    when = T0 + timedelta(milliseconds=n - (n % 2 if n % 10 == 1 else 0))
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@pytest.fixture(scope="module")
def seeded(convex_module_deployment: Deployment) -> Deployment:
    import_rows(
        convex_module_deployment,
        "mastra_threads",
        [
            {
                "id": THREAD,
                "resourceId": RESOURCE,
                "title": "big",
                "metadata": {},
                "createdAt": iso(0),
                "updatedAt": iso(N),
                "lastMessageAt": iso(N - 1),
            }
        ],
    )
    import_rows(
        convex_module_deployment,
        "mastra_messages",
        [
            {
                "id": f"m{n:05d}",
                "thread_id": THREAD,
                "content": f'{{"format":2,"parts":[{{"type":"text","text":"{n}"}}]}}',
                "role": "user",
                "type": "v2",
                "createdAt": iso(n),
                "resourceId": RESOURCE,
            }
            for n in range(N)
        ],
    )
    return convex_module_deployment


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def big(seeded: Deployment) -> AsyncIterator[ConvexStore]:
    async with ConvexStore(seeded.url, seeded.admin_key) as store:
        await store.rebuild_counters()
        yield store


def cost(http: RawHttp, seq: int) -> tuple[int, int]:
    """(documents read, calls) since ``seq``."""
    calls = http.calls_since(seq)
    return sum(int(c["documentsRead"]) for c in calls), len(calls)


@pytest.fixture
def http(seeded: Deployment) -> RawHttp:
    return RawHttp(seeded.url, seeded.admin_key)


pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_the_last_page_reads_about_its_size(big: ConvexStore, http: RawHttp) -> None:
    seq = http.next_seq()
    page = await big.messages.list(THREAD, page=N // 40 - 1, per_page=40)
    read, calls = cost(http, seq)
    assert [m.id for m in page.items] == [f"m{n:05d}" for n in range(N - 40, N)]
    assert page.total == N and not page.has_more
    assert read <= 100, read
    assert calls == 1  # total and page from the thread's rank tree

    seq = http.next_seq()
    newest = await big.messages.list(THREAD, per_page=40, direction="DESC")
    assert [m.id for m in newest.items] == [f"m{n:05d}" for n in range(N - 1, N - 41, -1)]
    assert cost(http, seq)[0] <= 100


@pytest.mark.parametrize("direction", ["ASC", "DESC"])
async def test_any_page_reads_about_its_size(
    big: ConvexStore, http: RawHttp, direction: str
) -> None:
    ids = [f"m{n:05d}" for n in range(N)]
    if direction == "DESC":
        ids.reverse()
    # The middle, pages either side of it, and pages starting inside runs of equal createdAt.
    for page_no in (N // 80, N // 80 + 1, 1, 201, 313, N // 40 - 2):
        seq = http.next_seq()
        page = await big.messages.list(THREAD, page=page_no, per_page=40, direction=direction)
        read, calls = cost(http, seq)
        assert [m.id for m in page.items] == ids[page_no * 40 : page_no * 40 + 40], page_no
        assert page.total == N
        assert read <= 100 and calls == 1, (page_no, read, calls)
    seq = http.next_seq()
    odd = await big.messages.list(THREAD, page=1249, per_page=11, direction=direction)
    assert [m.id for m in odd.items] == ids[13739:13750]
    assert cost(http, seq)[0] <= 100
    # Past the 1,000 rows one call returns: the rest is read on from the handler's cursor.
    seq = http.next_seq()
    wide = await big.messages.list(THREAD, page=5, per_page=1500, direction=direction)
    assert [m.id for m in wide.items] == ids[7500:9000]
    read, calls = cost(http, seq)
    assert calls == 2 and read <= 1500 + 30, (read, calls)


async def test_a_date_range_page_deep_in_the_thread_reads_about_its_size(
    big: ConvexStore, http: RawHttp
) -> None:
    start, end = T0 + timedelta(milliseconds=5000), T0 + timedelta(milliseconds=20000)
    lo, hi = (t.isoformat(timespec="milliseconds").replace("+00:00", "Z") for t in (start, end))
    inside = [f"m{n:05d}" for n in range(N) if lo <= iso(n) <= hi]
    seq = http.next_seq()
    page = await big.messages.list(
        THREAD,
        page=150,
        per_page=40,
        date_range={"start": start, "end": end},
    )
    read, calls = cost(http, seq)
    assert page.total == len(inside)
    assert [m.id for m in page.items] == inside[6000:6040]
    assert read <= 100 and calls == 1, (read, calls)


async def test_every_message_is_listed_once_in_order(big: ConvexStore) -> None:
    seen: list[str] = []
    page_no = 0
    while True:
        page = await big.messages.list(THREAD, page=page_no, per_page=1000)
        seen += [m.id for m in page.items]
        if not page.has_more:
            break
        page_no += 1
    assert seen == [f"m{n:05d}" for n in range(N)]


async def test_iteration_covers_the_thread(big: ConvexStore) -> None:
    count, previous = 0, ""
    async for message in big.messages.iter(THREAD, page_size=1000, direction="DESC"):
        assert previous == "" or message.id < previous
        previous = message.id
        count += 1
    assert count == N


async def test_a_context_window_reads_about_its_size(big: ConvexStore, http: RawHttp) -> None:
    seq = http.next_seq()
    page = await big.messages.list(
        THREAD,
        per_page=0,
        include=[{"id": "m12345", "withPreviousMessages": 5, "withNextMessages": 5}],
    )
    assert [m.id for m in page.items] == [f"m{n:05d}" for n in range(12340, 12351)]
    assert cost(http, seq)[0] <= 30


async def test_totals_stay_exact_after_deletes_and_moves(big: ConvexStore, http: RawHttp) -> None:
    other = await big.threads.save(
        {"id": "small", "resourceId": RESOURCE, "createdAt": T0, "updatedAt": T0}
    )
    await big.messages.delete(["m00000", "m00001"])
    await big.messages.update([{"id": "m24999", "threadId": other.id}])
    seq = http.next_seq()
    page = await big.messages.list(THREAD, page=0, per_page=1)
    assert page.total == N - 3 and page.items[0].id == "m00002"
    assert cost(http, seq)[0] <= 20
    moved = await big.messages.list(other.id)
    assert [m.id for m in moved.items] == ["m24999"]
    got = await big.threads.get(THREAD)
    assert got is not None and got.last_message_at is not None
    assert got.last_message_at.isoformat(timespec="milliseconds").replace("+00:00", "Z") == iso(
        N - 2
    )
