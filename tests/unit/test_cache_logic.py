"""ConvexServerCache's own arithmetic, against in-process handlers: the bound on calls per
operation, push chunks, expiry times, checks made before anything is sent, and the windows in
which ranges are read from upstream's handler (checked against Redis' LRANGE semantics)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convex_mastra import (
    BatchLimitError,
    ConfigurationError,
    ConvexServerCache,
    FunctionError,
    RecordTooLargeError,
    ValidationError,
)
from convex_mastra._stock import STOCK_RANGE_WINDOW, STOCK_SAFE_WINDOW

from .fakes import OUR_CACHE_INFO, FakeHandler, FakeTransport


def lrange(items: list[Any], start: int, stop: int) -> list[Any]:
    """Redis' LRANGE: both ends inclusive, negative indexes from the end, clamped."""
    n = len(items)
    first = max(n + start, 0) if start < 0 else start
    last = n + stop if stop < 0 else min(stop, n - 1)
    return items[first : last + 1] if first <= last else []


class Lists:
    """The list ops of a cache handler over one in-memory list per key."""

    def __init__(self, items: list[Any] | None = None, *, big: set[int] | None = None) -> None:
        self.items: list[Any] = list(items or [])
        self.big = big or set()  # indexes whose reading in a long window fails, as 16 MiB would

    def push_many(self, request: dict[str, Any]) -> dict[str, Any]:
        self.items.extend(request["values"])
        return {"ok": True, "result": None}

    def push(self, request: dict[str, Any]) -> dict[str, Any]:
        self.items.append(request["value"])
        return {"ok": True, "result": None}

    def length(self, request: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "result": float(len(self.items))}

    def from_to(self, request: dict[str, Any]) -> dict[str, Any]:
        start, stop, page = int(request["from"]), int(request["to"]), request.get("maxItems")
        got = lrange(self.items, start, stop)
        if page is None:  # upstream: the whole range in one answer
            first = max(len(self.items) + start, 0) if start < 0 else start
            if len(got) > STOCK_SAFE_WINDOW and self.big & set(range(first, first + len(got))):
                raise FunctionError("Too many bytes read in a single function execution")
            return {"ok": True, "result": got}
        first = max(len(self.items) + start, 0) if start < 0 else start
        last = first + len(got) - 1
        if len(got) <= page:
            return {"ok": True, "result": got}
        return {
            "ok": True,
            "result": got[:page],
            "hasMore": True,
            "next": float(first + page),
            "to": float(last),
        }

    def handler(self, *, stock: bool) -> FakeHandler:
        return FakeHandler(
            info=None if stock else dict(OUR_CACHE_INFO),
            ops={
                "listPushMany": self.push_many,
                "listPush": self.push,
                "listLength": self.length,
                "listFromTo": self.from_to,
                "set": lambda request: {"ok": True, "result": None},
                "clear": lambda request: {"ok": True, "result": None, "hasMore": True},
            },
        )


def cache(transport: FakeTransport, **options: Any) -> ConvexServerCache:
    return ConvexServerCache(transport=transport, **options)


# -- bounds on calls -------------------------------------------------------------------------


async def test_an_operation_makes_at_most_1000_calls_then_says_how_to_continue() -> None:
    transport = FakeTransport(Lists().handler(stock=False))
    async with cache(transport) as c:
        with pytest.raises(BatchLimitError, match=r"clear\(\) on prefix 'mastra:cache:'.*again"):
            await c.clear()
    assert transport.ops().count("clear") == 1000


async def test_pushes_go_in_calls_of_the_handlers_item_and_byte_bounds() -> None:
    lists = Lists()
    transport = FakeTransport(lists.handler(stock=False))
    values = [{"n": float(i)} for i in range(60)] + ["x" * 900_000] * 6
    async with cache(transport) as c:
        await c.list_push_many("k", values)
    pushes = [call.args["values"] for call in transport.calls if call.op == "listPushMany"]
    # 25 items per call, and at most 4 MiB: the third call stops before a fifth big item.
    assert [len(p) for p in pushes] == [25, 25, 14, 2]
    assert [v for p in pushes for v in p] == lists.items
    assert all(call.args["key"] == "mastra:cache:k" for call in transport.calls[1:])


async def test_our_range_follows_the_handlers_next_and_to() -> None:
    lists = Lists([f"v{i}" for i in range(103)])
    lists.items = [f'"{item}"' for item in lists.items]  # ours stores JSON text
    transport = FakeTransport(lists.handler(stock=False))
    async with cache(transport) as c:
        assert await c.list_range("k", 5, -3) == [f"v{i}" for i in range(5, 101)]
    pages = [call.args for call in transport.calls if call.op == "listFromTo"]
    assert [(p["from"], p["to"]) for p in pages] == [(5, -3), (30, 100), (55, 100), (80, 100)]
    assert all(p["maxItems"] == 25 for p in pages)


# -- checked before anything is sent ---------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda c: c.set(7, "v"), ValidationError),
        (lambda c: c.set("k", "v", ttl=-1), ValidationError),
        (lambda c: c.set("k", float("nan")), ValidationError),
        (lambda c: c.set("k", "x" * (1024 * 1024)), RecordTooLargeError),
        (lambda c: c.list_push_many("k", "abc"), ValidationError),
        (lambda c: c.list_range("k", 0, 1.5), ValidationError),
    ],
)
async def test_bad_input_is_refused_before_any_call(call: Any, error: type[Exception]) -> None:
    transport = FakeTransport(Lists().handler(stock=False))
    async with cache(transport) as c:
        with pytest.raises(error):
            await call(c)
    assert transport.calls == []


@pytest.mark.parametrize(
    ("options", "problem"),
    [({"key_prefix": ""}, "clear\\(\\) would remove"), ({"ttl": -5}, "ttl must be")],
)
def test_risky_settings_are_refused_up_front(options: dict[str, Any], problem: str) -> None:
    with pytest.raises(ConfigurationError, match=problem):
        cache(FakeTransport(Lists().handler(stock=False)), **options)


# -- expiry ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ttl", "expires_at"),
    [(None, 1_300_000), (2.5, 1_002_500), (0.0001, 1_000_001), (0, None)],
)
async def test_expiry_is_the_clock_plus_the_ttl_in_ms(ttl: Any, expires_at: Any) -> None:
    transport = FakeTransport(Lists().handler(stock=False))
    async with cache(transport, clock=lambda: 1000.0) as c:
        await c.set("k", "v", ttl=ttl)
    sent = transport.calls[-1].args
    assert sent["expiresAt"] == expires_at
    assert sent["now"] == 1_000_000  # the handler judges expiry by the same clock


async def test_a_cache_without_ttl_stores_without_expiry() -> None:
    transport = FakeTransport(Lists().handler(stock=False))
    async with cache(transport, ttl=None) as c:
        await c.set("k", "v")
    assert transport.calls[-1].args["expiresAt"] is None
    assert "now" not in transport.calls[-1].args


# -- upstream's handler ----------------------------------------------------------------------


async def test_an_injected_clock_is_refused_on_upstreams_handler() -> None:
    transport = FakeTransport(Lists().handler(stock=True))
    async with cache(transport, clock=lambda: 1000.0) as c:
        assert await c.capabilities() == frozenset()
        with pytest.raises(ConfigurationError, match="server's clock only"):
            await c.set("k", "v")
    assert "set" not in transport.ops()


async def test_upstream_gets_one_push_per_item_all_checked_first() -> None:
    lists = Lists()
    transport = FakeTransport(lists.handler(stock=True))
    async with cache(transport) as c:
        with pytest.raises(ValidationError, match=r"values\[2\]"):
            await c.list_push_many("k", ["a", "b", {"$ref": 1}])
        assert lists.items == []
        await c.list_push_many("k", ["a", "b", "c"])
    assert transport.ops().count("listPush") == 3 and lists.items == ["a", "b", "c"]


def run_range(items: list[Any], start: int, stop: int, big: set[int] = frozenset()) -> Any:
    async def main() -> tuple[list[Any], list[dict[str, Any]]]:
        transport = FakeTransport(Lists(items, big=set(big)).handler(stock=True))
        async with cache(transport) as c:
            got = await c.list_range("k", start, stop)
        return got, [call.args for call in transport.calls if call.op == "listFromTo"]

    return asyncio.run(main())


@settings(max_examples=150, deadline=None)
@given(
    length=st.sampled_from([0, 1, 14, 15, 999, 1000, 1001, 2500]),
    start=st.integers(-3000, 3000),
    stop=st.integers(-3000, 3000),
)
def test_upstream_ranges_read_in_windows_match_lrange(length: int, start: int, stop: int) -> None:
    items = [f"v{i}" for i in range(length)]
    got, reads = run_range(items, start, stop)
    assert got == lrange(items, start, stop)
    # Beyond the one call of a short range, reads are windows of absolute indexes of at most
    # STOCK_RANGE_WINDOW items, and there are no more of them than the range needs.
    if len(reads) > 1:
        for read in reads:
            assert 0 <= read["from"] <= read["to"] < read["from"] + STOCK_RANGE_WINDOW
        assert len(reads) <= length // STOCK_RANGE_WINDOW + 1


def test_a_window_too_heavy_to_read_is_read_again_in_safe_windows() -> None:
    items = [f"v{i}" for i in range(100)]
    got, reads = run_range(items, 0, -1, big={40})
    assert got == items
    spans = [(r["from"], r["to"]) for r in reads]
    assert spans[0] == (0, STOCK_RANGE_WINDOW - 1)  # failed
    assert spans[1:3] == [(0, 14), (15, 29)]
    assert all(to - first + 1 == STOCK_SAFE_WINDOW for first, to in spans[1:])
