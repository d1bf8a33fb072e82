"""store.scorers against a real local deployment (ours and, where shared, the stock handler)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from convex_mastra import ConvexStore, RecordTooLargeError, Score, ValidationError
from convex_mastra.pytest_plugin import Deployment
from tests.conftest import RawHttp

T0 = datetime(2026, 11, 23, 9, 0, 0, tzinfo=timezone.utc)


def score(uid: str, n: int = 0, **extra: Any) -> dict[str, Any]:
    """A score as Mastra's scorer hooks save one, created ``n`` minutes after T0."""
    return {
        "scorerId": f"sc-{uid}",
        "runId": f"run-{uid}",
        "score": 0.5 + n / 100,
        "source": "LIVE",
        "scorer": {"id": f"sc-{uid}", "name": "relevance", "hasJudge": True},
        "input": [{"role": "user", "content": f"question {n}"}],
        "output": {"text": f"answer {n}"},
        "entityId": f"agent-{uid}",
        "entityType": "AGENT",
        "entity": {"id": f"agent-{uid}", "name": "support"},
        "createdAt": T0 + timedelta(minutes=n),
        **extra,
    }


ALL_FIELDS = {
    "traceId": "trace-1",
    "spanId": "span-1",
    "reason": "relevant enough",
    "metadata": {"structuredOutput": False},
    "preprocessStepResult": {"tokens": 12},
    "extractStepResult": {"claims": ["a", "b"]},
    "analyzeStepResult": {"verdicts": [1, 0]},
    "preprocessPrompt": "pre",
    "extractPrompt": "extract",
    "analyzePrompt": "analyze",
    "reasonPrompt": "why",
    "generateScorePrompt": "score it",
    "generateReasonPrompt": "explain it",
    "additionalContext": {"docs": 3},
    "requestContext": {"user": "u1"},
    "resourceId": "res-1",
    "threadId": "thread-1",
    "organizationId": "org-1",
    "projectId": "proj-1",
    "batchId": "batch-1",
    "datasetId": "ds-1",
    "datasetItemId": "item-1",
}


async def test_save_generates_an_id_and_get_round_trips(any_store: ConvexStore, uid: str) -> None:
    saved = await any_store.scorers.save(score(uid, **ALL_FIELDS))
    assert uuid.UUID(saved.id)
    assert saved.created_at == T0 and saved.updated_at >= saved.created_at
    got = await any_store.scorers.get(saved.id)
    assert got == saved
    dumped = got.to_mastra()
    for key, value in ALL_FIELDS.items():
        assert dumped[key] == value, key
    assert dumped["scorerId"] == f"sc-{uid}" and dumped["entityType"] == "AGENT"
    assert await any_store.scorers.get(f"missing-{uid}") is None


async def test_a_caller_supplied_id_is_kept_and_the_latest_write_wins(
    any_store: ConvexStore, uid: str
) -> None:
    first = await any_store.scorers.save(score(uid, id=f"s-{uid}", reason="first"))
    assert first.id == f"s-{uid}"
    second = await any_store.scorers.save(score(uid, 30, id=f"s-{uid}", reason="second", score=0.9))
    got = await any_store.scorers.get(f"s-{uid}")
    assert got is not None and got == second
    assert got.score == 0.9 and got.reason == "second"
    assert got.created_at == first.created_at == T0  # the first write's
    assert got.updated_at >= first.updated_at
    page = await any_store.scorers.list_by_scorer(f"sc-{uid}")
    assert page.total == 1


async def test_a_replacing_write_clears_fields_it_leaves_out(store: ConvexStore, uid: str) -> None:
    # Ours only: the stock handler patches the stored row and refuses nulls in optional
    # columns, so a field left out of the newer write keeps its old value there.
    await store.scorers.save(score(uid, id=f"s-{uid}", reason="old", traceId="t"))
    await store.scorers.save(score(uid, id=f"s-{uid}"))
    got = await store.scorers.get(f"s-{uid}")
    assert got is not None and got.reason is None and got.trace_id is None


async def test_saving_a_score_model(any_store: ConvexStore, uid: str) -> None:
    model = Score(
        id=f"m-{uid}",
        scorer_id=f"sc-{uid}",
        run_id=f"run-{uid}",
        score=1,
        source="TEST",
        scorer={"name": "exact"},
        output="yes",
        created_at=T0,
        updated_at=T0,
    )
    saved = await any_store.scorers.save(model)
    got = await any_store.scorers.get(f"m-{uid}")
    assert got == saved and got.score == 1.0 and got.output == "yes" and got.input is None


async def test_payload_keys_convex_rejects_round_trip_exactly(
    any_store: ConvexStore, uid: str
) -> None:
    payload = {
        "scorer": {"$schema": "http://json-schema.org/draft-07/schema#", "name": "schema"},
        "input": {"prompt": {"ünïcødé": ["日本語", {"$ref": "#/x"}]}},
        "output": [{"": "empty key"}, {"$id": 1}],
        "metadata": {"$meta": {"é": True}},
        "additionalContext": {"_under": 1},
    }
    saved = await any_store.scorers.save(score(uid, **payload))
    got = await any_store.scorers.get(saved.id)
    assert got is not None and got == saved
    dumped = got.to_mastra()
    for key, value in payload.items():
        assert dumped[key] == value, key


async def test_strings_that_look_like_json_stay_strings(any_store: ConvexStore, uid: str) -> None:
    for value in ("42", '{"a": 1}', '["$x"]', '"quoted"', "null", "true", "plain text", ""):
        saved = await any_store.scorers.save(score(uid, input=value, output=value))
        got = await any_store.scorers.get(saved.id)
        assert got is not None and got.input == value and got.output == value, value


async def test_values_shaped_like_the_storage_wrapper_round_trip(
    any_store: ConvexStore, uid: str
) -> None:
    # input/output values Convex cannot hold are stored wrapped in a one-key object; a payload
    # that already has that shape is wrapped as well, so it is never mistaken for a wrapper.
    for value in (
        {"__convex_mastra_json__": '{"a": 1}'},
        {"__convex_mastra_json__": {"$nested": True}},
        [{"__convex_mastra_json__": "inner is plain data"}],
    ):
        saved = await any_store.scorers.save(score(uid, output=value, input=[value]))
        got = await any_store.scorers.get(saved.id)
        assert got is not None and got.output == value and got.input == [value], value


async def test_a_score_over_1_mib_is_refused_before_anything_is_written(
    any_store: ConvexStore, uid: str
) -> None:
    with pytest.raises(RecordTooLargeError) as caught:
        await any_store.scorers.save(score(uid, id=f"big-{uid}", output="x" * (1024 * 1024)))
    assert caught.value.record_id == f"big-{uid}"
    assert await any_store.scorers.get(f"big-{uid}") is None


async def test_list_by_scorer_newest_first_with_filters(any_store: ConvexStore, uid: str) -> None:
    for n in range(6):
        await any_store.scorers.save(
            score(
                uid,
                n,
                id=f"s{n}-{uid}",
                entityId=f"agent{n % 2}-{uid}",
                entityType="AGENT" if n < 4 else "WORKFLOW",
                source="TEST" if n == 5 else "LIVE",
                organizationId="org-a" if n % 3 == 0 else "org-b",
            )
        )
    scores = any_store.scorers
    page = await scores.list_by_scorer(f"sc-{uid}", page=1, per_page=4)
    assert [s.id for s in page.items] == [f"s{n}-{uid}" for n in (1, 0)]
    assert page.total == 6 and not page.has_more and page.page == 1
    first = await scores.list_by_scorer(f"sc-{uid}", per_page=4)
    assert [s.id for s in first.items] == [f"s{n}-{uid}" for n in (5, 4, 3, 2)] and first.has_more

    def ids(page: Any) -> list[str]:
        return [s.id.split("-")[0] for s in page.items]

    by_entity = await scores.list_by_scorer(
        f"sc-{uid}", entity_id=f"agent0-{uid}", entity_type="AGENT"
    )
    assert ids(by_entity) == ["s2", "s0"] and by_entity.total == 2
    by_entity_id = await scores.list_by_scorer(f"sc-{uid}", entity_id=f"agent0-{uid}")
    assert ids(by_entity_id) == ["s4", "s2", "s0"] and by_entity_id.total == 3
    by_type = await scores.list_by_scorer(f"sc-{uid}", entity_type="WORKFLOW")
    assert ids(by_type) == ["s5", "s4"] and by_type.total == 2
    by_source = await scores.list_by_scorer(f"sc-{uid}", source="LIVE", per_page=2)
    assert ids(by_source) == ["s4", "s3"] and by_source.total == 5 and by_source.has_more
    by_org = await scores.list_by_scorer(f"sc-{uid}", organization_id="org-a")
    assert ids(by_org) == ["s3", "s0"] and by_org.total == 2
    everything = await scores.list_by_scorer(f"sc-{uid}", per_page=None)
    assert len(everything.items) == 6 and everything.per_page is None


async def test_list_by_run_entity_and_span(any_store: ConvexStore, uid: str) -> None:
    for n in range(4):
        await any_store.scorers.save(
            score(
                uid,
                n,
                id=f"s{n}-{uid}",
                runId=f"run{n % 2}-{uid}",
                traceId=f"trace-{uid}",
                spanId=f"span{n // 2}",
                projectId="p1" if n else "p2",
            )
        )
    scores = any_store.scorers

    def ids(page: Any) -> list[str]:
        return [s.id.split("-")[0] for s in page.items]

    by_run = await scores.list_by_run(f"run1-{uid}")
    assert ids(by_run) == ["s3", "s1"] and by_run.total == 2
    by_entity = await scores.list_by_entity(f"agent-{uid}", "AGENT", per_page=3)
    assert ids(by_entity) == ["s3", "s2", "s1"] and by_entity.total == 4 and by_entity.has_more
    other_type = await scores.list_by_entity(f"agent-{uid}", "WORKFLOW")
    assert other_type.items == [] and other_type.total == 0
    by_span = await scores.list_by_span(f"trace-{uid}", "span0")
    assert ids(by_span) == ["s1", "s0"] and by_span.total == 2
    by_project = await scores.list_by_span(f"trace-{uid}", "span0", project_id="p1")
    assert ids(by_project) == ["s1"] and by_project.total == 1


async def test_bad_input_is_refused_before_anything_is_written(
    any_store: ConvexStore, uid: str
) -> None:
    scores = any_store.scorers
    bad: list[dict[str, Any]] = [
        {k: v for k, v in score(uid, id=f"b1-{uid}").items() if k != "scorerId"},
        score(uid, id=f"b2-{uid}", score=float("inf")),
        score(uid, id=f"b3-{uid}", scorer="not a dict"),
        score(uid, id=f"b4-{uid}", structuredOutput=True),  # not a column of the table
        score(uid, id=f"b5-{uid}", output={"n": 2**60}),
        score(uid, id=f"b6-{uid}", runId=""),
    ]
    for i, payload in enumerate(bad, start=1):
        with pytest.raises(ValidationError):
            await scores.save(payload)
        assert await scores.get(f"b{i}-{uid}") is None
    with pytest.raises(ValidationError):
        await scores.save("score")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        await scores.list_by_scorer("")
    with pytest.raises(ValidationError):
        await scores.list_by_run(f"run-{uid}", per_page=-1)
    with pytest.raises(ValidationError):
        await scores.list_by_entity(f"agent-{uid}", "")
    with pytest.raises(ValidationError):
        await scores.get("")


async def test_a_page_reads_about_its_size(
    store: ConvexStore, convex_deployment: Deployment, uid: str
) -> None:
    for n in range(40):
        await store.scorers.save(
            score(uid, n, traceId=f"trace-{uid}", spanId="span", runId=f"run-{uid}")
        )
    http = RawHttp(convex_deployment.url, convex_deployment.admin_key)
    for name, call in (
        ("scorer", lambda p: store.scorers.list_by_scorer(f"sc-{uid}", page=p, per_page=10)),
        (
            "scorer+entity",
            lambda p: store.scorers.list_by_scorer(
                f"sc-{uid}", entity_id=f"agent-{uid}", entity_type="AGENT", page=p, per_page=10
            ),
        ),
        ("run", lambda p: store.scorers.list_by_run(f"run-{uid}", page=p, per_page=10)),
        (
            "entity",
            lambda p: store.scorers.list_by_entity(f"agent-{uid}", "AGENT", page=p, per_page=10),
        ),
        ("span", lambda p: store.scorers.list_by_span(f"trace-{uid}", "span", page=p, per_page=10)),
    ):
        for page_no in (0, 3):
            seq = http.next_seq()
            page = await call(page_no)
            read = sum(int(c["documentsRead"]) for c in http.calls_since(seq))
            assert len(page.items) == 10 and page.total == 40
            assert read <= 10 + 5, (name, page_no, read)
