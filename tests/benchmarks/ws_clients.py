"""The two WebSocket clients the live watchers could run on, head to head: ``websockets`` and
``wsproto``.

    python -m tests.benchmarks.ws_clients [--messages 2000]

``convex_mastra/_live.py`` needs a WebSocket client on the event loop (the official client's
``subscribe`` holds the GIL; see docs/architecture.md). Both candidates run here against one
server, ``websockets``' asyncio server in a process of its own so that its CPU is not counted:

- ``websockets``: its asyncio client, configured as ``_live.py`` configures it (no compression,
  no size limit, keepalive pings);
- ``wsproto``: its sans-I/O state machine under the smallest asyncio protocol that can speak the
  sync protocol (``WsprotoClient`` below: handshake, text messages, pong, close). It has no
  keepalive, no flow control and no open timeout, which ``websockets`` brings and ``_live.py``
  relies on; what it measures is a lower bound for a client of our own.

Measured per client: the handshake; a 200-byte round trip (a ModifyQuerySet and its answer);
client CPU per message received for 1 KiB messages (a small Transition) and 64 KiB ones (a page
of messages), from ``time.process_time`` of this process; and Python memory per open connection
(tracemalloc, 200 connections).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from websockets.asyncio.client import connect
from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection,
    CloseConnection,
    Message,
    Ping,
    RejectConnection,
    Request,
    TextMessage,
)

SERVER = """
import asyncio, sys
from websockets.asyncio.server import serve

async def handler(ws):
    async for text in ws:
        if text.startswith("burst "):
            _, n, size = text.split()
            payload = "x" * int(size)
            for _ in range(int(n)):
                await ws.send(payload)
            await ws.send("end")
        else:
            await ws.send(text)

async def main():
    async with serve(handler, "127.0.0.1", 0, compression=None, max_size=None) as server:
        print(server.sockets[0].getsockname()[1], flush=True)
        await asyncio.Future()

asyncio.run(main())
"""


class Client(Protocol):
    async def send(self, text: str) -> None: ...
    async def recv(self) -> str: ...
    async def close(self) -> None: ...


class WebsocketsClient:
    """``websockets`` as ``_live.py`` opens it."""

    def __init__(self, ws: Any) -> None:
        self._ws = ws

    @classmethod
    async def open(cls, url: str) -> WebsocketsClient:
        ws = await connect(url, max_size=None, compression=None, ping_interval=20, ping_timeout=20)
        return cls(ws)

    async def send(self, text: str) -> None:
        await self._ws.send(text)

    async def recv(self) -> str:
        text = await self._ws.recv()
        assert isinstance(text, str)
        return text

    async def close(self) -> None:
        await self._ws.close()


class WsprotoClient(asyncio.Protocol):
    """``wsproto`` under a minimal asyncio protocol: what a client of our own starts from."""

    def __init__(self, host: str, path: str) -> None:
        self._ws = WSConnection(ConnectionType.CLIENT)
        self._host, self._path = host, path
        self._messages: asyncio.Queue[str] = asyncio.Queue()
        self._parts: list[str] = []
        self._transport: asyncio.Transport | None = None
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    @classmethod
    async def open(cls, url: str) -> WsprotoClient:
        host_port, _, path = url.removeprefix("ws://").partition("/")
        host, _, port = host_port.partition(":")
        loop = asyncio.get_running_loop()
        _, client = await loop.create_connection(
            lambda: cls(host_port, "/" + path), host, int(port)
        )
        await client.opened
        return client

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        transport.write(self._ws.send(Request(host=self._host, target=self._path)))

    def data_received(self, data: bytes) -> None:
        assert self._transport is not None
        self._ws.receive_data(data)
        for event in self._ws.events():
            if isinstance(event, TextMessage):
                self._parts.append(event.data)
                if event.message_finished:
                    self._messages.put_nowait("".join(self._parts))
                    self._parts.clear()
            elif isinstance(event, AcceptConnection):
                self.opened.set_result(None)
            elif isinstance(event, Ping):
                self._transport.write(self._ws.send(event.response()))
            elif isinstance(event, CloseConnection):
                if self._ws.state is ConnectionState.REMOTE_CLOSING:  # not the answer to ours
                    self._transport.write(self._ws.send(event.response()))
                self._transport.close()
            elif isinstance(event, RejectConnection):
                self.opened.set_exception(ConnectionError("handshake refused"))

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._closed.done():
            self._closed.set_result(None)

    async def send(self, text: str) -> None:
        assert self._transport is not None
        self._transport.write(self._ws.send(Message(data=text)))

    async def recv(self) -> str:
        return await self._messages.get()

    async def close(self) -> None:
        assert self._transport is not None
        self._transport.write(self._ws.send(CloseConnection(code=1000)))
        try:
            await asyncio.wait_for(self._closed, 2)
        except TimeoutError:
            self._transport.close()


Opener = Callable[[str], Awaitable[Client]]
CLIENTS: dict[str, Opener] = {
    "websockets": WebsocketsClient.open,
    "wsproto": WsprotoClient.open,
}


@dataclass
class ClientResult:
    name: str
    connect_p50_us: float = 0.0
    rtt_p50_us: float = 0.0
    rtt_p99_us: float = 0.0
    cpu_small_us: float = 0.0  # client CPU per 1 KiB message received
    cpu_large_us: float = 0.0  # client CPU per 64 KiB message received
    large_mb_s: float = 0.0
    bytes_per_connection: float = 0.0


@dataclass
class WsResults:
    messages: int
    clients: list[ClientResult] = field(default_factory=list)


def _percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _burst(client: Client, n: int, size: int) -> float:
    """Client CPU seconds to receive ``n`` messages of ``size`` characters."""
    cpu = time.process_time()
    await client.send(f"burst {n} {size}")
    for _ in range(n):
        assert len(await client.recv()) == size
    assert await client.recv() == "end"
    return time.process_time() - cpu


async def measure(name: str, opener: Opener, url: str, messages: int) -> ClientResult:
    result = ClientResult(name)
    connects = []
    for _ in range(50):
        started = time.perf_counter()
        client = await opener(url)
        connects.append(time.perf_counter() - started)
        await client.close()
    result.connect_p50_us = statistics.median(connects) * 1e6

    client = await opener(url)
    payload = "y" * 200
    for _ in range(100):  # warm
        await client.send(payload)
        await client.recv()
    rtts = []
    for _ in range(messages):
        started = time.perf_counter()
        await client.send(payload)
        await client.recv()
        rtts.append(time.perf_counter() - started)
    result.rtt_p50_us = _percentile(rtts, 0.5) * 1e6
    result.rtt_p99_us = _percentile(rtts, 0.99) * 1e6
    result.cpu_small_us = await _burst(client, messages, 1024) / messages * 1e6
    large = max(1, messages // 4)
    started = time.perf_counter()
    cpu = await _burst(client, large, 65536)
    result.large_mb_s = large * 65536 / (time.perf_counter() - started) / 1e6
    result.cpu_large_us = cpu / large * 1e6
    await client.close()

    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    clients = [await opener(url) for _ in range(200)]
    result.bytes_per_connection = (tracemalloc.get_traced_memory()[0] - before) / len(clients)
    tracemalloc.stop()
    for c in clients:
        await c.close()
    return result


async def run(messages: int = 2000) -> WsResults:
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-c", SERVER, stdout=asyncio.subprocess.PIPE
    )
    try:
        assert server.stdout is not None
        port = int(await server.stdout.readline())
        url = f"ws://127.0.0.1:{port}/api/sync"
        results = WsResults(messages)
        # Twice each, alternating, the second of each kept: the first warms the server too.
        for _ in range(2):
            runs = [await measure(name, opener, url, messages) for name, opener in CLIENTS.items()]
        results.clients = runs
        return results
    finally:
        server.kill()
        await server.wait()


def section(r: WsResults) -> str:
    rows = [
        "| client | handshake, p50 | 200 B round trip, p50 / p99 | client CPU per 1 KiB "
        "message | client CPU per 64 KiB message (MB/s) | Python memory per connection |",
        "|---|---|---|---|---|---|",
    ]
    for c in r.clients:
        rows.append(
            f"| {c.name} | {c.connect_p50_us:,.0f} µs | {c.rtt_p50_us:.0f} / {c.rtt_p99_us:.0f} µs "
            f"| {c.cpu_small_us:.1f} µs | {c.cpu_large_us:.0f} µs ({c.large_mb_s:,.0f} MB/s) "
            f"| {c.bytes_per_connection:,.0f} bytes |"
        )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks.ws_clients")
    parser.add_argument("--messages", type=int, default=2000)
    args = parser.parse_args()
    print(section(asyncio.run(run(args.messages))))


if __name__ == "__main__":
    main()
