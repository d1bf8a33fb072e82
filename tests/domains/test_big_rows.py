"""Big messages: every bulk read stays under Convex's 16 MiB per-call read limit.

Rows of 20 KB make 1,000 rows 20 MiB, so a bound in rows alone would fail here; the handler
also stops at a byte budget and the client carries on with the cursor.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import orjson
import pytest
import pytest_asyncio

from convex_mastra import ConvexStore
from convex_mastra.pytest_plugin import Deployment
from tests.conftest import import_rows
from tests.domains.test_threads import T0

N = 2000
TEXT = "x" * 20_000
pytestmark = pytest.mark.asyncio(loop_scope="module")


def iso(n: int) -> str:
    return (
        (T0 + timedelta(milliseconds=n)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def big(convex_module_deployment: Deployment) -> AsyncIterator[ConvexStore]:
    dep = convex_module_deployment
    import_rows(
        dep,
        "mastra_threads",
        [
            {
                "id": "fat",
                "resourceId": "r",
                "title": "",
                "metadata": {},
                "createdAt": iso(0),
                "updatedAt": iso(0),
            }
        ],
    )
    rows = [
        {
            "id": f"m{n:05d}",
            "thread_id": "fat",
            "content": orjson.dumps(
                {"parts": [{"type": "text", "text": TEXT}], "metadata": {"n": n % 2}}
            ).decode(),
            "role": "user",
            "type": "v2",
            "createdAt": iso(n),
            "resourceId": "r",
        }
        for n in range(N)
    ]
    import_rows(dep, "mastra_messages", rows, chunk=300)
    async with ConvexStore(dep.url, dep.admin_key) as store:
        await store.rebuild_counters()
        yield store


async def test_a_middle_page_skips_more_than_a_call_may_read(big: ConvexStore) -> None:
    page = await big.messages.list("fat", page=24, per_page=40)  # rows 960..999
    assert [m.id for m in page.items] == [f"m{n:05d}" for n in range(960, 1000)]
    assert page.total == N


async def test_big_pages_iteration_and_filtered_counts_work(big: ConvexStore) -> None:
    everything = await big.messages.list("fat", per_page=None)
    assert len(everything.items) == N
    count = 0
    async for _ in big.messages.iter("fat", page_size=1000):
        count += 1
    assert count == N
    odd = await big.messages.list("fat", metadata={"n": 1}, per_page=5, page=50)
    assert odd.total == N // 2 and [m.id for m in odd.items] == [
        f"m{n:05d}" for n in range(501, 511, 2)
    ]


async def test_deleting_a_thread_of_big_messages_finishes(big: ConvexStore) -> None:
    await big.threads.delete("fat")
    assert await big.threads.get("fat") is None
    assert (await big.messages.list("fat")).total == 0
