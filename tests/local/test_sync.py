"""The local deployment speaks Convex's WebSocket sync protocol: the official Python client's
``ConvexClient`` (convex-rs inside) subscribes, mutates and acts against it unchanged.

The functions are the local server's own test fixtures (public and internal queries,
mutations, an action). Subscriptions are consumed with ``async for`` in a task, never with
``wait_for`` around ``__anext__`` (that drops the subscription; ../shared/notes/live-updates.md).
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from convex import ConvexClient

from convex_mastra import LocalDeployment
from tests.conftest import RawHttp

SERVER = Path(__file__).parents[2] / "convex_mastra" / "local" / "server"
FIXTURES = SERVER / "test" / "fixtures"


@pytest.fixture(scope="module")
def functions(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("functions")
    shutil.copytree(FIXTURES / "functions", folder, dirs_exist_ok=True)
    shutil.copytree(FIXTURES / "fake-lib", folder / "node_modules" / "fake-lib")
    return folder


@pytest.fixture(scope="module")
def deployment(functions: Path) -> Iterator[LocalDeployment]:
    with LocalDeployment(functions_dir=functions) as local:
        yield local


def http(deployment: LocalDeployment) -> RawHttp:
    return RawHttp(deployment.url, deployment.admin_key)


def subscriptions(raw: RawHttp) -> list[dict[str, Any]]:
    listed = raw.subscriptions()
    # As the client sent the path: the Rust client re-subscribes with "mod.js:fn" after a reconnect.
    for entry in listed:
        entry["udfPath"] = entry["udfPath"].replace(".js:", ":")
    return listed


async def collect(sub: Any, into: list[Any]) -> None:
    async for value in sub:
        into.append(value)


async def until(condition: Any, what: str, seconds: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


def bodies(value: Any) -> list[str]:
    return [doc["body"] for doc in value]


def watch(client: ConvexClient, author: str) -> tuple[list[Any], asyncio.Task[None]]:
    """The results of ``messages:byAuthor`` as they come, collected by a task."""
    seen: list[Any] = []
    sub = client.subscribe("messages:byAuthor", {"author": author})
    return seen, asyncio.create_task(collect(sub, seen))


def send(raw: RawHttp, author: str, body: str) -> None:
    """A mutation over the HTTP API."""
    status, reply = raw.post("mutation", "messages:send", {"author": author, "body": body})
    assert (status, reply["status"]) == (200, "success"), reply


async def test_a_subscription_sees_a_mutation_made_over_http(deployment: LocalDeployment) -> None:
    raw = http(deployment)
    author = "sync-http"
    seen, consumer = watch(ConvexClient(deployment.url), author)
    try:
        await until(lambda: len(seen) >= 1, "the first result")
        assert seen[0] == []
        listed = [(s["udfPath"], s["args"]) for s in subscriptions(raw)]
        assert ("messages:byAuthor", {"author": author}) in listed
        send(raw, author, "over http")
        await until(lambda: any(bodies(v) == ["over http"] for v in seen), "the pushed update")
    finally:
        consumer.cancel()
    # Cancelling the consumer removes the subscription on the server.
    await until(
        lambda: (
            ("messages:byAuthor", {"author": author})
            not in [(s["udfPath"], s["args"]) for s in subscriptions(raw)]
        ),
        "the subscription to be removed",
    )


async def test_the_client_mutates_and_acts(deployment: LocalDeployment) -> None:
    client = ConvexClient(deployment.url)
    author = "sync-client"
    seen, consumer = watch(client, author)
    # actions:addViaAction writes through an internal mutation, as author "internal".
    seen_internal, internal_consumer = watch(client, "internal")
    consumers = [consumer, internal_consumer]
    try:
        await until(lambda: len(seen) >= 1 and len(seen_internal) >= 1, "the first results")
        client.mutation("messages:send", {"author": author, "body": "from the client"})
        await until(lambda: any("from the client" in bodies(v) for v in seen), "the mutation")
        assert client.query("messages:byAuthor", {"author": author})[0]["body"] == "from the client"
        count = client.action("actions:addViaAction", {"body": "from an action"})
        assert count >= 2
        await until(
            lambda: any("from an action" in bodies(v) for v in seen_internal), "the action's write"
        )
    finally:
        for consumer in consumers:
            consumer.cancel()


async def test_internal_functions_need_the_admin_key(deployment: LocalDeployment) -> None:
    anonymous = ConvexClient(deployment.url)
    refused = "Could not find public function for 'messages:internalCount'"
    with pytest.raises(Exception, match=refused):
        anonymous.query("messages:internalCount", {})
    admin = ConvexClient(deployment.url)
    admin.set_admin_auth(deployment.admin_key)
    assert isinstance(admin.query("messages:internalCount", {}), float | int)


async def test_a_killed_and_restarted_deployment_is_reconnected_to(functions: Path) -> None:
    with LocalDeployment(functions_dir=functions) as local:
        raw = http(local)
        author = "sync-restart"
        seen, consumer = watch(ConvexClient(local.url), author)
        try:
            await until(lambda: len(seen) >= 1, "the first result")
            send(raw, author, "a")
            await until(lambda: any(bodies(v) == ["a"] for v in seen), "the first update")
            local.kill()
            local.start()  # same port and data directory
            raw = http(local)
            send(raw, author, "b")
            # The client reconnects with a new session and subscribes again by itself.
            await until(lambda: any(bodies(v) == ["a", "b"] for v in seen), "the update after")
            listed = subscriptions(raw)
            assert any(s["udfPath"] == "messages:byAuthor" for s in listed), listed
        finally:
            consumer.cancel()
