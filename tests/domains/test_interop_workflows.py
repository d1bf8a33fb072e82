"""Workflow snapshots and scores cross between @mastra/convex's TypeScript client and ours.

Both directions, on our handler (where a Mastra TypeScript app keeps working unchanged) and on
the stock handler (a Python service joining an existing Mastra deployment).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from convex_mastra import ConvexStore, WorkflowSnapshot
from convex_mastra.pytest_plugin import Deployment
from tests.domains.conftest import date
from tests.local.test_ts_client import run_ts_client

WHEN = "2026-11-23T09:00:00.000Z"
T0 = datetime(2026, 11, 23, 9, tzinfo=timezone.utc)


def snapshot(run_id: str) -> dict[str, Any]:
    return {
        "runId": run_id,
        "status": "running",
        "context": {"input": {"question": "¿qué?"}},
        "activePaths": [0],
        "serializedStepGraph": [{"type": "step", "step": {"id": "fetch"}}],
        "suspendedPaths": {},
        "waitingPaths": {},
        "resumeLabels": {},
        "value": {},
        "timestamp": 1763888400000,
        "$schema": "kept verbatim: snapshots travel as JSON text",
    }


def ok(results: list[dict[str, Any]]) -> list[Any]:
    assert all("error" not in r for r in results), results
    return [r["result"] for r in results]


async def test_what_typescript_writes_python_reads(any_deployment: Deployment, uid: str) -> None:
    wf, run = f"wf-{uid}", f"run-{uid}"
    score = {
        "scorerId": f"sc-{uid}",
        "runId": run,
        "score": 0.75,
        "reason": "close",
        "source": "LIVE",
        "scorer": {"id": f"sc-{uid}", "name": "relevance"},
        "input": [{"role": "user", "content": "hi"}],
        "output": {"text": "hello"},
        "entityId": f"agent-{uid}",
        "entityType": "AGENT",
        "entity": {"id": f"agent-{uid}"},
        "traceId": f"trace-{uid}",
        "spanId": "span-1",
        "organizationId": "org-1",
        "projectId": "proj-1",
        "datasetId": "ds-1",
    }
    results = ok(
        run_ts_client(
            any_deployment,
            [
                {
                    "domain": "workflows",
                    "method": "persistWorkflowSnapshot",
                    "args": {
                        "workflowName": wf,
                        "runId": run,
                        "resourceId": f"res-{uid}",
                        "snapshot": snapshot(run),
                        "createdAt": date(WHEN),
                        "updatedAt": date(WHEN),
                    },
                },
                {
                    "domain": "workflows",
                    "method": "updateWorkflowResults",
                    "args": {
                        "workflowName": wf,
                        "runId": run,
                        "stepId": "fetch",
                        "result": {"status": "success", "output": {"n": 1}},
                        "requestContext": {"user": "u1"},
                    },
                },
                {
                    "domain": "workflows",
                    "method": "updateWorkflowState",
                    "args": {"workflowName": wf, "runId": run, "opts": {"status": "suspended"}},
                },
                {"domain": "scores", "method": "saveScore", "args": score},
            ],
        )
    )
    score_id = results[3]["score"]["id"]
    async with ConvexStore(any_deployment.url, any_deployment.admin_key) as store:
        loaded = await store.workflows.load_snapshot(wf, run)
        assert loaded is not None
        expected = {
            **snapshot(run),
            "status": "suspended",
            "context": {
                "input": {"question": "¿qué?"},
                "fetch": {"status": "success", "output": {"n": 1}},
            },
            "requestContext": {"user": "u1"},
        }
        assert loaded.to_mastra() == expected
        runs = await store.workflows.list_runs(workflow_name=wf, status="suspended")
        assert runs.total == 1
        assert runs.items[0].created_at == T0 and runs.items[0].resource_id == f"res-{uid}"
        got = await store.scorers.get(score_id)
        assert got is not None
        dumped = got.to_mastra()
        assert {key: dumped[key] for key in score} == score
        by_span = await store.scorers.list_by_span(f"trace-{uid}", "span-1")
        assert [s.id for s in by_span.items] == [score_id]
        by_entity = await store.scorers.list_by_scorer(
            f"sc-{uid}", entity_id=f"agent-{uid}", entity_type="AGENT"
        )
        assert by_entity.total == 1


async def test_what_python_writes_typescript_reads(any_deployment: Deployment, uid: str) -> None:
    wf, run = f"wf-{uid}", f"run-{uid}"
    async with ConvexStore(any_deployment.url, any_deployment.admin_key) as store:
        await store.workflows.persist_snapshot(
            wf, run, snapshot(run), resource_id=f"res-{uid}", created_at=T0
        )
        await store.workflows.update_results(
            wf, run, "fetch", {"status": "success", "output": [1, 2]}, {"user": "u1"}
        )
        final = await store.workflows.update_state(wf, run, status="success", result={"ok": True})
        assert final is not None
        saved = await store.scorers.save(
            {
                "id": f"score-{uid}",
                "scorerId": f"sc-{uid}",
                "runId": run,
                "score": 1,
                "source": "TEST",
                "scorer": {"name": "exact"},
                "input": {"q": "2+2"},
                "output": "4",
                "entityId": f"agent-{uid}",
                "entityType": "AGENT",
                "batchId": "batch-1",
                "createdAt": T0,
            }
        )
    results = ok(
        run_ts_client(
            any_deployment,
            [
                {
                    "domain": "workflows",
                    "method": "loadWorkflowSnapshot",
                    "args": {"workflowName": wf, "runId": run},
                },
                {"domain": "workflows", "method": "listWorkflowRuns", "args": {"workflowName": wf}},
                {
                    "domain": "workflows",
                    "method": "getWorkflowRunById",
                    "args": {"runId": run, "workflowName": wf},
                },
                {"domain": "scores", "method": "getScoreById", "args": {"id": f"score-{uid}"}},
                {
                    "domain": "scores",
                    "method": "listScoresByRunId",
                    "args": {"runId": run, "pagination": {"page": 0, "perPage": 10}},
                },
                {
                    "domain": "workflows",
                    "method": "deleteWorkflowRunById",
                    "args": {"runId": run, "workflowName": wf},
                },
            ],
        )
    )
    loaded, listed, by_id, score, by_run, _ = results
    assert loaded == final.to_mastra()
    assert listed["total"] == 1
    assert listed["runs"][0]["runId"] == run and listed["runs"][0]["resourceId"] == f"res-{uid}"
    assert listed["runs"][0]["createdAt"] == date(WHEN)
    assert by_id["snapshot"]["context"]["fetch"] == {"status": "success", "output": [1, 2]}
    assert score["id"] == f"score-{uid}" and score["score"] == 1
    assert score["input"] == {"q": "2+2"} and score["output"] == "4"
    assert score["batchId"] == "batch-1" and score["createdAt"] == date(WHEN)
    assert score["updatedAt"] == date(
        saved.updated_at.isoformat(timespec="milliseconds")[:-6] + "Z"
    )
    assert [s["id"] for s in by_run["scores"]] == [f"score-{uid}"]
    async with ConvexStore(any_deployment.url, any_deployment.admin_key) as store:
        assert await store.workflows.load_snapshot(wf, run) is None  # deleted by TypeScript


async def test_a_typescript_resumer_claims_a_run_through_the_guard(
    convex_deployment: Deployment, uid: str
) -> None:
    # Ours only: @mastra/core 1.71 sends expectedStatus inside updateWorkflowState's opts. Our
    # handler applies it as a guard; the stock 1.5.2 handler would store it in the snapshot.
    wf, run = f"wf-{uid}", f"run-{uid}"
    async with ConvexStore(convex_deployment.url, convex_deployment.admin_key) as store:
        await store.workflows.persist_snapshot(wf, run, {**snapshot(run), "status": "suspended"})
    claim = {
        "domain": "workflows",
        "method": "updateWorkflowState",
        "args": {
            "workflowName": wf,
            "runId": run,
            "opts": {"status": "running", "expectedStatus": "suspended"},
        },
    }
    first, second = run_ts_client(convex_deployment, [claim, claim])
    assert first["result"]["status"] == "running" and "expectedStatus" not in first["result"]
    # The handler answers null (not claimed); the 1.5.2 client reports that as an error.
    assert "no snapshot" in second["error"]
    async with ConvexStore(convex_deployment.url, convex_deployment.admin_key) as store:
        stored = await store.workflows.load_snapshot(wf, run)
        assert isinstance(stored, WorkflowSnapshot) and stored.status == "running"
        assert "expectedStatus" not in stored.to_mastra()
