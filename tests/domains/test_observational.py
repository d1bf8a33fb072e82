"""store.observational_memory on our handler and the stock one, and with @mastra/convex's
TypeScript client."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import anyio
import pytest

from convex_mastra import ConvexStore, NotFoundError, ObservationalMemoryRecord
from convex_mastra.pytest_plugin import Deployment
from tests.domains.conftest import date, refused_offline
from tests.local.test_ts_client import run_ts_client

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)


async def test_initialize_get_history_and_clear(any_store: ConvexStore, uid: str) -> None:
    om = any_store.observational_memory
    first = await om.initialize(
        scope="thread", thread_id=f"t-{uid}", resource_id=f"r-{uid}", config={"a": {"b": 1}}
    )
    got = await om.get(f"t-{uid}", f"r-{uid}")
    assert got == first and got.generation_count == 0 and got.config == {"a": {"b": 1}}
    assert await om.get(f"other-{uid}") is None

    second = await om.create_reflection_generation(first, "reflected", 7)
    third = await om.create_reflection_generation(second, "again", 3)
    assert (await om.get(f"t-{uid}")).id == third.id  # type: ignore[union-attr]
    history = await om.history(f"t-{uid}")
    assert [r.generation_count for r in history] == [2, 1, 0]
    assert history[0].active_observations == "again" and history[0].origin_type == "reflection"
    assert [r.id for r in await om.history(f"t-{uid}", limit=1, offset=1)] == [second.id]

    resource = await om.initialize(scope="resource", resource_id=f"r-{uid}")
    assert (await om.get(None, f"r-{uid}")) == resource  # resource scope: its own key
    await om.clear(f"t-{uid}")
    assert await om.get(f"t-{uid}") is None and await om.history(f"t-{uid}") == []
    assert await om.get(None, f"r-{uid}") == resource


async def test_observations_buffer_and_activate(any_store: ConvexStore, uid: str) -> None:
    om = any_store.observational_memory
    record = await om.initialize(scope="thread", thread_id=f"t-{uid}", resource_id=f"r-{uid}")
    await om.set_pending_message_tokens(record.id, 500)
    await om.update_active_observations(
        record.id,
        observations="- user likes tea",
        token_count=40,
        last_observed_at=T0,
        observed_message_ids=["m1", "m2"],
    )
    now = await om.get(f"t-{uid}")
    assert now is not None and now.active_observations == "- user likes tea"
    assert now.pending_message_tokens == 0 and now.total_tokens_observed == 40
    assert now.observed_message_ids == ["m1", "m2"] and now.last_observed_at == T0

    async def buffer(n: int) -> None:
        await om.update_buffered_observations(
            record.id,
            {
                "cycleId": f"c{n}",
                "observations": f"- fact {n}",
                "tokenCount": 10,
                "messageIds": [f"b{n}"],
                "messageTokens": 100,
                "lastObservedAt": T0 + timedelta(minutes=n),
            },
            last_buffered_at_time=T0,
        )

    async with anyio.create_task_group() as group:  # concurrent buffers all land
        for n in range(5):
            group.start_soon(buffer, n)
    buffered = await om.get(f"t-{uid}")
    assert buffered is not None and len(buffered.buffered_observation_chunks or []) == 5

    await om.set_pending_message_tokens(record.id, 500)
    swapped = await om.swap_buffered_to_active(
        record.id,
        activation_ratio=1.0,
        message_tokens_threshold=1000,
        current_pending_tokens=500,
        force_max_activation=True,
    )
    assert swapped.chunks_activated == 5 and swapped.message_tokens_activated == 500
    assert sorted(swapped.activated_cycle_ids) == [f"c{n}" for n in range(5)]
    after = await om.get(f"t-{uid}")
    assert after is not None and not after.buffered_observation_chunks
    assert "- user likes tea" in after.active_observations
    assert all(f"- fact {n}" in after.active_observations for n in range(5))
    assert after.pending_message_tokens == 0 and after.observation_token_count == 90
    empty = await om.swap_buffered_to_active(
        record.id, activation_ratio=1, message_tokens_threshold=1, current_pending_tokens=0
    )
    assert empty.chunks_activated == 0


async def test_a_buffered_reflection_becomes_the_next_generation(
    any_store: ConvexStore, uid: str
) -> None:
    om = any_store.observational_memory
    record = await om.initialize(scope="thread", thread_id=f"t-{uid}", resource_id=f"r-{uid}")
    await om.update_active_observations(
        record.id, observations="line 1\nline 2\nline 3", token_count=30, last_observed_at=T0
    )
    await om.update_buffered_reflection(
        record.id,
        reflection="summary of 1-2",
        token_count=5,
        input_token_count=20,
        reflected_observation_line_count=2,
    )
    current = await om.get(f"t-{uid}")
    assert current is not None and current.buffered_reflection == "summary of 1-2"
    assert current.buffered_reflection_tokens == 5 and current.reflected_observation_line_count == 2
    nxt = await om.swap_buffered_reflection_to_active(current, 6)
    assert nxt.generation_count == 1 and nxt.origin_type == "reflection"
    assert nxt.active_observations == "summary of 1-2\n\nline 3"
    assert nxt.observation_token_count == 6 and nxt.total_tokens_observed == 30
    old = (await om.history(f"t-{uid}"))[1]
    assert old.id == record.id and old.buffered_reflection is None


async def test_concurrent_flag_setters_never_lose_an_update(
    any_store: ConvexStore, uid: str
) -> None:
    om = any_store.observational_memory
    record = await om.initialize(scope="thread", thread_id=f"t-{uid}", resource_id=f"r-{uid}")
    async with anyio.create_task_group() as group:
        group.start_soon(om.set_reflecting, record.id, True)
        group.start_soon(om.set_observing, record.id, True)
        group.start_soon(om.set_buffering_reflection, record.id, True)
        group.start_soon(
            lambda: om.set_buffering_observation(record.id, True, last_buffered_at_tokens=77)
        )
        group.start_soon(om.set_pending_message_tokens, record.id, 123)
        group.start_soon(om.update_config, record.id, {"a": {"c": 2}})
    got = await om.get(f"t-{uid}")
    assert got is not None
    assert got.is_reflecting and got.is_observing and got.is_buffering_reflection
    assert got.is_buffering_observation and got.last_buffered_at_tokens == 77
    assert got.pending_message_tokens == 123 and got.config == {"a": {"c": 2}}
    await om.set_observing(record.id, False)
    assert not (await om.get(f"t-{uid}")).is_observing  # type: ignore[union-attr]
    with pytest.raises(NotFoundError):
        await om.set_reflecting(f"missing-{uid}", True)


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda s: s.observational_memory.get(None, None), "resource_id"),
        (lambda s: s.observational_memory.get(""), "resource_id"),
        (lambda s: s.observational_memory.history("t", limit=-1), "limit"),
        (lambda s: s.observational_memory.initialize(scope="team", resource_id="r"),
         "observational memory"),
        (lambda s: s.observational_memory.set_observing("r", 1), "value"),
        (lambda s: s.observational_memory.set_pending_message_tokens("r", -1), "token_count"),
        (lambda s: s.observational_memory.update_buffered_observations("r", {"x": 1}), "chunk"),
        (lambda s: s.observational_memory.update_config("r", [1]), "config"),
        (lambda s: s.observational_memory.swap_buffered_to_active(
            "r", activation_ratio="all", message_tokens_threshold=1, current_pending_tokens=1),
         "activation_ratio"),
    ],
)  # fmt: skip
async def test_bad_input_fails_before_any_call(call: Any, field: str) -> None:
    await refused_offline(call, field)


async def test_typescript_and_python_read_each_others_memory(
    any_deployment: Deployment, uid: str
) -> None:
    [started, fetched] = run_ts_client(
        any_deployment,
        [
            {
                "domain": "memory",
                "method": "initializeObservationalMemory",
                "args": {
                    "scope": "thread",
                    "threadId": f"ts-{uid}",
                    "resourceId": f"r-{uid}",
                    "config": {"observation": {"messageTokens": 1000}},
                },
            },
            {
                "domain": "memory",
                "spread": True,
                "method": "getObservationalMemory",
                "args": [f"ts-{uid}", f"r-{uid}"],
            },
        ],
    )
    assert "error" not in started, started
    ts_id = started["result"]["id"]
    assert fetched["result"]["id"] == ts_id and fetched["result"]["generationCount"] == 0
    async with ConvexStore(any_deployment.url, any_deployment.admin_key) as store:
        om = store.observational_memory
        theirs = await om.get(f"ts-{uid}", f"r-{uid}")
        assert theirs is not None and theirs.id == ts_id
        assert theirs.config == {"observation": {"messageTokens": 1000}}
        await om.update_active_observations(
            ts_id, observations="- from python", token_count=9, last_observed_at=T0
        )
        mine = await om.initialize(scope="thread", thread_id=f"py-{uid}", resource_id=f"r-{uid}")
        await om.update_buffered_observations(
            mine.id,
            {"cycleId": "c1", "observations": "- buffered", "tokenCount": 3,
             "messageIds": ["m"], "messageTokens": 50, "lastObservedAt": T0},
        )  # fmt: skip
        await om.set_reflecting(mine.id, True)

    spread = {"domain": "memory", "spread": True, "method": "getObservationalMemory"}
    updated, read = run_ts_client(
        any_deployment,
        [{**spread, "args": [f"ts-{uid}", f"r-{uid}"]}, {**spread, "args": [f"py-{uid}", None]}],
    )
    assert updated["result"]["activeObservations"] == "- from python", updated
    assert updated["result"]["totalTokensObserved"] == 9
    assert updated["result"]["lastObservedAt"] == date("2026-11-23T09:00:00.000Z")
    record = read["result"]
    assert record["id"] == mine.id and record["isReflecting"] is True
    [chunk] = record["bufferedObservationChunks"]
    assert chunk["observations"] == "- buffered" and chunk["messageTokens"] == 50
    assert chunk["lastObservedAt"] == date("2026-11-23T09:00:00.000Z")


def test_records_validate_either_spelling() -> None:
    record = ObservationalMemoryRecord.model_validate(
        {"id": "x", "scope": "resource", "resourceId": "r", "generation_count": 2}
    )
    assert record.generation_count == 2 and record.config == {}
    assert record.to_mastra()["resourceId"] == "r"


async def test_unknown_records_raise_not_found(any_store: ConvexStore, uid: str) -> None:
    om = any_store.observational_memory
    missing = f"missing-{uid}"
    calls: list[Any] = [
        lambda: om.update_active_observations(
            missing, observations="x", token_count=1, last_observed_at=T0
        ),
        lambda: om.update_buffered_observations(missing, {"observations": "x"}),
        lambda: om.update_buffered_reflection(
            missing,
            reflection="x",
            token_count=1,
            input_token_count=1,
            reflected_observation_line_count=1,
        ),
        lambda: om.update_config(missing, {"a": 1}),
        lambda: om.swap_buffered_to_active(
            missing, activation_ratio=1, message_tokens_threshold=1, current_pending_tokens=1
        ),
    ]
    for call in calls:
        with pytest.raises(NotFoundError, match="not found"):
            await call()


async def test_insert_record_round_trips_and_history_takes_a_time_window(
    any_store: ConvexStore, uid: str
) -> None:
    om = any_store.observational_memory
    records = [
        {
            "id": f"g{n}-{uid}",
            "scope": "resource",
            "resourceId": f"r-{uid}",
            "generationCount": n,
            "createdAt": T0 + timedelta(hours=n),
            "updatedAt": T0 + timedelta(hours=n),
            "lastObservedAt": T0,
            "activeObservations": f"generation {n}",
            "bufferedObservationChunks": [
                {"cycleId": "c", "observations": "- x", "messageTokens": 5, "createdAt": T0}
            ],
            "metadata": {"$source": "import"},
            "config": {"k": n},
            "observedMessageIds": ["m1"],
            "isReflecting": n == 2,
        }
        for n in range(4)
    ]
    for record in records:
        await om.insert_record(record)
    current = await om.get(None, f"r-{uid}")
    assert current is not None and current.id == f"g3-{uid}"
    assert current.metadata == {"$source": "import"} and current.config == {"k": 3}
    assert current.buffered_observation_chunks == [
        {"cycleId": "c", "observations": "- x", "messageTokens": 5,
         "createdAt": "2026-11-23T09:00:00.000Z"}
    ]  # fmt: skip
    assert current.last_observed_at == T0 and current.observed_message_ids == ["m1"]
    window = await om.history(
        None, f"r-{uid}", start=T0 + timedelta(hours=1), end=T0 + timedelta(hours=2)
    )
    assert [r.id for r in window] == [f"g2-{uid}", f"g1-{uid}"]
    assert window[0].is_reflecting and not window[1].is_reflecting
