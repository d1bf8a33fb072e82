"""Batching and the handler's declared facts, as pure logic: no deployment, no Node."""

from __future__ import annotations

import pytest

from convex_mastra import DeploymentUnavailable, FunctionError, PartialWriteError, ValidationError
from convex_mastra._dispatch import HandlerInfo, batches
from convex_mastra._domains._base import in_chunks


def test_batches_respect_items_and_bytes_and_keep_order() -> None:
    items = ["a" * n for n in (1, 2, 3, 4, 5, 6)]
    got = list(batches(items, max_items=2, max_bytes=1000, size=len))
    assert got == [items[0:2], items[2:4], items[4:6]]
    got = list(batches(items, max_items=10, max_bytes=7, size=len))
    assert got == [items[0:3], items[3:4], items[4:5], items[5:6]]
    assert [x for batch in got for x in batch] == items


def test_an_item_over_the_byte_bound_goes_alone() -> None:
    assert list(batches(["x" * 50, "y"], max_items=10, max_bytes=10, size=len)) == [
        ["x" * 50],
        ["y"],
    ]
    assert list(batches([], max_items=1, max_bytes=1, size=len)) == []


async def test_in_chunks_applies_every_chunk_in_order() -> None:
    seen: list[list[str]] = []

    async def apply(chunk: list[str]) -> None:
        seen.append(chunk)

    await in_chunks([f"i{n}" for n in range(7)], 3, "x", apply)
    assert seen == [["i0", "i1", "i2"], ["i3", "i4", "i5"], ["i6"]]


async def test_a_failure_after_the_first_chunk_says_what_was_applied() -> None:
    ids = [f"i{n}" for n in range(25)]

    async def apply(chunk: list[str]) -> None:
        if "i20" in chunk:
            raise DeploymentUnavailable("lost")

    with pytest.raises(PartialWriteError) as raised:
        await in_chunks(ids, 10, "messages.delete", apply)
    assert raised.value.done == ids[:20] and raised.value.not_done == ids[20:]
    assert isinstance(raised.value.__cause__, DeploymentUnavailable)
    assert "20 of 25" in str(raised.value) and "and 10 more" in str(raised.value)


async def test_a_failure_of_the_first_chunk_is_raised_as_it_is() -> None:
    async def apply(chunk: list[str]) -> None:
        raise ValidationError("bad")

    with pytest.raises(ValidationError, match="bad"):
        await in_chunks(["a", "b"], 1, "x", apply)


def test_handler_info_reads_limits_and_counted_groups() -> None:
    info = HandlerInfo(
        name="convex-mastra",
        version="9.9.9",
        protocol=2,
        limits={"loadManyIds": 7},
        counted={"t": frozenset({frozenset(), frozenset({"a", "b"})})},
    )
    assert info.load_many == info.limit("loadManyIds") == 7
    assert info.counts("t", ["b", "a"]) and info.counts("t", [])
    assert not info.counts("t", ["a"]) and not info.counts("other", [])
    with pytest.raises(FunctionError, match="redeploy"):
        info.limit("pageItems")
    assert not info.is_stock and not info.supports("anything")
    assert info.read_ops == {"info"}  # nothing else is resent unless declared
