"""@mastra/convex 1.5.x's own TypeScript client, unchanged, against our internal handlers.

A Mastra TypeScript app keeps working when a deployment switches to our functions: it calls the
same paths with the admin key. Data crosses both ways at the protocol level; the typed Python
domains get their own interop tests.
"""

from __future__ import annotations

import os
import subprocess
from typing import Any

import orjson

from convex_mastra.local import find_node
from convex_mastra.pytest_plugin import Deployment
from tests.conftest import STOCK_FUNCTIONS, RawHttp, install_stock_functions


def run_ts_client(dep: Deployment, calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Run calls through @mastra/convex's ConvexStore / ConvexServerCache (driver.mjs)."""
    install_stock_functions()
    proc = subprocess.run(
        [str(find_node().node), "driver.mjs", dep.url],
        input=orjson.dumps(calls),
        capture_output=True,
        cwd=STOCK_FUNCTIONS,
        env={**os.environ, "CONVEX_ADMIN_KEY": dep.admin_key},
        timeout=120,
        check=True,
    )
    results: list[dict[str, Any]] = orjson.loads(proc.stdout)
    return results


def test_ts_client_writes_what_the_protocol_reads_and_back(
    convex_deployment: Deployment, uid: str
) -> None:
    http = RawHttp(convex_deployment.url, convex_deployment.admin_key)
    when = {"$date": "2026-11-23T10:00:00.000Z"}
    http.storage(
        {
            "op": "insert",
            "tableName": "mastra_threads",
            "record": {
                "id": f"py-{uid}",
                "resourceId": f"r-{uid}",
                "title": "from python",
                "metadata": {"lang": "py"},
                "createdAt": "2026-11-23T09:00:00.000Z",
                "updatedAt": "2026-11-23T09:00:00.000Z",
            },
        }
    )
    http.storage(
        {
            "op": "set",
            "key": f"mastra:cache:py-{uid}",
            "keyPrefix": "mastra:cache:",
            "value": {"from": "python"},
            "expiresAt": None,
        },
        function="mastra/cache:handle",
    )
    thread = {
        "id": f"ts-{uid}",
        "resourceId": f"r-{uid}",
        "title": "from typescript",
        "metadata": {"lang": "ts"},
        "createdAt": when,
        "updatedAt": when,
    }
    results = run_ts_client(
        convex_deployment,
        [
            {"domain": "memory", "method": "saveThread", "args": {"thread": thread}},
            {"domain": "memory", "method": "getThreadById", "args": {"threadId": f"py-{uid}"}},
            {"cache": {}, "method": "get", "args": [f"py-{uid}"]},
            {"cache": {}, "method": "set", "args": [f"ts-{uid}", [1, "two"]]},
        ],
    )
    assert all("error" not in r for r in results), results
    assert results[1]["result"]["title"] == "from python"
    assert results[1]["result"]["metadata"] == {"lang": "py"}
    assert results[2]["result"] == {"from": "python"}

    loaded = http.storage(
        {"op": "load", "tableName": "mastra_threads", "keys": {"id": f"ts-{uid}"}}
    )["result"]
    assert loaded["title"] == "from typescript"
    assert loaded["createdAt"] == "2026-11-23T10:00:00.000Z"
    cached = http.storage(
        {"op": "get", "key": f"mastra:cache:ts-{uid}"}, function="mastra/cache:handle"
    )
    assert cached["result"] == [1, "two"]
