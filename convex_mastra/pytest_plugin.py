"""pytest fixtures that give tests a Convex deployment and a store on it.

Load it in your ``conftest.py`` with ``pytest_plugins = ["convex_mastra.pytest_plugin"]``.

- ``convex_deployment`` (session scope): the deployment named by ``CONVEX_URL`` and
  ``CONVEX_ADMIN_KEY`` when both are set, otherwise one local deployment for the whole session.
- ``convex_module_deployment`` (module scope): a fresh local deployment with its own empty data
  directory for each test module. Ignores ``CONVEX_URL``.
- ``convex_test_deployment`` (function scope): a fresh local deployment for each test.
- ``convex_store`` (function scope): an open ``ConvexStore`` on the deployment that the
  ``--convex-isolation`` option (or the ``convex_isolation`` ini setting) selects: ``session``
  (default, fastest: tests share data, so use unique ids), ``module`` or ``test``.

Deployment fixtures yield a :class:`Deployment` with ``url`` and ``admin_key``. They are
synchronous, so they work with pytest-asyncio, anyio's plugin, or plain tests; ``convex_store``
is an async fixture and needs an async test runner (pytest-asyncio or anyio).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

import pytest

from ._store import ConvexStore
from .local import LocalDeployment

try:  # pytest-asyncio's decorator works in its strict and auto modes alike
    from pytest_asyncio import fixture as _async_fixture
except ImportError:  # anyio's pytest plugin runs plain async fixtures
    _async_fixture = pytest.fixture  # type: ignore[assignment]

__all__ = [
    "Deployment",
    "convex_deployment",
    "convex_module_deployment",
    "convex_store",
    "convex_test_deployment",
]

ISOLATION = {
    "session": "convex_deployment",
    "module": "convex_module_deployment",
    "test": "convex_test_deployment",
}


@dataclass(frozen=True)
class Deployment:
    """Where a test's deployment is: ``url``, ``admin_key`` and, when local, the process."""

    url: str
    admin_key: str = field(repr=False)
    local: LocalDeployment | None = None


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--convex-isolation",
        choices=sorted(ISOLATION),
        default=None,
        help="which deployment convex_store uses: one per session (default), module or test",
    )
    parser.addini(
        "convex_isolation",
        "default for --convex-isolation (session, module or test)",
        default="session",
    )


def _from_environment() -> Deployment | None:
    url, key = os.environ.get("CONVEX_URL"), os.environ.get("CONVEX_ADMIN_KEY")
    return Deployment(url=url, admin_key=key) if url and key else None


def _local() -> Iterator[Deployment]:
    with LocalDeployment() as local:
        yield Deployment(url=local.url, admin_key=local.admin_key, local=local)


@pytest.fixture(scope="session")
def convex_deployment() -> Iterator[Deployment]:
    """A deployment for the test session: ``CONVEX_URL``/``CONVEX_ADMIN_KEY`` or a local one."""
    configured = _from_environment()
    if configured is not None:
        yield configured
        return
    yield from _local()


@pytest.fixture(scope="module")
def convex_module_deployment() -> Iterator[Deployment]:
    """A fresh local deployment, with an empty database, for each test module."""
    yield from _local()


@pytest.fixture
def convex_test_deployment() -> Iterator[Deployment]:
    """A fresh local deployment, with an empty database, for each test (about half a second)."""
    yield from _local()


@_async_fixture
async def convex_store(request: pytest.FixtureRequest) -> AsyncIterator[ConvexStore]:
    """An open ConvexStore on the deployment ``--convex-isolation`` selects; closed afterwards."""
    isolation = request.config.getoption("convex_isolation") or request.config.getini(
        "convex_isolation"
    )
    if isolation not in ISOLATION:
        raise pytest.UsageError(f"convex_isolation must be one of {sorted(ISOLATION)}")
    deployment: Deployment = request.getfixturevalue(ISOLATION[isolation])
    async with ConvexStore(deployment.url, deployment.admin_key) as store:
        yield store
