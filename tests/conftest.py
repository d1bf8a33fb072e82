"""Shared fixtures: deployments serving our functions and the stock @mastra/convex ones."""

from __future__ import annotations

import dataclasses
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from convex_mastra import ConvexServerCache, ConvexStore, LocalDeployment
from convex_mastra.local import find_node
from convex_mastra.local._runtime import _locked
from convex_mastra.pytest_plugin import Deployment

STOCK_FUNCTIONS = Path(__file__).parent / "stock_functions"


def install_stock_functions() -> None:
    """`npm ci` the stock functions once; a lock and a marker make parallel workers safe."""
    marker = STOCK_FUNCTIONS / "node_modules" / ".convex-mastra-installed"
    if marker.is_file():
        return
    with _locked(STOCK_FUNCTIONS / ".install.lock"):
        if marker.is_file():
            return
        runtime = find_node()
        subprocess.run(
            [*runtime.npm_cli, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=STOCK_FUNCTIONS,
            check=True,
        )
        marker.write_text("ok")


@pytest.fixture(scope="session")
def stock_deployment() -> Iterator[Deployment]:
    """A local deployment serving @mastra/convex 1.5.x's own handlers (public mutations)."""
    install_stock_functions()
    with LocalDeployment(functions_dir=STOCK_FUNCTIONS) as local:
        yield Deployment(url=local.url, admin_key=local.admin_key, local=local)


@pytest.fixture(params=["ours", "stock"])
def any_deployment(request: pytest.FixtureRequest, convex_deployment: Deployment) -> Deployment:
    """A deployment serving our handler, then one serving the stock @mastra/convex handler."""
    if request.param == "ours":
        return convex_deployment
    stock: Deployment = request.getfixturevalue("stock_deployment")
    return stock


async def redeclare(client: ConvexStore | ConvexServerCache, **changes: Any) -> None:
    """Make ``client`` see its handler declare other facts (``limits``, ``counted``...), as a
    deployment of other functions would; the store chooses its handler anew."""
    info = await client.handler_info()
    client._dispatcher._info = dataclasses.replace(info, **changes)
    if isinstance(client, ConvexStore):
        client._handlers._handler = None


@pytest.fixture
def uid() -> str:
    """A unique suffix, so tests share a deployment without seeing each other's rows."""
    return uuid.uuid4().hex[:12]


@pytest.fixture
async def store(convex_deployment: Deployment) -> AsyncIterator[ConvexStore]:
    """A store on the session deployment, closed after the test."""
    async with ConvexStore(convex_deployment.url, convex_deployment.admin_key) as s:
        yield s


class RawHttp:
    """Plain HTTP calls to a deployment, as any client of the Convex HTTP API makes them."""

    def __init__(self, url: str, admin_key: str | None) -> None:
        self.url = url
        self.admin_key = admin_key
        import requests  # a test extra: tests/unit/ runs without it

        self.session = requests.Session()

    def post(
        self,
        kind: str,
        path: str,
        args: Any,
        *,
        fmt: str = "json",
        auth: str | None = "admin",
    ) -> tuple[int, dict[str, Any]]:
        headers = {"Content-Type": "application/json"}
        if auth == "admin":
            headers["Authorization"] = f"Convex {self.admin_key}"
        elif auth is not None:
            headers["Authorization"] = auth
        response = self.session.post(
            f"{self.url}/api/{kind}",
            data=orjson.dumps({"path": path, "args": args, "format": fmt}),
            headers=headers,
            timeout=60,
        )
        return response.status_code, response.json()

    def storage(self, request: dict[str, Any], *, function: str = "mastra/storage:handle") -> Any:
        """Call a handler as an admin; return ``value`` of a success envelope."""
        status, body = self.post("mutation", function, request)
        assert status == 200, body
        assert body["status"] == "success", body
        return body["value"]

    def calls_since(self, seq: int) -> list[dict[str, Any]]:
        response = self.session.get(
            f"{self.url}/_local/calls",
            params={"since": seq},
            headers={"Authorization": f"Convex {self.admin_key}"},
            timeout=30,
        )
        response.raise_for_status()
        calls: list[dict[str, Any]] = response.json()["calls"]
        return calls

    def subscriptions(self) -> list[dict[str, Any]]:
        """The deployment's live sync-protocol subscriptions (session, queryId, udfPath, args)."""
        response = self.session.get(
            f"{self.url}/_local/subscriptions",
            headers={"Authorization": f"Convex {self.admin_key}"},
            timeout=30,
        )
        response.raise_for_status()
        listed: list[dict[str, Any]] = response.json()
        return listed

    def sync_latencies(self) -> list[float]:
        """Commit -> Transition ms per Transition since the previous call (which took them)."""
        response = self.session.post(
            f"{self.url}/_local/sync/latencies",
            headers={"Authorization": f"Convex {self.admin_key}"},
            timeout=30,
        )
        response.raise_for_status()
        return [float(ms) for ms in response.json()["ms"]]

    def next_seq(self) -> int:
        response = self.session.get(
            f"{self.url}/_local/calls",
            params={"since": 10**12},
            headers={"Authorization": f"Convex {self.admin_key}"},
            timeout=30,
        )
        response.raise_for_status()
        return int(response.json()["nextSeq"])


def import_rows(
    deployment: Deployment, table: str, rows: list[dict[str, Any]], *, chunk: int = 8000
) -> None:
    """Seed rows straight into a local deployment's table (``POST /_local/import``), fast.

    Each request is one transaction: keep ``chunk`` rows under Convex's 16 MiB write limit.
    """
    import requests

    session = requests.Session()
    for start in range(0, len(rows), chunk):
        response = session.post(
            f"{deployment.url}/_local/import",
            data=orjson.dumps({"table": table, "documents": rows[start : start + chunk]}),
            headers={
                "Authorization": f"Convex {deployment.admin_key}",
                "Content-Type": "application/json",
            },
            timeout=300,
        )
        assert response.status_code == 200, response.text
