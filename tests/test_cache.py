"""ConvexServerCache against the local deployment: every operation, its edges and its bounds.

Each test uses its own key prefix, so ``clear()`` in one test never touches another's keys. The
deployment's per-call stats (``/_local/calls``) show what every mutation wrote; an autouse
fixture checks the bound after each test: no cache call wrote more than 25 list items (26
documents: the items plus the row of their key), and no ``clear`` call more than 25 documents.
"""

from __future__ import annotations

import functools
import gc
import itertools
import math
import re
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import pytest

from convex_mastra import (
    BatchLimitError,
    ConfigurationError,
    ConvexServerCache,
    RecordTooLargeError,
    StorageOperationError,
    ValidationError,
)
from convex_mastra import _stock as stock_module
from convex_mastra._codec import MAX_DOCUMENT_BYTES as MAX_ROW_BYTES
from convex_mastra._stock import STOCK_MAX_ROW_BYTES
from convex_mastra.pytest_plugin import Deployment
from tests.conftest import RawHttp, import_rows

CACHE = "mastra/cache:handle"
LIST_BOUND = 25
"""Most list items one cache mutation may write."""


class FakeClock:
    """Epoch seconds that move only when told to; the cache sends them as the server's `now`."""

    def __init__(self, start: float = 1_900_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def stats(convex_deployment: Deployment) -> RawHttp:
    if convex_deployment.local is None:
        pytest.skip("per-call stats come from the local deployment")
    return RawHttp(convex_deployment.url, convex_deployment.admin_key)


def cache_calls(stats: RawHttp, since: int, op: str | None = None) -> list[dict[str, Any]]:
    calls = [c for c in stats.calls_since(since) if c["path"].startswith(CACHE)]
    return [c for c in calls if op is None or c.get("op") == op]


@pytest.fixture(autouse=True)
def every_call_within_bounds(
    request: pytest.FixtureRequest, convex_deployment: Deployment
) -> Iterator[None]:
    """After each test: the bound on writes per call held for every cache call it made.

    Ours writes at most 25 list items per call plus its key's row (25 documents for clear);
    upstream's handler may write its key's row twice (marked deleted, then deleted).
    """
    if convex_deployment.local is None:
        yield
        return
    checks = [(RawHttp(convex_deployment.url, convex_deployment.admin_key), LIST_BOUND + 1)]
    if {"stock_deployment", "any_deployment"} & set(request.fixturenames):
        stock: Deployment = request.getfixturevalue("stock_deployment")
        checks.append((RawHttp(stock.url, stock.admin_key), LIST_BOUND + 2))
    starts = [http.next_seq() for http, _ in checks]
    yield
    for (http, bound), since in zip(checks, starts, strict=True):
        for call in cache_calls(http, since):
            if http.url == convex_deployment.url and call.get("op") == "clear":
                assert call["documentsWritten"] <= LIST_BOUND, call
            assert call["documentsWritten"] <= bound, call


@pytest.fixture
def prefix(uid: str) -> str:
    return f"test:{uid}:"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def cache(
    convex_deployment: Deployment, prefix: str, clock: FakeClock
) -> AsyncIterator[ConvexServerCache]:
    async with ConvexServerCache(
        convex_deployment.url, convex_deployment.admin_key, key_prefix=prefix, clock=clock
    ) as c:
        yield c


@pytest.fixture
async def any_cache(any_deployment: Deployment, prefix: str) -> AsyncIterator[ConvexServerCache]:
    """A cache on our handler, then on the stock one (the server's clock decides expiry)."""
    async with ConvexServerCache(
        any_deployment.url, any_deployment.admin_key, key_prefix=prefix
    ) as c:
        yield c


@pytest.fixture
def any_stats(any_deployment: Deployment) -> RawHttp:
    return RawHttp(any_deployment.url, any_deployment.admin_key)


async def can(cache: ConvexServerCache, capability: str) -> bool:
    """Whether the deployed cache handler declares ``capability``."""
    return capability in await cache.capabilities()


# -- values ---------------------------------------------------------------------------------


async def test_values_round_trip_as_json(any_cache: ConvexServerCache) -> None:
    values: list[Any] = [
        {"text": "hello", "n": 3, "f": 1.5, "ok": True, "none": None, "_x": "ü"},
        {"a.b": {"c": [1, [2, [3]]]}, "empty": {}, "list": []},
        [1, "two", 3.25, None],
        "plain string",
        2**53 - 1,
        -0.5,
        0,
        False,
    ]
    for i, value in enumerate(values):
        await any_cache.set(f"v{i}", value)
    for i, value in enumerate(values):
        got = await any_cache.get(f"v{i}")
        assert got == value
        assert type(got) is type(value)  # ints stay ints, floats stay floats
    await any_cache.set("tuple", (1, 2))
    assert await any_cache.get("tuple") == [1, 2]
    await any_cache.set("", "the empty key is a key")
    assert await any_cache.get("") == "the empty key is a key"
    assert await any_cache.get("missing") is None


async def test_any_json_round_trips_on_our_handler(cache: ConvexServerCache) -> None:
    # Object keys that Convex refuses as field names travel inside the JSON text.
    value = {"$ref": "#/x", "名前": "ü", "": [], "__proto__": 1, "f": 2.0}
    await cache.set("k", value)
    got = await cache.get("k")
    assert got == value and type(got["f"]) is float


async def test_set_replaces_and_delete_removes(any_cache: ConvexServerCache) -> None:
    await any_cache.set("k", 1)
    await any_cache.set("k", {"now": "a dict"})
    assert await any_cache.get("k") == {"now": "a dict"}
    await any_cache.delete("k")
    assert await any_cache.get("k") is None
    await any_cache.delete("k")  # deleting a missing key is fine
    await any_cache.set("k", None)
    assert await any_cache.get("k") is None


async def test_increment_counts_and_reads_back(any_cache: ConvexServerCache) -> None:
    assert [await any_cache.increment("n") for _ in range(3)] == [1, 2, 3]
    # Upstream's handler reads a counter as null; ours as its number.
    assert await any_cache.get("n") == (3 if await can(any_cache, "counter_reads") else None)
    assert await any_cache.increment("n") == 4
    await any_cache.set("n", "reset")  # set replaces a counter, as upstream
    assert await any_cache.get("n") == "reset"


async def test_ttl_by_the_servers_clock(any_cache: ConvexServerCache) -> None:
    await any_cache.set("short", "s", ttl=1)
    await any_cache.list_push("list", "l")
    await any_cache.set("forever", "f", ttl=0)
    assert await any_cache.get("short") == "s"
    await anyio.sleep(1.1)
    assert await any_cache.get("short") is None
    assert await any_cache.get("forever") == "f"
    assert await any_cache.list_range("list", 0) == ["l"]  # the default ttl: 300 s


# -- expiry, with the injectable clock -----------------------------------------------------


async def test_ttl_expiry_follows_the_clock(cache: ConvexServerCache, clock: FakeClock) -> None:
    await cache.set("short", "s", ttl=10)
    await cache.set("default", "d")  # the cache's ttl: 300 s
    await cache.set("forever", "f", ttl=0)
    clock.advance(9.999)
    assert await cache.get("short") == "s"
    clock.advance(0.001)  # expiresAt <= now: expired
    assert await cache.get("short") is None
    clock.advance(289.999)
    assert await cache.get("default") == "d"
    clock.advance(0.001)
    assert await cache.get("default") is None
    clock.advance(10 * 365 * 86400)
    assert await cache.get("forever") == "f"


async def test_ttl_none_disables_expiry(
    convex_deployment: Deployment, prefix: str, clock: FakeClock
) -> None:
    async with ConvexServerCache(
        convex_deployment.url, convex_deployment.admin_key, key_prefix=prefix, ttl=None, clock=clock
    ) as cache:
        await cache.set("k", 1)
        await cache.list_push("l", 1)
        await cache.increment("n")
        clock.advance(10 * 365 * 86400)
        assert await cache.get("k") == 1
        assert await cache.list_range("l", 0) == [1]
        assert await cache.increment("n") == 2
        await cache.set("short", 1, ttl=1.5)
        clock.advance(1.5)
        assert await cache.get("short") is None


async def test_list_push_refreshes_the_list_ttl(cache: ConvexServerCache, clock: FakeClock) -> None:
    await cache.list_push("l", "a")
    clock.advance(200)
    await cache.list_push("l", "b")  # expiry is now 300 s from here
    clock.advance(200)
    assert await cache.list_range("l", 0) == ["a", "b"]
    clock.advance(100)
    assert await cache.list_length("l") == 0
    assert await cache.list_range("l", 0) == []
    await cache.list_push("l", "fresh")  # a new list, starting at index 0
    assert await cache.list_range("l", 0) == ["fresh"]


async def test_increment_refreshes_and_restarts_after_expiry(
    cache: ConvexServerCache, clock: FakeClock
) -> None:
    assert await cache.increment("n") == 1
    clock.advance(299)
    assert await cache.increment("n") == 2
    clock.advance(299)
    assert await cache.increment("n") == 3
    clock.advance(300)
    assert await cache.increment("n") == 1


async def test_expired_lists_are_reclaimed_in_bounded_calls(
    cache: ConvexServerCache, clock: FakeClock, stats: RawHttp
) -> None:
    await cache.list_push_many("old", range(60))
    await cache.set("gone", "x", ttl=1)
    clock.advance(301)
    since = stats.next_seq()
    # Any operation on the expired key reclaims it, 25 items per call, before answering.
    await cache.list_push("old", "new")
    assert await cache.list_range("old", 0) == ["new"]
    pushes = cache_calls(stats, since, "listPushMany")
    # Three calls remove the 60 expired items (marking the key "deleted", then removing its row);
    # a call that removed items never appends too, so the fourth appends.
    assert [c["documentsWritten"] for c in pushes] == [25 + 1, 25, 10 + 1, 1 + 1]
    assert await cache.get("gone") is None


async def test_stock_ranges_of_big_items_fall_back_to_small_windows(
    stock_deployment: Deployment, prefix: str
) -> None:
    # 30 items of 600 kB, as a TypeScript app may push them: 18 MB, more than one Convex call
    # may read. The first window fails on Convex's read limit; windows of 15 items fit. (They
    # are left behind: upstream's handler cannot delete items this big, which is why this
    # client keeps its own rows on that handler under STOCK_MAX_ROW_BYTES.)
    stats = RawHttp(stock_deployment.url, stock_deployment.admin_key)
    items = [f"{n:03d}" + "x" * 600_000 for n in range(30)]
    for item in items:
        stats.storage(
            {
                "op": "listPush",
                "key": f"{prefix}big",
                "keyPrefix": prefix,
                "value": item,
                "expiresAt": None,
            },
            function=CACHE,
        )
    async with ConvexServerCache(
        stock_deployment.url, stock_deployment.admin_key, key_prefix=prefix
    ) as cache:
        since = stats.next_seq()
        got = await cache.list_range("big", 0)
        assert [item[:3] for item in got] == [f"{n:03d}" for n in range(30)]
        assert got == items
        calls = cache_calls(stats, since, "listFromTo")
        assert [c["ok"] for c in calls] == [False, True, True, True]
        assert await cache.list_range("big", 10, 12) == items[10:13]


# -- lists ----------------------------------------------------------------------------------


def lrange(items: list[Any], start: int, stop: int) -> list[Any]:
    """Redis LRANGE / upstream listFromTo semantics: inclusive stop, negatives from the end."""
    n = len(items)
    first = max(n + start, 0) if start < 0 else start
    last = n + stop if stop < 0 else stop
    if first >= n or last < first:
        return []
    return items[first : last + 1]


async def test_list_range_with_negative_indexes(any_cache: ConvexServerCache) -> None:
    items = [f"i{n}" for n in range(10)]
    await any_cache.list_push_many("l", items)
    assert await any_cache.list_length("l") == 10
    indexes = [-12, -10, -9, -3, -1, 0, 1, 5, 9, 10, 11]
    for start in indexes:
        for stop in indexes:
            assert await any_cache.list_range("l", start, stop) == lrange(items, start, stop), (
                start,
                stop,
            )
    assert await any_cache.list_range("l", 0) == items
    assert await any_cache.list_range("l", -3) == ["i7", "i8", "i9"]
    assert await any_cache.list_range("missing", 0) == []


async def test_a_long_range_ending_before_the_list_is_empty(any_cache: ConvexServerCache) -> None:
    # Found by tests/unit/test_cache_logic.py: on the stock handler a negative stop made
    # absolute turned negative again, and was read as "to the end".
    await any_cache.list_push_many("l", [f"i{n}" for n in range(10)])
    assert await any_cache.list_range("l", -40, -20) == []
    assert await any_cache.list_range("l", -40, -10) == ["i0"]


async def test_stock_ranges_in_windows_of_absolute_indexes(
    stock_deployment: Deployment, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Windows of 7 instead of 1,000, so a 40-item list crosses window edges everywhere.
    monkeypatch.setattr(stock_module, "STOCK_RANGE_WINDOW", 7)
    stats = RawHttp(stock_deployment.url, stock_deployment.admin_key)
    async with ConvexServerCache(
        stock_deployment.url, stock_deployment.admin_key, key_prefix=prefix
    ) as cache:
        items = list(range(40))
        await cache.list_push_many("l", items)
        indexes = [-45, -40, -39, -17, -16, -15, -8, -1, 0, 1, 6, 7, 13, 14, 15, 39, 40, 45]
        for start in indexes:
            for stop in indexes:
                got = await cache.list_range("l", start, stop)
                assert got == lrange(items, start, stop), (start, stop)
        since = stats.next_seq()
        assert await cache.list_range("l", 3) == items[3:]
        # Windows [3, 9], [10, 16] ... [38, 44]: the sixth comes back short and ends the range.
        assert len(cache_calls(stats, since, "listFromTo")) == 6
        since = stats.next_seq()
        assert await cache.list_range("l", -5) == items[-5:]  # short: one call, as upstream
        assert [c["op"] for c in cache_calls(stats, since)] == ["listFromTo"]


async def test_long_ranges_are_read_in_pages(cache: ConvexServerCache, stats: RawHttp) -> None:
    items = list(range(130))
    await cache.list_push_many("l", items)
    since = stats.next_seq()
    assert await cache.list_range("l", 0) == items
    assert len(cache_calls(stats, since, "listFromTo")) == 6  # ceil(130 / 25)
    assert await cache.list_range("l", 7, 111) == items[7:112]
    assert await cache.list_range("l", -60, -2) == items[-60:-1]


async def test_large_items_are_paged_and_removed_within_read_limits(
    cache: ConvexServerCache, stats: RawHttp
) -> None:
    # 30 items of 600 kB: 18 MB, more than one Convex transaction may read (16 MiB).
    items = [f"{n:03d}" + "x" * 600_000 for n in range(30)]
    since = stats.next_seq()
    await cache.list_push_many("big", items)
    got = await cache.list_range("big", 0)
    assert [item[:3] for item in got] == [f"{n:03d}" for n in range(30)]
    assert got == items
    await cache.delete("big")
    assert await cache.list_length("big") == 0
    for call in cache_calls(stats, since):
        assert call["ok"], call
        assert call["bytesRead"] < 16 * 1024 * 1024
        assert call["bytesWritten"] < 16 * 1024 * 1024


async def test_list_push_many_appends_in_chunks_of_at_most_25(
    cache: ConvexServerCache, stats: RawHttp
) -> None:
    since = stats.next_seq()
    await cache.list_push_many("l", range(60))
    await cache.list_push_many("l", [])  # nothing to append: no call
    await cache.list_push_many("l", iter(["a", "b"]))
    assert await cache.list_range("l", 0) == [*range(60), "a", "b"]
    pushes = cache_calls(stats, since, "listPushMany")
    assert [c["documentsWritten"] for c in pushes] == [26, 26, 11, 3]  # items + the key row


async def test_type_errors_between_lists_and_scalars(any_cache: ConvexServerCache) -> None:
    cache = any_cache
    await cache.set("value", "v")
    await cache.increment("counter")
    await cache.list_push("list", 1)
    for key in ("value", "counter"):
        with pytest.raises(StorageOperationError, match="is not an array"):
            await cache.list_push(key, 2)
        with pytest.raises(StorageOperationError, match="is not an array"):
            await cache.list_length(key)
        if await can(cache, "strict_kinds"):  # else listFromTo answers [] for a scalar
            with pytest.raises(StorageOperationError, match="is not an array"):
                await cache.list_range(key, 0)
    with pytest.raises(StorageOperationError, match="is not a number"):
        await cache.increment("value")
    with pytest.raises(StorageOperationError, match="is not a number"):
        await cache.increment("list")
    if await can(cache, "strict_kinds"):
        with pytest.raises(StorageOperationError, match="is a list"):
            await cache.get("list")
    else:  # upstream's get reads a list as null
        assert await cache.get("list") is None
    assert await cache.get("counter") == (1 if await can(cache, "counter_reads") else None)
    # Nothing was changed by the refused calls.
    assert await cache.get("value") == "v"
    assert await cache.increment("counter") == 2
    assert await cache.list_range("list", 0) == [1]
    # set replaces a list, as upstream.
    await cache.set("list", "now a value")
    assert await cache.get("list") == "now a value"


async def test_set_over_a_long_list_removes_it_in_batches(
    any_cache: ConvexServerCache, any_stats: RawHttp
) -> None:
    await any_cache.list_push_many("l", range(70))
    since = any_stats.next_seq()
    await any_cache.set("l", "scalar")
    assert await any_cache.get("l") == "scalar"
    sets = cache_calls(any_stats, since, "set")
    assert len(sets) == 3  # 25 + 25 + the last 20 items with the new value


# -- concurrency ----------------------------------------------------------------------------


async def test_concurrent_list_push_from_50_tasks(any_cache: ConvexServerCache) -> None:
    cache = any_cache
    tasks, per_task = 50, 20

    async def pusher(task: int) -> None:
        for seq in range(per_task):
            await cache.list_push("stream", [task, seq])

    async with anyio.create_task_group() as tg:
        for task in range(tasks):
            tg.start_soon(pusher, task)
    items = await cache.list_range("stream", 0)
    assert len(items) == tasks * per_task == await cache.list_length("stream")
    assert sorted(map(tuple, items)) == [(t, s) for t in range(tasks) for s in range(per_task)]
    for task in range(tasks):
        assert [s for t, s in items if t == task] == list(range(per_task))


async def test_concurrent_list_push_many_keeps_each_pushers_order(
    any_cache: ConvexServerCache,
) -> None:
    cache = any_cache
    tasks, per_task = 10, 60

    async def pusher(task: int) -> None:
        await cache.list_push_many("stream", [[task, seq] for seq in range(per_task)])

    async with anyio.create_task_group() as tg:
        for task in range(tasks):
            tg.start_soon(pusher, task)
    items = await cache.list_range("stream", 0)
    assert len(items) == tasks * per_task
    for task in range(tasks):
        assert [s for t, s in items if t == task] == list(range(per_task))
    if not await can(cache, "contiguous_pushes"):
        return  # upstream's handler appends one item per call: pushers interleave anywhere
    # Each call's items are contiguous (chunks of 25, 25, 10): another pusher's items can only
    # start at a chunk boundary.
    for previous, current in itertools.pairwise(items):
        if previous[0] != current[0]:
            assert previous[1] in (24, 49, 59) and current[1] in (0, 25, 50), (previous, current)


# -- clear -----------------------------------------------------------------------------------


async def test_clear_removes_exactly_its_prefix(any_deployment: Deployment, uid: str) -> None:
    url, key = any_deployment.url, any_deployment.admin_key
    names = [f"c{uid}:", f"c{uid}:x:", f"c{uid}"]
    caches = [ConvexServerCache(url, key, key_prefix=name) for name in names]
    try:
        for c in caches:
            await c.set("k", c.key_prefix)
            await c.list_push_many("l", range(30))
            await c.increment("n")
        await caches[0].clear()
        assert await caches[0].get("k") is None
        assert await caches[0].list_length("l") == 0
        assert await caches[0].increment("n") == 1
        assert await caches[1].increment("n") == 2
        # "c<uid>:x:k" starts with "c<uid>:" but was stored under another prefix: kept.
        for c in caches[1:]:
            assert await c.get("k") == c.key_prefix
            assert await c.list_range("l", 0) == list(range(30))
    finally:
        for c in caches:
            await c.clear()
            await c.close()


async def test_clear_10000_items_across_50_keys(cache: ConvexServerCache, stats: RawHttp) -> None:
    keys, per_key = 50, 200
    since = stats.next_seq()
    started = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for k in range(keys):
            tg.start_soon(cache.list_push_many, f"l{k}", [f"{k}:{n}" for n in range(per_key)])
    seeded = time.perf_counter() - started
    pushes = cache_calls(stats, since, "listPushMany")
    assert len(pushes) == keys * per_key // LIST_BOUND
    # Every push wrote its key's row once, so the rest of each call's writes are list items.
    assert sum(c["documentsWritten"] for c in pushes) == keys * per_key + len(pushes)

    since = stats.next_seq()
    started = time.perf_counter()
    await cache.clear()
    cleared = time.perf_counter() - started
    calls = cache_calls(stats, since, "clear")
    print(f"seeded {keys * per_key} items in {seeded:.2f}s; clear: {len(calls)} calls in ", end="")
    print(f"{cleared:.2f}s, at most {max(c['documentsWritten'] for c in calls)} writes per call")
    assert len(calls) <= 410
    assert max(c["documentsWritten"] for c in calls) <= LIST_BOUND
    # The 10,000 items, the 50 key rows, and a "deleted" mark on each list that spans calls.
    assert keys * per_key + keys <= sum(c["documentsWritten"] for c in calls)
    assert sum(c["documentsWritten"] for c in calls) <= keys * per_key + 2 * keys
    for k in range(keys):
        assert await cache.list_length(f"l{k}") == 0


async def test_clear_of_5000_items_on_the_stock_handler_is_bounded(
    stock_deployment: Deployment, prefix: str
) -> None:
    # Seeded straight into upstream's tables (pushing 5,000 items there takes 5,000 calls).
    # Fewer than ours clears above: the local deployment scans a table per query, so each of
    # upstream's calls costs time in proportion to what is left.
    keys, per_key = 25, 200
    import_rows(
        stock_deployment,
        "mastra_cache",
        [
            {
                "key": f"{prefix}l{k}",
                "keyPrefix": prefix,
                "kind": "list",
                "counter": per_key,
                "expiresAt": None,
            }
            for k in range(keys)
        ],
    )
    import_rows(
        stock_deployment,
        "mastra_cache_list_items",
        [
            {"key": f"{prefix}l{k}", "keyPrefix": prefix, "index": n, "value": f'"{k}:{n}"'}
            for k in range(keys)
            for n in range(per_key)
        ],
    )
    stats = RawHttp(stock_deployment.url, stock_deployment.admin_key)
    async with ConvexServerCache(
        stock_deployment.url, stock_deployment.admin_key, key_prefix=prefix
    ) as cache:
        assert await cache.list_range("l7", -2) == ["7:198", "7:199"]
        since = stats.next_seq()
        await cache.clear()
        calls = cache_calls(stats, since, "clear")
        print(f"stock clear: {len(calls)} calls for {keys * per_key} items")
        assert 200 <= len(calls) <= 210  # 25 items per call, well under the bound of 1,000
        assert max(c["documentsWritten"] for c in calls) <= LIST_BOUND + 2
        assert [await cache.list_length(f"l{k}") for k in range(keys)] == [0] * keys


async def test_interrupted_clear_leaves_keys_whole_or_empty(any_cache: ConvexServerCache) -> None:
    cache = any_cache
    keys, per_key = 4, 60
    for k in range(keys):
        await cache.list_push_many(f"l{k}", range(per_key))
    await cache.set("v", 1)
    cache._max_calls = 3
    with pytest.raises(BatchLimitError, match="consistent, resumable") as raised:
        await cache.clear()
    assert "call clear() again" in str(raised.value)
    lengths = [await cache.list_length(f"l{k}") for k in range(keys)]
    # A list that clear has started on reads as missing, never as a partial list.
    assert set(lengths) == {0, per_key}, lengths
    for k in range(keys):
        assert await cache.list_range(f"l{k}", 0) in ([], list(range(per_key)))
    cache._max_calls = 1000
    await cache.clear()
    assert [await cache.list_length(f"l{k}") for k in range(keys)] == [0] * keys
    assert await cache.get("v") is None


async def test_delete_past_the_call_bound_is_resumable(
    any_cache: ConvexServerCache, any_stats: RawHttp
) -> None:
    cache, stats = any_cache, any_stats
    await cache.list_push_many("l", range(90))
    cache._max_calls = 2
    with pytest.raises(BatchLimitError, match=r"call delete\(\) again"):
        await cache.delete("l")  # 50 of 90 items removed
    # One raw call: the key answers as empty while its remaining items are being removed.
    answer = stats.storage({"op": "listLength", "key": f"{cache.key_prefix}l"}, function=CACHE)
    assert answer == {"ok": True, "result": 0, "hasMore": True}
    await cache.delete("l")  # the last 15 items: one more call
    cache._max_calls = 1000
    assert await cache.list_range("l", 0) == []
    await cache.list_push("l", "again")
    assert await cache.list_range("l", 0) == ["again"]


# -- bad input -------------------------------------------------------------------------------


async def test_bad_input_is_refused_before_sending(
    any_cache: ConvexServerCache, any_stats: RawHttp
) -> None:
    cache, stats = any_cache, any_stats
    await cache.set("k", "original")
    since = stats.next_seq()
    for bad_key in (1, None, b"k", ("k",)):
        with pytest.raises(ValidationError, match="cache keys are strings"):
            await cache.get(bad_key)  # type: ignore[arg-type]
        with pytest.raises(ValidationError):
            await cache.set(bad_key, 1)  # type: ignore[arg-type]
        with pytest.raises(ValidationError):
            await cache.list_push(bad_key, 1)  # type: ignore[arg-type]
        with pytest.raises(ValidationError):
            await cache.delete(bad_key)  # type: ignore[arg-type]
    for bad_ttl in (-1, -0.001, math.nan, math.inf, True, "10"):
        with pytest.raises(ValidationError, match="ttl"):
            await cache.set("k", 1, ttl=bad_ttl)  # type: ignore[arg-type]
    for bad_value in (math.nan, math.inf, 2**53, {1: "int key"}, {"s": {1, 2}}, object(), b"x"):
        with pytest.raises(ValidationError):
            await cache.set("k", bad_value)
    with pytest.raises(ValidationError):
        await cache.set("k", "\ud800")  # a lone surrogate is not UTF-8
    with pytest.raises(ValidationError, match="values"):
        await cache.list_push_many("l", "abc")
    with pytest.raises(ValidationError):
        await cache.list_push_many("l", [1, 2, math.nan])
    for bad_index in (1.0, "0", None, True):
        with pytest.raises(ValidationError):
            await cache.list_range("l", bad_index)  # type: ignore[arg-type]
    assert cache_calls(stats, since) == []  # nothing was sent
    assert await cache.get("k") == "original"
    assert await cache.list_length("l") == 0


async def test_stock_handler_refuses_what_it_cannot_hold_before_sending(
    stock_deployment: Deployment, prefix: str
) -> None:
    stats = RawHttp(stock_deployment.url, stock_deployment.admin_key)
    async with ConvexServerCache(
        stock_deployment.url, stock_deployment.admin_key, key_prefix=prefix
    ) as cache:
        await cache.set("k", "original")
        since = stats.next_seq()
        refused = {
            "café": "printable ASCII",
            "$ref": "start with '$'",
            "": "empty field names",
            "__proto__": "'__proto__'",
        }
        for name, reason in refused.items():
            with pytest.raises(ValidationError, match=re.escape(reason)) as raised:
                await cache.set("k", {"ok": [{name: 1}]})
            assert "cache key 'k'" in str(raised.value) and repr(name) in str(raised.value)
        with pytest.raises(ValidationError, match=r"values\[1\]"):
            await cache.list_push_many("l", [1, {"ключ": 2}, 3])  # none of the three is pushed
        with pytest.raises(ValidationError, match="nested deeper"):
            await cache.set("k", functools.reduce(lambda inner, _: [inner], range(70), []))
        # The largest row this client writes there: upstream can always remove it again.
        room = STOCK_MAX_ROW_BYTES - len(prefix) * 2 - len("big") - 200 - 2
        with pytest.raises(ValidationError, match="rows are kept to") as raised:
            await cache.set("big", "x" * (room + 1))
        assert raised.value.field == "value"
        with pytest.raises(ValidationError, match="rows are kept to"):
            await cache.list_push_many("l", ["small", "x" * (room + 3)])
        assert cache_calls(stats, since) == []  # nothing was sent
        await cache.set("big", "x" * room)
        await cache.list_push_many("l", ["x" * room] * 3)
        assert await cache.get("big") == "x" * room
        assert await cache.get("k") == "original"
        await cache.clear()
        assert await cache.list_length("l") == 0


async def test_values_over_the_record_limit(cache: ConvexServerCache, stats: RawHttp) -> None:
    overhead = len(cache.key_prefix) * 2 + len("big") + 200 + 2  # the check's estimate, quotes
    fits = "x" * (MAX_ROW_BYTES - overhead)
    await cache.set("big", fits)  # the largest value the check allows is accepted by Convex
    assert await cache.get("big") == fits
    since = stats.next_seq()
    with pytest.raises(RecordTooLargeError, match="1,048,576-byte") as raised:
        await cache.set("big", fits + "x")
    assert raised.value.size == MAX_ROW_BYTES + 1
    with pytest.raises(RecordTooLargeError):
        await cache.list_push_many("l", ["small", "x" * MAX_ROW_BYTES, "small"])
    with pytest.raises(RecordTooLargeError):
        await cache.set("multibyte", "é" * (MAX_ROW_BYTES // 2))  # 2 bytes each in UTF-8
    assert cache_calls(stats, since) == []
    assert await cache.get("big") == fits
    assert await cache.list_length("l") == 0


async def test_configuration_is_checked(
    convex_deployment: Deployment, monkeypatch: pytest.MonkeyPatch, uid: str
) -> None:
    url, key = convex_deployment.url, convex_deployment.admin_key
    with pytest.raises(ConfigurationError, match="key_prefix is empty"):
        ConvexServerCache(url, key, key_prefix="")
    for ttl in (-1, math.nan, "300"):
        with pytest.raises(ConfigurationError, match="ttl"):
            ConvexServerCache(url, key, ttl=ttl)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="module/path:function"):
        ConvexServerCache(url, key, cache_function="cache")
    with pytest.raises(ConfigurationError, match="http://"):
        ConvexServerCache("http://10.1.2.3:3210", key)
    insecure = ConvexServerCache("http://10.1.2.3:3210", key, allow_insecure_http=True)
    assert not insecure.closed
    await insecure.close()
    with pytest.raises(ConfigurationError, match="max_concurrency"):
        ConvexServerCache(url, key, max_concurrency=0)
    monkeypatch.delenv("CONVEX_URL", raising=False)
    monkeypatch.delenv("CONVEX_ADMIN_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="CONVEX_URL"):
        ConvexServerCache()
    monkeypatch.setenv("CONVEX_URL", url)
    monkeypatch.setenv("CONVEX_ADMIN_KEY", key)
    # An explicit blank key is refused, never swapped for the environment's.
    with pytest.raises(ConfigurationError, match="blank"):
        ConvexServerCache(url, "")
    async with ConvexServerCache(key_prefix=f"env{uid}:") as from_env:
        await from_env.set("k", "from the environment")
        assert await from_env.get("k") == "from the environment"
        await from_env.clear()
    async with ConvexServerCache(url, key, key_prefix="", allow_empty_key_prefix=True) as bare:
        await bare.set(f"bare-{uid}", 1)  # stored as exactly this key, with prefix ""
        assert await bare.get(f"bare-{uid}") == 1
        await bare.delete(f"bare-{uid}")


async def test_lifecycle_repr_and_close(convex_deployment: Deployment, prefix: str) -> None:
    cache = ConvexServerCache(convex_deployment.url, convex_deployment.admin_key, key_prefix=prefix)
    assert convex_deployment.admin_key not in repr(cache)
    assert prefix in repr(cache) and "open" in repr(cache)
    await cache.set("k", 1)
    await cache.close()
    assert cache.closed and "closed" in repr(cache)
    with pytest.raises(ConfigurationError, match="closed"):
        await cache.get("k")
    await cache.aclose()  # closing twice is fine

    leaked = ConvexServerCache(convex_deployment.url, convex_deployment.admin_key)
    with pytest.warns(ResourceWarning, match="never closed"):
        del leaked
        gc.collect()


async def test_stock_handler_refuses_an_injected_clock(
    stock_deployment: Deployment, prefix: str, clock: FakeClock
) -> None:
    stats = RawHttp(stock_deployment.url, stock_deployment.admin_key)
    since = stats.next_seq()
    async with ConvexServerCache(
        stock_deployment.url, stock_deployment.admin_key, key_prefix=prefix, clock=clock
    ) as cache:
        with pytest.raises(ConfigurationError, match="server's clock only"):
            await cache.set("k", 1)
        assert (await cache.handler_info()).is_stock
        assert await cache.capabilities() == frozenset()  # so no injected_clock
    assert [c["op"] for c in cache_calls(stats, since)] == ["info"]  # nothing was written


# -- the handler's own checks, for any client ------------------------------------------------


def test_handler_refuses_bad_requests(stats: RawHttp, prefix: str) -> None:
    def call(**request: Any) -> dict[str, Any]:
        result: dict[str, Any] = stats.storage(request, function=CACHE)
        return result

    base = {"key": f"{prefix}k", "keyPrefix": prefix}
    bad_json = call(op="set", **base, value="{not json", json=True)
    assert bad_json["ok"] is False and "not valid JSON" in bad_json["error"]
    not_text = call(op="listPushMany", **base, values=[{"a": 1}], json=True)
    assert not_text["ok"] is False and "JSON text" in not_text["error"]
    too_many = call(op="listPushMany", **base, values=list(range(26)))
    assert too_many["ok"] is False and "at most 25" in too_many["error"]
    assert call(op="listFromTo", key=base["key"], **{"from": 0}, to=-1, maxItems=26)["ok"] is False
    assert call(op="get", key=base["key"], strict="yes")["ok"] is False
    assert call(op="get", key=base["key"])["result"] is None  # nothing was written
    info = call(op="info")["result"]
    assert info["limits"]["listItemsPerCall"] == LIST_BOUND
    assert "listPushMany" in info["ops"]
