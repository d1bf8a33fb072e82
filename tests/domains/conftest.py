"""Domain tests run twice: on our handler and on the stock @mastra/convex one.

``any_store`` is parametrized over both; ``store`` (from tests/conftest.py) is ours only, for
behaviour the stock handler does not have (indexed paging costs, lastMessageAt, atomic merges).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from convex_mastra import ConvexStore
from convex_mastra.pytest_plugin import Deployment


@pytest.fixture(params=["ours", "stock"])
async def any_store(
    request: pytest.FixtureRequest, convex_deployment: Deployment
) -> AsyncIterator[ConvexStore]:
    """A store on our handler, then on the stock @mastra/convex handler."""
    deployment: Deployment = (
        convex_deployment
        if request.param == "ours"
        else request.getfixturevalue("stock_deployment")
    )
    async with ConvexStore(deployment.url, deployment.admin_key) as store:
        yield store


async def is_stock(store: ConvexStore) -> bool:
    """Whether ``store`` talks to the stock handler."""
    return (await store.handler_info()).is_stock
