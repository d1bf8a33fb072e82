"""Domain tests run twice: on our handler and on the stock @mastra/convex one.

``any_store`` is parametrized over both; ``store`` (from tests/conftest.py) is ours only, for
behaviour the stock handler does not have (indexed paging costs, lastMessageAt, atomic merges).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from convex_mastra import ConvexStore, ValidationError
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


async def refused_offline(call: Callable[[ConvexStore], Awaitable[Any]], field: str) -> None:
    """``call`` raises ValidationError naming ``field`` on a store whose deployment does not
    exist: a call that reached the network would fail otherwise."""
    async with ConvexStore("http://127.0.0.1:9", "admin-key", request_timeout=1) as store:
        with pytest.raises(ValidationError) as error:
            await call(store)
        assert error.value.field == field
