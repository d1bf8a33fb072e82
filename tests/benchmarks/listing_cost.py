"""Documents read per listed page of workflow runs and scores, on one local deployment.

    python -m tests.benchmarks.listing_cost [--rows 12000]

Imports ``--rows`` runs of one workflow and as many scores of one scorer (raw, as the stock
handler would leave them), runs one counter rebuild, then lists pages of 100 and prints what
each listing cost in the deployment's own per-call stats. convex-test counts only the rows that
pass an equality filter as read, so real costs of the filtered listings (``source=...``) are
higher: about the size of the scorer's index range.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Awaitable
from datetime import datetime, timedelta, timezone
from typing import Any

import anyio
import orjson

from convex_mastra import ConvexStore, LocalDeployment
from convex_mastra.pytest_plugin import Deployment
from tests.conftest import RawHttp, import_rows

T0 = datetime(2026, 11, 23, 9, tzinfo=timezone.utc)


def iso(i: int) -> str:
    return (T0 + timedelta(seconds=i)).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def run_row(i: int) -> dict[str, Any]:
    run_id = f"run{i:05d}"
    status = "suspended" if i % 4 == 0 else "success"
    return {
        "id": f"wf-{run_id}",
        "workflow_name": "wf",
        "run_id": run_id,
        "resourceId": f"res{i % 3}",
        "snapshot": orjson.dumps({"runId": run_id, "status": status, "context": {}}).decode(),
        "createdAt": iso(i),
        "updatedAt": iso(i),
    }


def score_row(i: int) -> dict[str, Any]:
    return {
        "id": f"s{i:05d}",
        "scorerId": "sc",
        "runId": f"r{i % 10}",
        "score": 0.5,
        "source": "LIVE" if i % 2 else "TEST",
        "scorer": {},
        "input": None,
        "output": None,
        "entityId": "agent",
        "entityType": "AGENT",
        "traceId": "t",
        "spanId": f"sp{i % 4}",
        "createdAt": iso(i),
        "updatedAt": iso(i),
    }


async def main(rows: int) -> None:
    with LocalDeployment() as local:
        dep = Deployment(url=local.url, admin_key=local.admin_key, local=local)
        http = RawHttp(dep.url, dep.admin_key)
        import_rows(dep, "mastra_workflow_snapshots", [run_row(i) for i in range(rows)])
        import_rows(dep, "mastra_scorers", [score_row(i) for i in range(rows)])
        async with ConvexStore(dep.url, dep.admin_key) as store:
            started = time.monotonic()
            await store.rebuild_counters()
            print(f"rebuild_counters over {2 * rows} rows: {time.monotonic() - started:.1f} s")

            async def cost(label: str, listing: Awaitable[Any]) -> None:
                seq = http.next_seq()
                page = await listing
                calls = http.calls_since(seq)
                read = sum(int(call["documentsRead"]) for call in calls)
                print(
                    f"{label:48s} items={len(page.items):4d} total={page.total:6d} "
                    f"documentsRead={read:5d} calls={len(calls)}"
                )

            runs, scores = store.workflows, store.scorers
            last = (rows - 1) // 100
            await cost(
                "runs by workflow, first page", runs.list_runs(workflow_name="wf", per_page=100)
            )
            await cost(
                "runs by workflow, last page",
                runs.list_runs(workflow_name="wf", page=last, per_page=100),
            )
            await cost(
                "runs by workflow, page 30 (offset 3,000)",
                runs.list_runs(workflow_name="wf", page=30, per_page=100),
            )
            await cost(
                "runs by workflow, middle page",
                runs.list_runs(workflow_name="wf", page=last // 2, per_page=100),
            )
            await cost(
                "runs by workflow + status",
                runs.list_runs(workflow_name="wf", status="suspended", per_page=100),
            )
            await cost(
                "runs by resource + status",
                runs.list_runs(resource_id="res1", status="success", per_page=100),
            )
            await cost(
                "runs by workflow + date range (no counter)",
                runs.list_runs(
                    workflow_name="wf", from_date=T0 + timedelta(seconds=rows - 1000), per_page=100
                ),
            )
            await cost("runs, no filter", runs.list_runs(per_page=100))
            await cost("scores by scorer", scores.list_by_scorer("sc", per_page=100))
            await cost(
                "scores by scorer + entity, last page",
                scores.list_by_scorer(
                    "sc", entity_id="agent", entity_type="AGENT", page=last, per_page=100
                ),
            )
            await cost("scores by run", scores.list_by_run("r3", per_page=100))
            await cost("scores by entity", scores.list_by_entity("agent", "AGENT", per_page=100))
            await cost("scores by span", scores.list_by_span("t", "sp1", per_page=100))
            await cost(
                "scores by scorer + source (filter, see above)",
                scores.list_by_scorer("sc", source="LIVE", per_page=100),
            )
            seq = http.next_seq()
            await runs.get_run(f"run{rows // 2:05d}")
            read = sum(int(call["documentsRead"]) for call in http.calls_since(seq))
            print(f"{'get_run by run id alone':48s} documentsRead={read}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=12_000)
    anyio.run(main, parser.parse_args().rows)
