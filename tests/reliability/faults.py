"""Fault injection without mocks: a TCP proxy in front of a real deployment, and a loop heartbeat.

``FaultProxy`` forwards bytes between the SDK and a real local deployment until told to misbehave:

- ``pass``: forward both ways.
- ``blackhole``: accept connections and read requests, never forward or answer.
- ``reset``: new connections are closed with a TCP reset as soon as they are accepted.
- ``stall``: forward requests; of each answer pass only the first bytes, then hold the rest
  (the deployment ran the function; the client never hears the outcome).
- ``trickle``: forward answers one byte every 50 ms.

Modes apply per chunk, so keep-alive connections opened in ``pass`` mode misbehave too.
"""

from __future__ import annotations

import contextlib
import math
import socket
import struct
import threading
import time
from typing import Literal

import anyio

Mode = Literal["pass", "blackhole", "reset", "stall", "trickle"]


class FaultProxy:
    """A switchable TCP proxy on 127.0.0.1 in front of ``upstream`` (``http://host:port``)."""

    def __init__(self, upstream: str) -> None:
        host, port = upstream.removeprefix("http://").rstrip("/").rsplit(":", 1)
        self._upstream = (host, int(port))
        self.mode: Mode = "pass"
        self.accepted = 0
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(256)
        self._listener.settimeout(0.1)
        self._stop = threading.Event()
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._spawn(self._accept_loop)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    def close(self) -> None:
        self._stop.set()
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._listener.close()

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals -------------------------------------------------------------------------

    def _spawn(self, target: object, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)  # type: ignore[arg-type]
        with self._lock:
            self._threads.append(thread)
        thread.start()

    def _track(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock)

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted += 1
            if self.mode == "reset":
                # SO_LINGER 0: close() sends RST instead of FIN.
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                client.close()
                continue
            self._track(client)
            try:
                upstream = socket.create_connection(self._upstream, timeout=5)
            except OSError:
                client.close()
                continue
            self._track(upstream)
            self._spawn(self._to_upstream, client, upstream)
            self._spawn(self._to_client, upstream, client)

    def _to_upstream(self, client: socket.socket, upstream: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while not self._stop.is_set():
                data = client.recv(65536)
                if not data:
                    break
                if self.mode == "blackhole":
                    continue  # swallowed: the deployment never sees it
                upstream.sendall(data)
        with contextlib.suppress(OSError):
            upstream.shutdown(socket.SHUT_WR)

    def _to_client(self, upstream: socket.socket, client: socket.socket) -> None:
        stalled = False
        with contextlib.suppress(OSError):
            while not self._stop.is_set():
                data = upstream.recv(65536)
                if not data:
                    break
                if stalled:
                    continue
                if self.mode == "stall":
                    client.sendall(data[:12])  # "HTTP/1.1 200" and then nothing
                    stalled = True
                elif self.mode == "trickle":
                    for i in range(len(data)):
                        if self._stop.is_set():
                            return
                        client.sendall(data[i : i + 1])
                        time.sleep(0.05)
                else:
                    client.sendall(data)
        if not stalled:
            with contextlib.suppress(OSError):
                client.shutdown(socket.SHUT_WR)


class Heartbeat:
    """A task that ticks every ``interval`` seconds and keeps the longest gap between ticks.

    A loop blocked by a call would show a gap as long as the call; a free loop keeps ticking.
    """

    def __init__(self, interval: float = 0.01) -> None:
        self.interval = interval
        self.ticks = 0
        self.worst_gap = 0.0
        self._stopped = anyio.Event()

    async def run(self) -> None:
        last = time.perf_counter()
        while not self._stopped.is_set():
            await anyio.sleep(self.interval)
            now = time.perf_counter()
            self.worst_gap = max(self.worst_gap, now - last)
            last = now
            self.ticks += 1

    def stop(self) -> None:
        self._stopped.set()

    @property
    def worst_gap_ms(self) -> float:
        return self.worst_gap * 1000 if self.ticks else math.inf
