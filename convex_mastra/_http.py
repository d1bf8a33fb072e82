"""HTTP/1.1 client connections on the event loop: an asyncio protocol framed by ``h11``.

Private to the transport (``_transport.py``), which owns the pool, the timeouts, the retries and
the error messages. This module knows nothing of Convex: it sends one request on one connection
and reads the whole answer. ``h11`` does all of the HTTP framing (request head, content length,
status line, headers, chunked or sized bodies, keep-alive rules); nothing here parses HTTP.

Why not worker threads (measured, see docs/architecture.md): a call on a worker thread costs a
thread hop and a GIL hand-over each way, and every thread's Python work competes with the loop.
Here a call is a write and a wait on a future; the loop wakes the caller when the answer is in.
"""

from __future__ import annotations

import asyncio
import select
import ssl
from collections.abc import Callable
from typing import Final

import h11

__all__ = ["Broken", "Connection", "default_ssl_context", "open_connection"]

_MAX_HEAD: Final = 64 * 1024
"""The most header bytes accepted in an answer (h11's default is 16 KiB)."""


class Broken(Exception):
    """The connection failed, or the server broke HTTP, after the request may have been sent.

    ``reason`` is the name of what went wrong, never the text of a lower exception: that text
    could quote request headers, and the Authorization header holds the secret.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def default_ssl_context() -> ssl.SSLContext:
    """Certificate and host name verification against the default trust store, as
    ``http.client.HTTPSConnection`` sets it up. Loads the trust store: call it off the loop."""
    context = ssl.create_default_context()
    context.set_alpn_protocols(["http/1.1"])
    return context


async def open_connection(host: str, port: int, ssl_context: ssl.SSLContext | None) -> Connection:
    """Connect (and shake hands, for TLS). Raises OSError when no connection was made, in which
    case nothing was sent. The caller bounds the wait."""
    loop = asyncio.get_running_loop()
    connection = Connection(loop)
    await loop.create_connection(
        lambda: connection,
        host,
        port,
        ssl=ssl_context,
        server_hostname=host if ssl_context is not None else None,
    )
    return connection


class Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection, used by one call at a time."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=_MAX_HEAD)
        self._transport: asyncio.Transport | None = None
        self._fileno = -1
        self._waiter: asyncio.Future[None] | None = None
        self._busy = False
        self._fed = False
        self._writable = True
        self._lost = False
        self._eof = False
        self._unusable = False
        self._on_done: Callable[[], None] | None = None
        self._timer: asyncio.TimerHandle | None = None

    # -- asyncio.Protocol ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        sock = transport.get_extra_info("socket")
        self._fileno = sock.fileno() if sock is not None else -1

    def data_received(self, data: bytes) -> None:
        if self._on_done is not None:  # abandoned: read to the end of the answer, then close
            self._h11.receive_data(data)
            self._drain()
            return
        if not self._busy or self._eof:
            # Bytes nobody asked for: the next answer read here could be this one.
            self._unusable = True
            return
        self._h11.receive_data(data)
        self._fed = True
        self._wake()

    def eof_received(self) -> bool:
        self._feed_eof()
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        self._feed_eof()
        self._finish()

    def pause_writing(self) -> None:
        self._writable = False

    def resume_writing(self) -> None:
        self._writable = True
        self._wake()

    # -- the pool's side -------------------------------------------------------------------

    def reusable(self) -> bool:
        """Whether a request can be sent on this idle connection: the server has not closed it,
        and nothing is waiting on the socket that the loop has not seen yet (an EOF, a reset or
        stray bytes would all be read as the next request's answer, or break it)."""
        if self._lost or self._eof or self._unusable or self._busy or self._fileno < 0:
            return False
        try:
            if asyncio.get_running_loop() is not self.loop:
                return False
        except RuntimeError:
            return False
        try:
            poller = select.poll()  # poll, not select: select fails for descriptors >= 1024
            poller.register(self._fileno, select.POLLIN)
            return not poller.poll(0)
        except (OSError, ValueError):
            return False

    def close(self) -> None:
        """Close now, whatever state the connection is in (never sent on again)."""
        self._unusable = True
        transport = self._transport
        if transport is None or self._lost:
            return
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self.loop:
            transport.abort()
        elif not self.loop.is_closed():  # a store used from another loop: not supported, tidy
            self.loop.call_soon_threadsafe(transport.abort)
        # else its loop is gone: the socket is closed when the transport is collected

    def abandon(self, on_done: Callable[[], None], grace: float | None) -> None:
        """The caller stopped waiting in the middle of an exchange (timeout or cancellation).

        The server may still be working on the request, so the connection is kept, never
        reused, until the answer has arrived, ``grace`` seconds have passed or the connection
        breaks, whichever comes first; then it is closed and ``on_done`` is called (once).
        This keeps the caller's concurrency slot taken while the server may be busy with it.
        """
        self._unusable = True
        self._on_done = on_done
        if self._lost or self.loop.is_closed():
            self._finish()
            return
        if grace is not None:
            self._timer = self.loop.call_later(grace, self._finish)
        self._drain()

    def _drain(self) -> None:
        try:
            while True:
                event = self._h11.next_event()
                if event is h11.NEED_DATA:
                    return
                if isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                    break
        except h11.ProtocolError:
            pass
        self._finish()

    def _finish(self) -> None:
        on_done, self._on_done = self._on_done, None
        if on_done is None:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.close()
        on_done()

    # -- one exchange ----------------------------------------------------------------------

    async def request(self, head: h11.Request, body: bytes) -> tuple[int, bytes, bool]:
        """Send ``head`` and ``body``; return (status, body, whether it can be used again).

        Raises :class:`Broken` if the connection fails or the answer is not HTTP. On any
        exception (cancellation included) the connection must be closed by the caller.
        """
        transport = self._transport
        if transport is None or self._lost or self._unusable:
            raise Broken("ConnectionClosed")
        h = self._h11
        self._busy = True
        self._fed = False
        try:
            out = h.send_with_data_passthrough(head) or []
            out += h.send_with_data_passthrough(h11.Data(data=body)) or []
            out += h.send_with_data_passthrough(h11.EndOfMessage()) or []
            transport.writelines(out)
            while not self._writable and not self._lost:  # a big body: wait for the kernel
                await self._wait()
            if not self._fed:  # nothing to parse yet: skip h11's first "need data"
                await self._wait()
            status = 0
            chunks: list[bytes] = []
            while True:
                event = h.next_event()
                if event is h11.NEED_DATA:
                    await self._wait()
                elif isinstance(event, h11.Data):
                    chunks.append(event.data)
                elif isinstance(event, h11.Response):
                    status = event.status_code
                elif isinstance(event, h11.EndOfMessage):
                    break
                elif isinstance(event, h11.ConnectionClosed):
                    raise Broken("ConnectionClosed")
                # InformationalResponse (1xx): keep reading
        except h11.ProtocolError as exc:
            raise Broken(type(exc).__name__) from None
        finally:
            self._busy = False
        reusable = h.our_state is h11.DONE and h.their_state is h11.DONE and not self._eof
        if reusable:  # and nothing came after the answer (it would be read as the next one)
            reusable = not h.trailing_data[0]
        if reusable:
            h.start_next_cycle()
        return status, b"".join(chunks), reusable

    def _feed_eof(self) -> None:
        if not self._eof:
            self._eof = True
            self._h11.receive_data(b"")
        self._fed = True
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _wait(self) -> None:
        waiter = self._waiter = self.loop.create_future()
        try:
            await waiter
        finally:
            self._waiter = None
