"""Bad input, property-based, for the other free-form payloads: workflow snapshots, scores,
generic records and cache values.

The same strategies and oracle as test_bad_input.py (tests/reliability/strategies.py): each value
reads back equal, or ValidationError comes before any request, or RecordTooLargeError names the
record and nothing is written.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from convex_mastra import ConvexServerCache, ConvexStore, LocalDeployment
from tests.conftest import RawHttp
from tests.reliability.conftest import Results, SecretAudit
from tests.reliability.strategies import expected, json_size, objects, same, values
from tests.reliability.test_bad_input import HYPOTHESIS, _attempt, _check

OUTCOMES: dict[str, Counter[str]] = {}


def _tally(name: str, outcome: str) -> None:
    OUTCOMES.setdefault(name, Counter())[outcome] += 1


@pytest.fixture
def http(deployment: LocalDeployment) -> RawHttp:
    return RawHttp(deployment.url, deployment.admin_key)


@pytest.fixture
async def cache(deployment: LocalDeployment) -> AsyncIterator[ConvexServerCache]:
    async with ConvexServerCache(
        deployment.url, deployment.admin_key, key_prefix="reliability:", ttl=0
    ) as c:
        yield c


@HYPOTHESIS
@given(context=objects(), extra=values())
async def test_workflow_snapshots(
    rstore: ConvexStore, http: RawHttp, audit: SecretAudit, context: dict[Any, Any], extra: Any
) -> None:
    run_id = uuid.uuid4().hex[:12]
    snapshot = {"status": "running", "context": context, "result": extra}
    outcome, exc = await _attempt(
        rstore.workflows.persist_snapshot("reliability-flow", run_id, snapshot),
        http,
        audit,
        f"reliability-flow-{run_id}",
    )
    _check(expected(snapshot, overhead=300), outcome, exc, snapshot)
    _tally("workflow_snapshot", outcome)
    stored = await rstore.workflows.load_snapshot("reliability-flow", run_id)
    if outcome == "store":
        assert stored is not None and same(stored.to_mastra(), snapshot), (stored, snapshot)
    else:
        assert stored is None


@HYPOTHESIS
@given(record=objects())
async def test_generic_records(
    rstore: ConvexStore, http: RawHttp, audit: SecretAudit, record: dict[Any, Any]
) -> None:
    record_id = uuid.uuid4().hex[:12]
    full = {**record, "id": record_id}
    outcome, exc = await _attempt(
        rstore.documents.insert("reliability_records", full), http, audit, record_id
    )
    _check(expected(full, overhead=300), outcome, exc, full)
    _tally("document_record", outcome)
    stored = await rstore.documents.get("reliability_records", id=record_id)
    if outcome == "store":
        assert stored is not None and same(stored, full), (stored, full)
    else:
        assert stored is None


@HYPOTHESIS
@given(payload=values(), metadata=st.one_of(st.none(), objects()))
async def test_score_payloads(
    rstore: ConvexStore,
    http: RawHttp,
    audit: SecretAudit,
    payload: Any,
    metadata: dict[Any, Any] | None,
) -> None:
    score_id = uuid.uuid4().hex[:12]
    score = {
        "id": score_id,
        "scorer_id": "reliability",
        "run_id": "run",
        "score": 0.5,
        "source": "TEST",
        "scorer": {"name": "reliability"},
        "input": payload,
        "output": payload,
        "metadata": metadata,
    }
    outcome, exc = await _attempt(rstore.scorers.save(score), http, audit, score_id)
    # Each column is its own JSON value (nesting counts from each); sizes add up.
    verdicts = {expected(payload), expected(metadata)}
    size = 2 * json_size(payload) + json_size(metadata) if "refuse" not in verdicts else 0
    verdict = "refuse" if "refuse" in verdicts else expected("x" * size, overhead=600)
    _check(verdict, outcome, exc, score)
    _tally("score", outcome)
    stored = await rstore.scorers.get(score_id)
    if outcome == "store":
        assert stored is not None
        assert same(stored.input, payload) and same(stored.output, payload), stored
        assert same(stored.metadata, metadata), (stored.metadata, metadata)
    else:
        assert stored is None


@HYPOTHESIS
@given(value=values())
async def test_cache_values(
    cache: ConvexServerCache, http: RawHttp, audit: SecretAudit, value: Any
) -> None:
    key = uuid.uuid4().hex[:12]
    outcome, exc = await _attempt(cache.set(key, value), http, audit, f"reliability:{key}")
    _check(expected(value, overhead=300), outcome, exc, value)
    _tally("cache_value", outcome)
    stored = await cache.get(key)
    if outcome == "store":
        assert same(stored, value), (stored, value)
    else:
        assert stored is None


def test_bad_input_more_figures(results: Results) -> None:
    for name in ("workflow_snapshot", "document_record", "score", "cache_value"):
        counts = OUTCOMES.get(name, Counter())
        results.record(
            "bad_input",
            **{
                f"{name}_tried": sum(counts.values()),
                f"{name}_stored": counts["store"],
                f"{name}_refused": counts["refuse"],
                f"{name}_too_large": counts["too_large"],
            },
        )
