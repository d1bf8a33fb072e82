"""12,000 runs of one workflow: listed completely, with exact totals, and pages cost their size.

Ours only: the stock handler reads at most 10,000 rows per call. Runs on its own deployment
(convex-test scans a whole table on every lookup, so a big table would slow every other test of
the session deployment, and seeding through batchInsert takes minutes). The rows are imported
raw, as the stock handler would have left them (no status column, no counts); the counter
rebuild derives their status and counts them, and later writes go through the handler. Costs
are the deployment's per-call stats.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone

import orjson
import pytest
import pytest_asyncio

from convex_mastra import ConvexStore
from convex_mastra.pytest_plugin import Deployment
from tests.conftest import RawHttp, import_rows

N = 12_000
LEGACY = 50
WF = "big-workflow"
TABLE = "mastra_workflow_snapshot"
T0 = datetime(2026, 11, 23, 9, 0, 0, tzinfo=timezone.utc)


def iso(i: int) -> str:
    when = T0 + timedelta(seconds=i)
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def status(i: int) -> str:
    return "suspended" if i % 4 == 0 else "success"


def row(i: int) -> dict[str, str]:
    run_id = f"run{i:05d}"
    return {
        "id": f"{WF}-{run_id}",
        "workflow_name": WF,
        "run_id": run_id,
        "resourceId": f"res{i % 3}",
        "snapshot": orjson.dumps(
            {"runId": run_id, "status": status(i), "context": {"input": {"i": i}}}
        ).decode(),
        "createdAt": iso(i),
        "updatedAt": iso(i),
    }


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def big(convex_module_deployment: Deployment) -> AsyncIterator[ConvexStore]:
    dep = convex_module_deployment
    import_rows(dep, "mastra_workflow_snapshots", [row(i) for i in range(-LEGACY, N)])
    async with ConvexStore(dep.url, dep.admin_key) as store:
        await store.rebuild_counters()
        yield store


@pytest.fixture
def http(convex_module_deployment: Deployment) -> RawHttp:
    return RawHttp(convex_module_deployment.url, convex_module_deployment.admin_key)


def cost(http: RawHttp, seq: int) -> tuple[int, int]:
    """(documents read, calls) since ``seq``."""
    calls = http.calls_since(seq)
    return sum(int(c["documentsRead"]) for c in calls), len(calls)


pytestmark = pytest.mark.asyncio(loop_scope="module")
TOTAL = N + LEGACY


async def test_every_run_is_listed_once_newest_first(big: ConvexStore) -> None:
    seen: list[str] = []
    page_no = 0
    while True:
        page = await big.workflows.list_runs(workflow_name=WF, page=page_no, per_page=1000)
        assert page.total == TOTAL
        seen += [run.run_id for run in page.items]
        if not page.has_more:
            break
        page_no += 1
    assert seen == [f"run{i:05d}" for i in range(N - 1, -LEGACY - 1, -1)]
    everything = await big.workflows.list_runs(workflow_name=WF)
    assert len(everything.items) == TOTAL  # no 10,000-row cut


async def test_first_and_last_pages_read_about_their_size(big: ConvexStore, http: RawHttp) -> None:
    last_page = (TOTAL - 1) // 100
    for page_no, first in ((0, N - 1), (last_page, -LEGACY + 49)):
        seq = http.next_seq()
        page = await big.workflows.list_runs(workflow_name=WF, page=page_no, per_page=100)
        read, calls = cost(http, seq)
        assert page.total == TOTAL
        assert page.items[0].run_id == f"run{first:05d}"
        assert read <= 100 + 5, (page_no, read)
        assert calls == 2  # the count and the page


async def test_a_middle_page_reads_up_to_the_nearer_end(big: ConvexStore, http: RawHttp) -> None:
    # Offset paging reaches a middle page by reading (not sending) the rows before it from the
    # nearer end of the index; only the page travels back.
    seq = http.next_seq()
    page = await big.workflows.list_runs(workflow_name=WF, page=40, per_page=100)
    read, _ = cost(http, seq)
    assert [r.run_id for r in page.items[:1]] == [f"run{N - 1 - 4000:05d}"]
    assert read <= 4000 + 100 + 10, read


async def test_status_totals_are_exact_and_pages_cheap(big: ConvexStore, http: RawHttp) -> None:
    suspended = sum(1 for i in range(-LEGACY, N) if status(i) == "suspended")
    seq = http.next_seq()
    page = await big.workflows.list_runs(workflow_name=WF, status="suspended", per_page=50)
    read, _ = cost(http, seq)
    assert page.total == suspended
    assert [r.run_id for r in page.items[:2]] == [f"run{N - 4:05d}", f"run{N - 8:05d}"]
    assert read <= 50 + 5, read
    by_resource = await big.workflows.list_runs(resource_id="res1", status="success", per_page=1)
    assert by_resource.total == sum(
        1 for i in range(-LEGACY, N) if i % 3 == 1 and status(i) == "success"
    )
    # The imported rows got their status column from the counter rebuild.
    legacy = await big.workflows.list_runs(
        workflow_name=WF, status="suspended", to_date=T0 - timedelta(milliseconds=1)
    )
    assert [r.run_id for r in legacy.items] == [
        f"run{i:05d}" for i in range(-1, -LEGACY - 1, -1) if status(i) == "suspended"
    ]


async def test_state_changes_keep_totals_exact(big: ConvexStore, http: RawHttp) -> None:
    await big.workflows.update_state(WF, "run11996", status="success", expected_status="suspended")
    await big.workflows.delete_run("run11992", WF)
    seq = http.next_seq()
    page = await big.workflows.list_runs(workflow_name=WF, status="suspended", per_page=1)
    assert page.items[0].run_id == "run11988"
    assert page.total == sum(1 for i in range(-LEGACY, N) if status(i) == "suspended") - 2
    assert cost(http, seq)[0] <= 10
    total = await big.workflows.list_runs(workflow_name=WF, per_page=1)
    assert total.total == TOTAL - 1


async def test_a_run_is_found_by_id_alone_cheaply(big: ConvexStore, http: RawHttp) -> None:
    seq = http.next_seq()
    run = await big.workflows.get_run("run06000")
    assert run is not None and run.workflow_name == WF and run.resource_id == "res0"
    assert cost(http, seq)[0] <= 2
