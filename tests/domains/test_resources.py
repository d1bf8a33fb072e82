"""store.resources against a real local deployment (ours and the stock handler)."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from convex_mastra import ConvexStore, Resource, ValidationError
from tests.domains.test_threads import T0


def resource(uid: str, **extra: Any) -> dict[str, Any]:
    return {"id": f"r-{uid}", "createdAt": T0, "updatedAt": T0, **extra}


async def test_save_and_get_round_trip(any_store: ConvexStore, uid: str) -> None:
    saved = await any_store.resources.save(
        resource(uid, workingMemory="# Notes\n- likes tea", metadata={"$plan": "pro", "ü": 1})
    )
    assert isinstance(saved, Resource)
    assert await any_store.resources.get(saved.id) == saved
    assert await any_store.resources.get(f"missing-{uid}") is None


async def test_update_creates_a_missing_resource(any_store: ConvexStore, uid: str) -> None:
    created = await any_store.resources.update(f"r-{uid}", working_memory="hello")
    assert created.working_memory == "hello" and created.metadata == {}
    assert await any_store.resources.get(f"r-{uid}") == created


async def test_update_merges_metadata_and_keeps_working_memory(
    any_store: ConvexStore, uid: str
) -> None:
    await any_store.resources.save(resource(uid, workingMemory="wm", metadata={"a": 1}))
    updated = await any_store.resources.update(f"r-{uid}", metadata={"b": 2, "$c": 3})
    assert updated.working_memory == "wm" and updated.metadata == {"a": 1, "b": 2, "$c": 3}
    updated = await any_store.resources.update(f"r-{uid}", working_memory="")
    assert updated.working_memory == "" and updated.metadata == {"a": 1, "b": 2, "$c": 3}
    assert updated.updated_at >= T0


async def test_concurrent_metadata_updates_lose_nothing(any_store: ConvexStore, uid: str) -> None:
    await any_store.resources.save(resource(uid))

    async def add(n: int) -> None:
        await any_store.resources.update(f"r-{uid}", metadata={f"k{n}": n})

    async with anyio.create_task_group() as tg:
        for n in range(50):
            tg.start_soon(add, n)
    got = await any_store.resources.get(f"r-{uid}")
    assert got is not None and got.metadata == {f"k{n}": n for n in range(50)}


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda s: s.resources.get(""), "resource_id"),
        (lambda s: s.resources.update(" ", working_memory="x"), "resource_id"),
        (lambda s: s.resources.update("r", working_memory=3), "working_memory"),
        (lambda s: s.resources.update("r", metadata=[1]), "metadata"),
        (lambda s: s.resources.update("r", metadata={"n": float("inf")}), "metadata"),
        (lambda s: s.resources.save({"id": "r", "createdAt": "yesterday"}), "resource"),
        (lambda s: s.resources.save({**resource("x"), "color": "red"}), "resource"),
    ],
)
async def test_bad_arguments_fail_before_any_call(call: Any, field: str) -> None:
    async with ConvexStore("http://127.0.0.1:9", "no-key") as offline:
        with pytest.raises(ValidationError) as error:
            await call(offline)
    assert error.value.field == field
