"""Bugs the reliability suite found, each pinned by a plain test (see docs/reliability.md).

The suite's scenarios and property tests found them among many inputs; these tests name the exact
input of each, so a regression says what broke without Hypothesis' help.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest

from convex_mastra import ConvexStore
from convex_mastra._codec import json_arg

T0 = datetime(2026, 7, 1, tzinfo=timezone.utc)


def _chain(levels: int) -> Any:
    value: Any = 1
    for level in range(levels):
        value = {f"l{level}": value}
    return value


@pytest.mark.parametrize(
    "metadata",
    [
        {"__proto__": {"x": 1}, "a": 1},
        {"__proto__": 5},
        {"a": {"__proto__": {"y": 2}}},
        {"list": [{"__proto__": 1}]},
    ],
    ids=["top", "scalar", "nested", "in-list"],
)
async def test_proto_keys_survive_save_and_update(
    rstore: ConvexStore, uid: str, metadata: dict[str, Any]
) -> None:
    # Sent as a plain object, "__proto__" went through `out[key] = value` in JavaScript (the
    # deployment's argument decoding, its replies) and vanished: {"__proto__": 5} came back {}.
    thread_id = f"proto-{uid}"
    await rstore.threads.save(
        {
            "id": thread_id,
            "resource_id": "r",
            "created_at": T0,
            "updated_at": T0,
            "metadata": metadata,
        }
    )
    assert (await rstore.threads.get(thread_id)).metadata == metadata  # type: ignore[union-attr]
    updated = await rstore.threads.update(thread_id, metadata={"__proto__": "again"})
    assert updated.metadata == {**metadata, "__proto__": "again"}
    resource = await rstore.resources.update(f"proto-{uid}", metadata=metadata)
    assert resource.metadata == metadata
    assert isinstance(json_arg(metadata, "metadata"), str)  # travels as JSON text


@pytest.mark.parametrize("levels", [14, 15, 16])
async def test_metadata_nested_at_the_document_limit(
    rstore: ConvexStore, uid: str, levels: int
) -> None:
    # Convex counts nesting from the document: a thread (1) holding metadata (2) holding 15
    # levels is 17 deep. Both sides counted from the metadata, sent it as an object, and the
    # insert failed ("Document is too nested") instead of storing JSON text.
    metadata = {"deep": _chain(levels)}
    thread_id = f"deep{levels}-{uid}"
    await rstore.threads.save(
        {
            "id": thread_id,
            "resource_id": "r",
            "created_at": T0,
            "updated_at": T0,
            "metadata": metadata,
        }
    )
    assert (await rstore.threads.get(thread_id)).metadata == metadata  # type: ignore[union-attr]
    assert (await rstore.resources.update(f"deep{levels}-{uid}", metadata=metadata)).metadata == (
        metadata
    )
    # Up to 16 levels in the document, the metadata still travels as an object.
    assert isinstance(json_arg(metadata, "metadata"), dict) == (levels <= 14)
