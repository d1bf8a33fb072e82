"""store.workflows against a real local deployment (ours and, where shared, the stock handler)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from typing import Any

import orjson
import pytest

from convex_mastra import (
    ConvexStore,
    NotFoundError,
    RecordTooLargeError,
    ValidationError,
    WorkflowRun,
    WorkflowSnapshot,
)
from convex_mastra._codec import MAX_DOCUMENT_BYTES, document_size
from convex_mastra.pytest_plugin import Deployment
from tests.conftest import RawHttp

T0 = datetime(2026, 11, 23, 9, 0, 0, tzinfo=timezone.utc)
PENDING = {"__mastra_pending__": True}


def snapshot(run_id: str, status: str = "running", **extra: Any) -> dict[str, Any]:
    """A snapshot shaped as Mastra writes one."""
    return {
        "runId": run_id,
        "status": status,
        "context": {"input": {"n": 1}},
        "activePaths": [],
        "activeStepsPath": {},
        "serializedStepGraph": [],
        "suspendedPaths": {},
        "waitingPaths": {},
        "resumeLabels": {},
        "value": {},
        "timestamp": 1763888400000,
        **extra,
    }


async def seed_runs(store: ConvexStore, uid: str, n: int, **kwargs: Any) -> list[WorkflowRun]:
    """``n`` runs of workflow ``wf-<uid>``, one minute apart (run 0 oldest)."""
    return [
        await store.workflows.persist_snapshot(
            f"wf-{uid}",
            f"run{i}-{uid}",
            snapshot(f"run{i}-{uid}"),
            created_at=T0 + timedelta(minutes=i),
            **kwargs,
        )
        for i in range(n)
    ]


async def test_persist_and_load_round_trip(any_store: ConvexStore, uid: str) -> None:
    raw = snapshot(f"r-{uid}", error=None, result={"ok": True, "n": 1.5})
    run = await any_store.workflows.persist_snapshot(
        f"wf-{uid}", f"r-{uid}", raw, resource_id=f"res-{uid}"
    )
    assert run.workflow_name == f"wf-{uid}" and run.resource_id == f"res-{uid}"
    loaded = await any_store.workflows.load_snapshot(f"wf-{uid}", f"r-{uid}")
    assert loaded is not None
    assert loaded.to_mastra() == raw  # explicit nulls and unknown keys included
    assert loaded.status == "running" and loaded.run_id == f"r-{uid}"
    assert loaded.context == {"input": {"n": 1}}
    got = await any_store.workflows.get_run(f"r-{uid}", workflow_name=f"wf-{uid}")
    assert got is not None and got.snapshot == loaded and got.created_at == run.created_at


async def test_a_snapshot_model_is_written_with_the_fields_it_was_given(
    any_store: ConvexStore, uid: str
) -> None:
    model = WorkflowSnapshot(run_id=f"r-{uid}", status="running", context={})
    model.status = "suspended"
    await any_store.workflows.persist_snapshot(f"wf-{uid}", f"r-{uid}", model)
    loaded = await any_store.workflows.load_snapshot(f"wf-{uid}", f"r-{uid}")
    assert loaded is not None
    assert loaded.to_mastra() == {"runId": f"r-{uid}", "status": "suspended", "context": {}}


async def test_rewriting_a_run_keeps_its_first_created_at_and_resource(
    any_store: ConvexStore, uid: str
) -> None:
    first = await any_store.workflows.persist_snapshot(
        f"wf-{uid}", f"r-{uid}", snapshot(f"r-{uid}"), resource_id=f"res-{uid}", created_at=T0
    )
    later = T0 + timedelta(hours=1)
    second = await any_store.workflows.persist_snapshot(
        f"wf-{uid}",
        f"r-{uid}",
        snapshot(f"r-{uid}", "success"),
        created_at=later,
        updated_at=later,
    )
    assert first.created_at == second.created_at == T0
    got = await any_store.workflows.get_run(f"r-{uid}", workflow_name=f"wf-{uid}")
    assert got is not None
    assert got.created_at == T0 and got.updated_at == later
    assert got.resource_id == f"res-{uid}"
    assert isinstance(got.snapshot, WorkflowSnapshot) and got.snapshot.status == "success"
    page = await any_store.workflows.list_runs(workflow_name=f"wf-{uid}")
    assert page.total == 1  # the same row, not a second one


async def test_missing_runs_read_as_none(any_store: ConvexStore, uid: str) -> None:
    assert await any_store.workflows.load_snapshot(f"wf-{uid}", "missing") is None
    assert await any_store.workflows.get_run(f"missing-{uid}") is None
    assert await any_store.workflows.get_run("missing", workflow_name=f"wf-{uid}") is None
    assert not await any_store.workflows.delete_run("missing", f"wf-{uid}")


async def test_keys_convex_rejects_round_trip_exactly(any_store: ConvexStore, uid: str) -> None:
    raw = snapshot(
        f"r-{uid}",
        **{
            "$schema": "http://json-schema.org/draft-07/schema#",
            "ünïcødé": {"日本語": ["ok", {"$ref": "#/a"}]},
            "": "empty key",
            "_underscore": 1,
            "deep": {"a": {"b": {"c": {"d": {"e": {"f": {"g": {"h": {"i": {"j": 1}}}}}}}}}},
        },
    )
    raw["context"]["step-1"] = {"status": "success", "output": {"$id": "x", "ключ": True}}
    await any_store.workflows.persist_snapshot(f"wf-{uid}", f"r-{uid}", raw)
    loaded = await any_store.workflows.load_snapshot(f"wf-{uid}", f"r-{uid}")
    assert loaded is not None and loaded.to_mastra() == raw
    context = await any_store.workflows.update_results(
        f"wf-{uid}", f"r-{uid}", "step-2", {"status": "success", "output": {"$x": "é"}}, {}
    )
    assert context["step-1"] == raw["context"]["step-1"]
    assert context["step-2"] == {"status": "success", "output": {"$x": "é"}}


async def test_a_snapshot_over_1_mib_is_refused_before_anything_is_written(
    any_store: ConvexStore, uid: str
) -> None:
    big = snapshot(f"r-{uid}", blob="x" * (1024 * 1024))
    with pytest.raises(RecordTooLargeError) as caught:
        await any_store.workflows.persist_snapshot(f"wf-{uid}", f"r-{uid}", big)
    assert caught.value.record_id == f"wf-{uid}-r-{uid}"
    assert await any_store.workflows.load_snapshot(f"wf-{uid}", f"r-{uid}") is None

    await any_store.workflows.persist_snapshot(f"wf-{uid}", f"r-{uid}", snapshot(f"r-{uid}"))
    with pytest.raises(RecordTooLargeError):
        await any_store.workflows.update_results(
            f"wf-{uid}", f"r-{uid}", "s", {"output": "y" * (1024 * 1024)}, {}
        )
    loaded = await any_store.workflows.load_snapshot(f"wf-{uid}", f"r-{uid}")
    assert loaded is not None and "s" not in loaded.context


async def test_merges_that_outgrow_1_mib_are_refused_and_roll_back(
    store: ConvexStore, uid: str
) -> None:
    # Ours only: the handler checks the merged document's size before writing. The stock
    # handler writes it and Convex itself refuses (a FunctionError, not RecordTooLargeError).
    await store.workflows.persist_snapshot(f"wf-{uid}", f"r-{uid}", snapshot(f"r-{uid}"))
    half = "z" * (600 * 1024)
    await store.workflows.update_results(f"wf-{uid}", f"r-{uid}", "a", {"output": half}, {})
    with pytest.raises(RecordTooLargeError):
        await store.workflows.update_results(f"wf-{uid}", f"r-{uid}", "b", {"output": half}, {})
    loaded = await store.workflows.load_snapshot(f"wf-{uid}", f"r-{uid}")
    assert loaded is not None and set(loaded.context) == {"input", "a"}


async def test_list_runs_newest_first_with_exact_totals(any_store: ConvexStore, uid: str) -> None:
    runs = await seed_runs(any_store, uid, 7, resource_id=f"res-{uid}")
    page = await any_store.workflows.list_runs(workflow_name=f"wf-{uid}", page=1, per_page=3)
    assert [r.run_id for r in page.items] == [f"run{i}-{uid}" for i in (3, 2, 1)]
    assert page.total == 7 and page.has_more and page.per_page == 3
    last = await any_store.workflows.list_runs(workflow_name=f"wf-{uid}", page=2, per_page=3)
    assert [r.run_id for r in last.items] == [f"run0-{uid}"] and not last.has_more
    everything = await any_store.workflows.list_runs(resource_id=f"res-{uid}")
    assert [r.run_id for r in everything.items] == [r.run_id for r in reversed(runs)]
    assert everything.total == 7 and everything.per_page is None and not everything.has_more
    beyond = await any_store.workflows.list_runs(workflow_name=f"wf-{uid}", page=9, per_page=3)
    assert beyond.items == [] and beyond.total == 7
    none = await any_store.workflows.list_runs(workflow_name=f"wf-{uid}", per_page=0)
    assert none.items == [] and none.total == 7


async def test_list_runs_by_date_range_both_ends_inclusive(
    any_store: ConvexStore, uid: str
) -> None:
    await seed_runs(any_store, uid, 6)
    page = await any_store.workflows.list_runs(
        workflow_name=f"wf-{uid}",
        from_date=T0 + timedelta(minutes=1),
        to_date=T0 + timedelta(minutes=4),
        per_page=2,
    )
    assert [r.run_id for r in page.items] == [f"run4-{uid}", f"run3-{uid}"]
    assert page.total == 4 and page.has_more
    since = await any_store.workflows.list_runs(
        workflow_name=f"wf-{uid}", from_date=T0 + timedelta(minutes=5)
    )
    assert [r.run_id for r in since.items] == [f"run5-{uid}"]


async def test_list_runs_by_status_follows_state_updates(any_store: ConvexStore, uid: str) -> None:
    await seed_runs(any_store, uid, 5, resource_id=f"res-{uid}")
    for i in (1, 3):
        await any_store.workflows.update_state(f"wf-{uid}", f"run{i}-{uid}", status="suspended")
    await any_store.workflows.persist_snapshot(
        f"wf-{uid}", f"run4-{uid}", snapshot(f"run4-{uid}", "suspended")
    )
    suspended = await any_store.workflows.list_runs(workflow_name=f"wf-{uid}", status="suspended")
    assert [r.run_id for r in suspended.items] == [f"run{i}-{uid}" for i in (4, 3, 1)]
    assert suspended.total == 3
    running = await any_store.workflows.list_runs(
        workflow_name=f"wf-{uid}", resource_id=f"res-{uid}", status="running", per_page=1
    )
    assert [r.run_id for r in running.items] == [f"run2-{uid}"] and running.total == 2
    by_resource = await any_store.workflows.list_runs(resource_id=f"res-{uid}", status="suspended")
    assert by_resource.total == 3
    ranged = await any_store.workflows.list_runs(
        workflow_name=f"wf-{uid}", status="suspended", to_date=T0 + timedelta(minutes=3)
    )
    assert [r.run_id for r in ranged.items] == [f"run3-{uid}", f"run1-{uid}"]


async def test_get_run_without_a_workflow_name_finds_the_newest(
    any_store: ConvexStore, uid: str
) -> None:
    for i, name in enumerate(("a", "b")):
        await any_store.workflows.persist_snapshot(
            f"{name}-{uid}", f"shared-{uid}", snapshot(name), created_at=T0 + timedelta(days=i)
        )
    newest = await any_store.workflows.get_run(f"shared-{uid}")
    assert newest is not None and newest.workflow_name == f"b-{uid}"
    older = await any_store.workflows.get_run(f"shared-{uid}", workflow_name=f"a-{uid}")
    assert older is not None and older.created_at == T0


async def test_delete_run_removes_only_that_run(any_store: ConvexStore, uid: str) -> None:
    await seed_runs(any_store, uid, 3)
    assert await any_store.workflows.delete_run(f"run1-{uid}", f"wf-{uid}")
    assert await any_store.workflows.load_snapshot(f"wf-{uid}", f"run1-{uid}") is None
    page = await any_store.workflows.list_runs(workflow_name=f"wf-{uid}")
    assert [r.run_id for r in page.items] == [f"run2-{uid}", f"run0-{uid}"] and page.total == 2


async def test_colliding_row_ids_are_refused_instead_of_replacing_another_run(
    any_store: ConvexStore, uid: str
) -> None:
    # @mastra/convex ids a run "<workflow>-<run>": ("a-b", "c") and ("a", "b-c") share one.
    await any_store.workflows.persist_snapshot(f"x-{uid}", "b-c", snapshot("b-c"))
    with pytest.raises(ValidationError, match="already has"):
        await any_store.workflows.persist_snapshot(f"x-{uid}-b", "c", snapshot("c"))
    kept = await any_store.workflows.load_snapshot(f"x-{uid}", "b-c")
    assert kept is not None and kept.run_id == "b-c"


async def test_update_results_merges_step_results_and_request_context(
    any_store: ConvexStore, uid: str
) -> None:
    await any_store.workflows.persist_snapshot(f"wf-{uid}", f"r-{uid}", snapshot(f"r-{uid}"))
    first = await any_store.workflows.update_results(
        f"wf-{uid}", f"r-{uid}", "fetch", {"status": "success", "output": {"n": 1}}, {"user": "a"}
    )
    assert first == {"input": {"n": 1}, "fetch": {"status": "success", "output": {"n": 1}}}
    await any_store.workflows.update_results(
        f"wf-{uid}", f"r-{uid}", "fetch", {"status": "failed", "error": "boom"}, {"tenant": "t"}
    )
    loaded = await any_store.workflows.load_snapshot(f"wf-{uid}", f"r-{uid}")
    assert loaded is not None
    assert loaded.context["fetch"] == {"status": "failed", "error": "boom"}  # replaced
    assert loaded.to_mastra()["requestContext"] == {"user": "a", "tenant": "t"}
    assert loaded.status == "running"


async def test_foreach_outputs_merge_slot_by_slot_as_mastra_does(
    any_store: ConvexStore, uid: str
) -> None:
    wf, run = f"wf-{uid}", f"r-{uid}"
    await any_store.workflows.persist_snapshot(wf, run, snapshot(run))
    update = any_store.workflows.update_results
    await update(wf, run, "each", {"status": "running", "output": [None, None, None]}, {})
    await update(wf, run, "each", {"status": "running", "output": [None, "b", None]}, {})
    merged = await update(wf, run, "each", {"status": "running", "output": ["a", None]}, {})
    assert merged["each"]["output"] == ["a", "b", None]
    suspended = {"status": "suspended", "suspendPayload": {}}
    await update(wf, run, "each", {"status": "running", "output": [None, None, suspended]}, {})
    # Pending markers clear empty and suspended slots but never completed ones, and leave the
    # other fields of the result alone.
    merged = await update(
        wf, run, "each", {"status": "waiting", "output": [PENDING, PENDING, PENDING, PENDING]}, {}
    )
    assert merged["each"] == {"status": "running", "output": ["a", "b", None, None]}
    done = await update(
        wf, run, "each", {"status": "success", "output": [None, None, "c", "d"]}, {}
    )
    assert done["each"] == {"status": "success", "output": ["a", "b", "c", "d"]}


async def test_update_results_on_a_missing_run_raises(any_store: ConvexStore, uid: str) -> None:
    with pytest.raises(NotFoundError):
        await any_store.workflows.update_results(f"wf-{uid}", "missing", "s", {}, {})


async def test_100_concurrent_step_results_all_survive(any_store: ConvexStore, uid: str) -> None:
    wf, run = f"wf-{uid}", f"r-{uid}"
    await any_store.workflows.persist_snapshot(wf, run, snapshot(run))
    await asyncio.gather(
        *(
            any_store.workflows.update_results(
                wf, run, f"step-{i}", {"status": "success", "output": i}, {f"k{i}": i}
            )
            for i in range(100)
        )
    )
    loaded = await any_store.workflows.load_snapshot(wf, run)
    assert loaded is not None
    assert {f"step-{i}" for i in range(100)} <= set(loaded.context)
    assert all(loaded.context[f"step-{i}"]["output"] == i for i in range(100))
    assert loaded.to_mastra()["requestContext"] == {f"k{i}": i for i in range(100)}


async def test_update_state_merges_fields_and_is_none_for_a_missing_run(
    any_store: ConvexStore, uid: str
) -> None:
    await any_store.workflows.persist_snapshot(f"wf-{uid}", f"r-{uid}", snapshot(f"r-{uid}"))
    merged = await any_store.workflows.update_state(
        f"wf-{uid}",
        f"r-{uid}",
        status="suspended",
        suspended_paths={"approve": [1]},
        waitingPaths={"w": [0]},
        **{"$meta": {"é": 1}},
    )
    assert merged is not None and merged.status == "suspended"
    stored = await any_store.workflows.load_snapshot(f"wf-{uid}", f"r-{uid}")
    assert stored == merged
    dumped = stored.to_mastra()
    assert dumped["suspendedPaths"] == {"approve": [1]} and dumped["waitingPaths"] == {"w": [0]}
    assert dumped["$meta"] == {"é": 1} and dumped["context"] == {"input": {"n": 1}}
    assert await any_store.workflows.update_state(f"wf-{uid}", "missing", status="x") is None


async def test_expected_status_applies_the_update_only_on_a_match(
    any_store: ConvexStore, uid: str
) -> None:
    wf, run = f"wf-{uid}", f"r-{uid}"
    await any_store.workflows.persist_snapshot(wf, run, snapshot(run, "suspended"))
    miss = await any_store.workflows.update_state(wf, run, status="x", expected_status="running")
    assert miss is None
    unchanged = await any_store.workflows.load_snapshot(wf, run)
    assert unchanged is not None and unchanged.status == "suspended"
    assert "expectedStatus" not in unchanged.to_mastra()
    hit = await any_store.workflows.update_state(
        wf, run, status="running", expected_status=["waiting", "suspended"]
    )
    assert hit is not None and hit.status == "running"
    assert "expectedStatus" not in hit.to_mastra()
    missing = await any_store.workflows.update_state(
        wf, "missing", status="running", expected_status="suspended"
    )
    assert missing is None


async def test_concurrent_resumers_claim_a_run_exactly_once(store: ConvexStore, uid: str) -> None:
    # Ours only: the check and the update are one mutation. The stock handler has no guard, so
    # there the check is a separate read and two resumers can both pass it.
    wf, run = f"wf-{uid}", f"r-{uid}"
    await store.workflows.persist_snapshot(wf, run, snapshot(run, "suspended"))
    claims = await asyncio.gather(
        *(
            store.workflows.update_state(
                wf, run, status="running", claimedBy=i, expected_status="suspended"
            )
            for i in range(20)
        )
    )
    winners = [claim for claim in claims if claim is not None]
    assert len(winners) == 1
    stored = await store.workflows.load_snapshot(wf, run)
    assert (
        stored is not None
        and stored.to_mastra()["claimedBy"] == winners[0].to_mastra()["claimedBy"]
    )


async def test_bad_input_is_refused_before_anything_is_written(
    any_store: ConvexStore, uid: str
) -> None:
    workflows = any_store.workflows
    with pytest.raises(ValidationError):
        await workflows.persist_snapshot("", f"r-{uid}", snapshot("r"))
    with pytest.raises(ValidationError):
        await workflows.persist_snapshot(f"wf-{uid}", f"r-{uid}", {"context": []})
    with pytest.raises(ValidationError):
        await workflows.persist_snapshot(f"wf-{uid}", f"r-{uid}", {"n": float("nan")})
    with pytest.raises(ValidationError):
        await workflows.persist_snapshot(f"wf-{uid}", f"r-{uid}", {"n": 2**60})
    with pytest.raises(ValidationError):
        await workflows.persist_snapshot(f"wf-{uid}", f"r-{uid}", "not a dict")  # type: ignore[arg-type]
    assert await workflows.load_snapshot(f"wf-{uid}", f"r-{uid}") is None
    with pytest.raises(ValidationError):
        await workflows.list_runs(page=-1)
    with pytest.raises(ValidationError):
        await workflows.list_runs(workflow_name="")
    with pytest.raises(ValidationError):
        await workflows.list_runs(from_date=datetime(2026, 1, 1))  # naive
    with pytest.raises(ValidationError):
        await workflows.update_state(f"wf-{uid}", f"r-{uid}")
    with pytest.raises(ValidationError):
        await workflows.update_state(f"wf-{uid}", f"r-{uid}", status="x", expected_status=[1])  # type: ignore[list-item]
    with pytest.raises(ValidationError):
        await workflows.update_results(f"wf-{uid}", f"r-{uid}", "s", {1: "x"}, {})
    with pytest.raises(ValidationError):
        await workflows.update_results(f"wf-{uid}", f"r-{uid}", "", {}, {})


async def test_a_page_reads_about_its_size(
    store: ConvexStore, convex_deployment: Deployment, uid: str
) -> None:
    await seed_runs(store, uid, 30, resource_id=f"res-{uid}")
    await store.workflows.update_state(f"wf-{uid}", f"run7-{uid}", status="suspended")
    http = RawHttp(convex_deployment.url, convex_deployment.admin_key)
    for kwargs in (
        {"workflow_name": f"wf-{uid}"},
        {"resource_id": f"res-{uid}"},
        {"workflow_name": f"wf-{uid}", "status": "running"},
        {"workflow_name": f"wf-{uid}", "resource_id": f"res-{uid}", "status": "running"},
    ):
        for page_no in (0, 2):
            seq = http.next_seq()
            page = await store.workflows.list_runs(**kwargs, page=page_no, per_page=10)
            read = sum(int(call["documentsRead"]) for call in http.calls_since(seq))
            assert len(page.items) == (10 if page_no == 0 else 9 if "status" in kwargs else 10)
            assert read <= 10 + 5, (kwargs, page_no, read)
    seq = http.next_seq()
    run = await store.workflows.get_run(f"run3-{uid}")
    assert run is not None and run.workflow_name == f"wf-{uid}"
    assert sum(int(call["documentsRead"]) for call in http.calls_since(seq)) <= 2


async def test_the_1_mib_edge_of_a_snapshot_is_exactly_convexs(
    store: ConvexStore, convex_deployment: Deployment, uid: str
) -> None:
    # The row holds the snapshot text, ids, timestamps, the resource and the derived status.
    wf, run = f"wf-{uid}", f"r-{uid}"
    first = await store.workflows.persist_snapshot(wf, run, snapshot(run), resource_id="res")
    stamp = "2026-11-23T09:00:00.000Z"
    row = {
        "id": f"{wf}-{run}",
        "workflow_name": wf,
        "run_id": run,
        "resourceId": "res",
        "status": "running",
        "createdAt": stamp,
        "updatedAt": stamp,
        "snapshot": orjson.dumps(snapshot(run, blob="")).decode(),
    }
    big = snapshot(run, blob="x" * (MAX_DOCUMENT_BYTES - document_size(row)))
    # Without resource_id the run keeps "res": the SDK sizes the row it will really write.
    await store.workflows.persist_snapshot(wf, run, big)
    loaded = await store.workflows.load_snapshot(wf, run)
    assert loaded is not None and loaded.model_extra and len(loaded.model_extra["blob"]) > 1000
    assert first.resource_id == "res"
    http = RawHttp(convex_deployment.url, convex_deployment.admin_key)
    seq = http.next_seq()
    with pytest.raises(RecordTooLargeError):
        await store.workflows.persist_snapshot(wf, run, {**big, "blob": big["blob"] + "x"})
    assert all(call.get("op") == "load" for call in http.calls_since(seq))
