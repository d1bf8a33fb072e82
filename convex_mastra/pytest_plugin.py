"""pytest fixtures that give tests a Convex deployment.

Load it in your ``conftest.py`` with ``pytest_plugins = ["convex_mastra.pytest_plugin"]``.

- ``convex_deployment`` (session scope): the deployment named by ``CONVEX_URL`` and
  ``CONVEX_ADMIN_KEY`` when both are set, otherwise one local deployment for the whole session.
- ``convex_module_deployment`` (module scope): a fresh local deployment with its own data directory
  for each test module, for tests that need an empty database. Ignores ``CONVEX_URL``.

Both yield a :class:`Deployment` with ``url`` and ``admin_key``. The fixtures are synchronous, so
they work with pytest-asyncio, anyio's plugin, or plain tests.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from .local import LocalDeployment

__all__ = ["Deployment", "convex_deployment", "convex_module_deployment"]


@dataclass(frozen=True)
class Deployment:
    """Where a test's deployment is: ``url``, ``admin_key`` and, when local, the process."""

    url: str
    admin_key: str = field(repr=False)
    local: LocalDeployment | None = None


def _from_environment() -> Deployment | None:
    url, key = os.environ.get("CONVEX_URL"), os.environ.get("CONVEX_ADMIN_KEY")
    return Deployment(url=url, admin_key=key) if url and key else None


@pytest.fixture(scope="session")
def convex_deployment() -> Iterator[Deployment]:
    """A deployment for the test session: ``CONVEX_URL``/``CONVEX_ADMIN_KEY`` or a local one."""
    configured = _from_environment()
    if configured is not None:
        yield configured
        return
    with LocalDeployment() as local:
        yield Deployment(url=local.url, admin_key=local.admin_key, local=local)


@pytest.fixture(scope="module")
def convex_module_deployment() -> Iterator[Deployment]:
    """A fresh local deployment, with an empty database, for each test module."""
    with LocalDeployment() as local:
        yield Deployment(url=local.url, admin_key=local.admin_key, local=local)
