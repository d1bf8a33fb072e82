"""The sync-protocol client (convex_mastra._live) against in-process fake servers: what it sends,
how it reconnects, and that a deployment that never answers never holds up the event loop."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve

from convex_mastra import AuthenticationError, ConfigurationError
from convex_mastra._live import SyncClient

SECRET = "admin-key-that-must-not-leak"


def client(url: str) -> SyncClient:
    return SyncClient(
        url, admin_key=SECRET, auth_token=None, redact=lambda t: t.replace(SECRET, "<redacted>")
    )


@contextlib.asynccontextmanager
async def fake_server(
    handler: Callable[[ServerConnection], Awaitable[None]],
) -> AsyncIterator[str]:
    async with serve(handler, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        yield f"http://127.0.0.1:{port}"


def transition(start: int, end: int, modifications: list[dict[str, Any]]) -> str:
    def version(n: int) -> dict[str, Any]:
        return {"querySet": n, "identity": 1, "ts": "AAAAAAAAAAA="}

    return json.dumps(
        {
            "type": "Transition",
            "startVersion": version(start),
            "endVersion": version(end),
            "modifications": modifications,
        }
    )


async def test_it_sends_connect_authenticate_and_the_whole_query_set_again_after_a_reconnect() -> (
    None
):
    connections: list[list[dict[str, Any]]] = []

    async def handler(ws: ServerConnection) -> None:
        received: list[dict[str, Any]] = []
        connections.append(received)
        async for raw in ws:
            message = json.loads(raw)
            received.append(message)
            if message["type"] == "ModifyQuerySet":
                added = [m["queryId"] for m in message["modifications"] if m["type"] == "Add"]
                updates = [
                    {
                        "type": "QueryUpdated",
                        "queryId": q,
                        "value": len(connections),
                        "logLines": [],
                    }
                    for q in added
                ]
                await ws.send(transition(message["baseVersion"], message["newVersion"], updates))
                if len(connections) == 1 and len(received) >= 4:
                    await ws.close()  # the first connection breaks after the second query

    async with fake_server(handler) as url:
        live = client(url)
        try:
            a = await live.subscribe("mastra/live:messages", {"threadId": "a"})
            assert await a.next() == 1
            b = await live.subscribe("mastra/live:messages", {"threadId": "b"})
            assert await b.next() == 1
            gone = await live.subscribe("mastra/live:messages", {"threadId": "gone"})
            await gone.aclose()
            assert await a.next() == 2  # the second connection answered it again
            assert await b.next() == 2
        finally:
            await live.aclose()

    first, second = connections[0], connections[1]
    assert [m["type"] for m in first[:3]] == ["Connect", "Authenticate", "ModifyQuerySet"]
    assert first[0]["connectionCount"] == 0 and second[0]["connectionCount"] == 1
    assert first[0]["sessionId"] == second[0]["sessionId"]
    assert first[1] == {
        "type": "Authenticate",
        "baseVersion": 0,
        "tokenType": "Admin",
        "value": SECRET,
    }
    # Each connection's query-set versions chain from 0; the second holds every live query.
    assert [
        (m["baseVersion"], m["newVersion"]) for m in first if m["type"] == "ModifyQuerySet"
    ] == [
        (0, 1),
        (1, 2),
    ]
    resent = [m for m in second if m["type"] == "ModifyQuerySet"]
    assert (resent[0]["baseVersion"], resent[0]["newVersion"]) == (0, 1)
    assert sorted(m["args"][0]["threadId"] for m in resent[0]["modifications"]) == ["a", "b"]


async def test_a_refused_key_fails_every_query_without_showing_the_key() -> None:
    async def handler(ws: ServerConnection) -> None:
        async for raw in ws:
            if json.loads(raw)["type"] == "Authenticate":
                error = f"The provided admin key was invalid: {SECRET}"
                await ws.send(json.dumps({"type": "AuthError", "error": error, "baseVersion": 0}))

    async with fake_server(handler) as url:
        live = client(url)
        try:
            query = await live.subscribe("mastra/live:messages", {"threadId": "a"})
            with pytest.raises(AuthenticationError) as caught:
                await query.next()
            assert SECRET not in str(caught.value)
        finally:
            await live.aclose()


async def test_a_deployment_that_never_answers_never_holds_up_the_loop() -> None:
    accepted = asyncio.Event()

    async def black_hole(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.set()
        try:
            await reader.read()  # never answers the WebSocket handshake
        finally:
            writer.close()

    server = await asyncio.start_server(black_hole, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    live = client(f"http://127.0.0.1:{port}")
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.001)

    running = asyncio.create_task(ticker())
    try:
        query = await live.subscribe("mastra/live:messages", {"threadId": "a"})
        waiting = asyncio.create_task(query.next())
        await accepted.wait()
        before = ticks
        await asyncio.sleep(0.2)
        assert ticks > before + 10, "the loop kept running while the connection hung"
        assert not waiting.done()
        await live.aclose()  # ends the waiting consumer instead of leaving it hanging
        with pytest.raises(ConfigurationError, match="closed"):
            await waiting
    finally:
        running.cancel()
        server.close()
        await server.wait_closed()
