"""Keep-alive connections to one deployment: the pool, TLS, and the bound on sockets.

Private to ``HttpTransport`` (``_transport.py``), which owns the call policy: encoding, the
timeout, retries, decoding and the error mapping. This module owns the sockets: it turns
"POST this body to /api/<kind>" into an HTTP status and body, on a pooled connection.

- A call holds one of ``max_connections`` tokens from before it connects until its connection is
  back in the pool or closed, so the pool never has more sockets than that.
- A call cancelled or timed out mid-exchange returns at once, but its connection, in an unknown
  state, is never reused: it is kept (with the call's token) until the answer arrives, the
  connection breaks or the timeout + 1 s have passed, then closed, because the server may still
  be working on the request.
- The Authorization header lives in the request heads built here, and only in frames that do not
  await (see ``Connection.send``).
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Callable
from typing import Final
from urllib.parse import urlsplit

import anyio
from convex import __version__ as convex_version

from ._errors import ConfigurationError, DeploymentUnavailable
from ._http import Broken, Connection, default_ssl_context, open_connection
from ._version import __version__

__all__ = ["CLOSED", "ConnectionPool", "NotSent"]

CLOSED: Final = "this store is closed; create a new one"
_CONNECT_TIMEOUT: Final = 10.0


class NotSent(DeploymentUnavailable):
    """The request never left this process (connection refused, DNS, connect timeout)."""


class ConnectionPool:
    """Pooled HTTP/1.1 connections to the deployment at ``url`` (already validated)."""

    def __init__(
        self,
        url: str,
        *,
        authorization: str | None,
        max_connections: int,
        threads: anyio.CapacityLimiter,
        redact: Callable[[str], str],
    ) -> None:
        self.url = url
        parts = urlsplit(url)
        self._https = parts.scheme == "https"
        self._host = parts.hostname or ""
        self._port = parts.port or (443 if self._https else 80)
        base_path = parts.path.rstrip("/")
        default_port = self._port == (443 if self._https else 80)
        host = f"[{self._host}]" if ":" in self._host else self._host
        headers = [
            ("Host", host if default_port else f"{host}:{self._port}"),
            ("Content-Type", "application/json"),
            ("Convex-Client", f"python-{convex_version}"),
            ("User-Agent", f"convex-mastra/{__version__}"),
            *([("Authorization", authorization)] if authorization else []),
        ]
        # Every request of a kind has the same head but for its length, so each kind's head
        # is built once, up to the Content-Length value. The values were checked before they
        # got here (validate_url, the secret's cleaning): ASCII, no control characters.
        lines = "".join(f"{name}: {value}\r\n" for name, value in headers)
        self._heads: dict[str, bytes] = {
            kind: f"POST {base_path}/api/{kind} HTTP/1.1\r\n{lines}Content-Length: ".encode()
            for kind in ("query", "mutation", "action")
        }
        self._limiter = anyio.CapacityLimiter(max_connections)
        self._threads = threads
        self._redact = redact
        self._ssl_context: ssl.SSLContext | None = None
        self._ssl_lock = anyio.Lock()  # concurrent first callers wait for one build
        self._idle: list[Connection] = []
        self._abandoned: set[Connection] = set()
        self.closed = False

    async def post(
        self, kind: str, body: bytes, limit: float | None, loop: asyncio.AbstractEventLoop
    ) -> tuple[int, bytes]:
        """POST ``body`` to ``/api/<kind>`` from a call on ``loop`` (the running one: passed
        down, since asking for it costs a syscall on Python 3.11); the status and body of the
        answer.

        Raises :class:`NotSent` when no connection could be made, and ``_http.Broken`` when the
        connection failed after the request may have been sent. ``limit`` is the call's timeout
        (the caller enforces it), used to bound how long an abandoned connection is kept.
        """
        token = object()
        try:
            self._limiter.acquire_on_behalf_of_nowait(token)
        except anyio.WouldBlock:
            await self._limiter.acquire_on_behalf_of(token)
        holds_token = True
        try:
            conn = await self._checkout(loop)
            try:
                # send() is synchronous and this frame keeps no reference to the head: the
                # Authorization header never sits in the locals of a frame that awaits.
                answer = conn.send(self._head(kind, body), body)
                status, content, reusable = await answer
            except BaseException as exc:
                if isinstance(exc, Broken) or self.closed:
                    # Broken: never reused. Closed: nothing waits for the token any more.
                    conn.close()
                else:
                    # Timed out or cancelled mid-exchange: whether a sent mutation ran is
                    # unknown, and so is the connection's state. The server may still be
                    # working on the request, so the token stays taken until the answer comes,
                    # the connection breaks or the socket would have timed out (limit + 1 s).
                    self._abandoned.add(conn)
                    conn.abandon(
                        lambda: self._release_abandoned(conn, token),
                        (limit + 1.0) if limit else None,
                    )
                    holds_token = False
                raise
            if reusable and not self.closed:
                # At most max_connections calls hold a connection: the pool never outgrows it.
                self._idle.append(conn)
            else:
                conn.close()
        finally:
            if holds_token:
                self._limiter.release_on_behalf_of(token)
        return status, content

    def _head(self, kind: str, body: bytes) -> bytes:
        return self._heads[kind] + b"%d\r\n\r\n" % len(body)

    def _release_abandoned(self, conn: Connection, token: object) -> None:
        self._abandoned.discard(conn)
        self._limiter.release_on_behalf_of(token)

    async def aclose(self) -> None:
        """Close idle connections and those of abandoned calls; later posts raise
        ConfigurationError. Calls in flight close their connection when they end."""
        self.closed = True
        idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()
        for connection in list(self._abandoned):
            connection.close()

    async def _checkout(self, loop: asyncio.AbstractEventLoop) -> Connection:
        if self.closed:
            raise ConfigurationError(CLOSED)
        idle = self._idle
        while idle:
            conn = idle.pop()
            if conn.reusable(loop):
                return conn
            # The server closed it while idle (or it belongs to another event loop): dropped,
            # and the call connects afresh, which sends nothing twice.
            conn.close()
        context = await self._tls_context() if self._https else None
        try:
            with anyio.fail_after(_CONNECT_TIMEOUT):
                return await open_connection(self._host, self._port, context)
        except OSError as exc:  # refused, DNS failure, TLS failure, connect timeout: not sent
            message = f"could not connect to {self.url} ({_reason(exc)}); is it running?"
            raise NotSent(self._redact(message)) from None

    async def _tls_context(self) -> ssl.SSLContext:
        """The TLS context, built once: loading the trust store reads files, so it runs on a
        worker thread of the transport's own limiter, and concurrent first callers wait for
        that one build rather than each loading the trust store."""
        context = self._ssl_context
        if context is None:
            async with self._ssl_lock:
                context = self._ssl_context
                if context is None:
                    context = await anyio.to_thread.run_sync(
                        default_ssl_context, limiter=self._threads
                    )
                    self._ssl_context = context
        return context


def _reason(exc: BaseException) -> str:
    if isinstance(exc, socket.gaierror):
        return "name or service not known"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, TimeoutError):
        return "connect timed out"
    return type(exc).__name__
