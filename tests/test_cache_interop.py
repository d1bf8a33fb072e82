"""Interop with @mastra/convex's TypeScript ConvexServerCache, unchanged, in both directions.

Three set-ups:

- ``ours``: the TypeScript client calls our ``mastra/cache:handle``, as a TypeScript app does
  after a deployment switches to convex-mastra's functions.
- ``upstream``: the TypeScript client calls @mastra/convex's own cache handler, deployed next to
  ours on the same tables. Python writes rows through our handler and upstream's code reads them
  (and the reverse), so this checks the stored rows themselves: JSON text values, ``keyPrefix``,
  ``expiresAt`` in epoch ms, the kinds, one row per list item.
- ``stock``: both clients call @mastra/convex's own handler, as on a deployment set up the way
  the @mastra/convex docs say; the Python client speaks upstream's protocol there.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from typing import Any

import anyio
import pytest

from convex_mastra import ConvexServerCache, LocalDeployment
from convex_mastra.local._runtime import functions_dir
from convex_mastra.pytest_plugin import Deployment
from tests.conftest import STOCK_FUNCTIONS, install_stock_functions
from tests.local.test_ts_client import run_ts_client


@pytest.fixture(scope="module")
def shared_tables(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """Our functions plus @mastra/convex's cache handler as ``mastra/stock_cache:handle``."""
    install_stock_functions()
    root = tmp_path_factory.mktemp("shared-tables")
    ours = functions_dir()
    shutil.copy(ours / "schema.ts", root / "schema.ts")
    shutil.copytree(ours / "mastra", root / "mastra")
    (root / "mastra" / "stock_cache.ts").write_text(
        'export { mastraCache as handle } from "@mastra/convex/server";\n'
    )
    # @mastra/convex resolves from the stock functions' installed packages.
    (root / "node_modules").symlink_to(STOCK_FUNCTIONS / "node_modules")
    # Without it the emulator loads mastra/lib/*.ts as CommonJS, where `import "../tables"` fails
    # (./convex has its own package.json).
    (root / "package.json").write_text('{"type": "module"}\n')
    with LocalDeployment(functions_dir=root) as local:
        yield Deployment(url=local.url, admin_key=local.admin_key, local=local)


@pytest.fixture(params=["ours", "upstream", "stock"])
def setup(request: pytest.FixtureRequest) -> tuple[Deployment, str]:
    """The deployment, and the function the TypeScript client calls."""
    return deployment_for(request)


@pytest.fixture(params=["ours", "upstream"])
def clock_setup(request: pytest.FixtureRequest) -> tuple[Deployment, str]:
    """The set-ups where Python's cache runs on our handler, which takes an injected clock."""
    return deployment_for(request)


def deployment_for(request: pytest.FixtureRequest) -> tuple[Deployment, str]:
    if request.param == "ours":
        dep: Deployment = request.getfixturevalue("convex_deployment")
        return dep, "mastra/cache:handle"
    if request.param == "stock":
        stock: Deployment = request.getfixturevalue("stock_deployment")
        return stock, "mastra/cache:handle"
    return request.getfixturevalue("shared_tables"), "mastra/stock_cache:handle"


def ts(
    dep: Deployment, function: str, prefix: str, calls: list[tuple[str, list[Any]]], **config: Any
) -> list[Any]:
    """Run ConvexServerCache calls in TypeScript; their results (a failing call fails the test)."""
    config = {"keyPrefix": prefix, "cacheFunction": function, **config}
    results = run_ts_client(
        dep, [{"cache": config, "method": method, "args": args} for method, args in calls]
    )
    assert all("error" not in r for r in results), results
    return [r["result"] for r in results]


async def test_keys_cross_both_ways(setup: tuple[Deployment, str], uid: str) -> None:
    dep, function = setup
    prefix = f"interop:{uid}:"
    value = {"from": "python", "n": 1, "f": 2.5, "nested": [None, True, "ü"]}
    async with ConvexServerCache(dep.url, dep.admin_key, key_prefix=prefix) as cache:
        await cache.set("py-value", value)
        await cache.list_push_many("py-list", ["a", {"b": 2}, 3])
        await cache.increment("py-counter")
        await cache.increment("py-counter")

        got = ts(
            dep,
            function,
            prefix,
            [
                ("get", ["py-value"]),
                ("listFromTo", ["py-list", 0, -1]),
                ("listFromTo", ["py-list", -2]),
                ("listLength", ["py-list"]),
                ("increment", ["py-counter"]),
                ("listPush", ["py-list", "from ts"]),
                ("set", ["ts-value", {"from": "typescript", "list": [1, 2]}]),
                ("listPush", ["ts-list", "x"]),
                ("listPush", ["ts-list", {"y": None}]),
                ("increment", ["ts-counter"]),
                ("get", ["missing"]),
            ],
        )
        assert got[0] == value
        assert got[1] == ["a", {"b": 2}, 3]
        assert got[2] == [{"b": 2}, 3]
        assert got[3] == 3
        assert got[4] == 3
        assert got[10] is None

        assert await cache.get("ts-value") == {"from": "typescript", "list": [1, 2]}
        assert await cache.list_range("ts-list", 0) == ["x", {"y": None}]
        assert await cache.list_range("py-list", -1) == ["from ts"]
        assert await cache.list_length("py-list") == 4
        assert await cache.increment("ts-counter") == 2
        assert await cache.increment("py-counter") == 4
        await cache.clear()


async def test_clear_crosses_both_ways_and_keeps_other_prefixes(
    setup: tuple[Deployment, str], uid: str
) -> None:
    dep, function = setup
    first, second, other = f"i1:{uid}:", f"i2:{uid}:", f"i1:{uid}:other:"
    url, key = dep.url, dep.admin_key
    async with (
        ConvexServerCache(url, key, key_prefix=first) as one,
        ConvexServerCache(url, key, key_prefix=second) as two,
        ConvexServerCache(url, key, key_prefix=other) as kept,
    ):
        await one.set("v", 1)
        await one.list_push_many("l", range(40))
        await kept.set("v", "kept")
        ts(dep, function, first, [("clear", [])])  # TypeScript clears Python's keys
        assert await one.get("v") is None
        assert await one.list_length("l") == 0
        assert await kept.get("v") == "kept"

        ts(dep, function, second, [("set", ["v", 2]), ("listPush", ["l", 1]), ("increment", ["n"])])
        await two.clear()  # Python clears TypeScript's keys
        got = ts(
            dep, function, second, [("get", ["v"]), ("listLength", ["l"]), ("increment", ["n"])]
        )
        assert got == [None, 0, 1]
        assert await kept.get("v") == "kept"
        await kept.clear()
        await two.clear()


async def test_expiry_is_epoch_ms_on_both_sides(
    clock_setup: tuple[Deployment, str], uid: str
) -> None:
    dep, function = clock_setup
    prefix = f"ttl:{uid}:"
    an_hour_ago = time.time() - 3600
    async with (
        ConvexServerCache(dep.url, dep.admin_key, key_prefix=prefix) as cache,
        ConvexServerCache(
            dep.url, dep.admin_key, key_prefix=prefix, clock=lambda: an_hour_ago
        ) as past,
    ):
        await cache.set("fresh", "f", ttl=60)
        await past.set("stale", "s", ttl=60)  # expired 59 minutes ago by the real clock
        await past.list_push("stale-list", 1)  # the default ttl: 300 s after an hour ago
        got = ts(
            dep,
            function,
            prefix,
            [
                ("get", ["fresh"]),
                ("get", ["stale"]),
                ("listLength", ["stale-list"]),
                ("set", ["ts-short", "t", 2000]),
                ("set", ["ts-forever", "t", 0]),
            ],
        )
        assert got[:3] == ["f", None, 0]
        assert await cache.get("ts-short") == "t"
        async with ConvexServerCache(
            dep.url, dep.admin_key, key_prefix=prefix, clock=lambda: time.time() + 10
        ) as future:
            assert await future.get("ts-short") is None  # 2 s after TypeScript wrote it: expired
            assert await future.get("ts-forever") == "t"
        await cache.clear()


async def test_expiry_crosses_both_ways_on_the_stock_handler(
    stock_deployment: Deployment, uid: str
) -> None:
    dep, prefix = stock_deployment, f"ttl:{uid}:"
    async with ConvexServerCache(dep.url, dep.admin_key, key_prefix=prefix) as cache:
        await cache.set("fresh", "f", ttl=60)  # alive only if both sides count in epoch ms
        await cache.set("stale", "s", ttl=0.001)
        await anyio.sleep(0.01)
        got = ts(
            dep,
            "mastra/cache:handle",
            prefix,
            [
                ("get", ["fresh"]),
                ("get", ["stale"]),
                ("set", ["ts-stale", "t", 1]),
                ("set", ["ts-forever", "t", 0]),
            ],
        )
        assert got[:2] == ["f", None]
        await anyio.sleep(0.01)
        assert await cache.get("ts-stale") is None
        assert await cache.get("ts-forever") == "t"
        await cache.clear()
