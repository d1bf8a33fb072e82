"""Domain tests run twice: on our handler and on the stock @mastra/convex one.

``any_store`` is parametrized over both; ``store`` (from tests/conftest.py) is ours only, for
behaviour the stock handler does not have (indexed paging costs, lastMessageAt, atomic merges).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from convex_mastra import ConvexStore
from convex_mastra.pytest_plugin import Deployment


@pytest.fixture
async def any_store(any_deployment: Deployment) -> AsyncIterator[ConvexStore]:
    """A store on our handler, then on the stock @mastra/convex handler."""
    async with ConvexStore(any_deployment.url, any_deployment.admin_key) as store:
        yield store


def date(iso: str) -> dict[str, str]:
    """A Date for the TypeScript driver (JSON has none)."""
    return {"$date": iso}


async def is_stock(store: ConvexStore) -> bool:
    """Whether ``store`` talks to the stock handler."""
    return (await store.handler_info()).is_stock
