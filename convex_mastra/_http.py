"""HTTP/1.1 client connections on the event loop: an asyncio protocol parsed by ``httptools``.

Private to the connection pool (``_pool.py``), which builds the request heads; the transport
(``_transport.py``) owns the timeouts, the retries and the error messages. This module knows
nothing of Convex: it sends one request on one connection and reads the whole answer.
``httptools`` (llhttp, the C parser under uvicorn and Node) parses the answers: status line,
headers, sized, chunked or close-delimited bodies, informational answers and the keep-alive
rules. It took 78 µs of h11's Python per exchange down to a few (see docs/architecture.md).

Why not worker threads (measured, see docs/architecture.md): a call on a worker thread costs a
thread hop and a GIL hand-over each way, and every thread's Python work competes with the loop.
Here a call is a write and a wait on a future; the loop wakes the caller when the answer is in.
"""

from __future__ import annotations

import asyncio
import collections
import heapq
import itertools
import select
import ssl
import weakref
from collections.abc import Callable
from typing import Any, Final, TypeVar

import httptools

__all__ = [
    "Broken",
    "Connection",
    "Deadline",
    "Deadlines",
    "Waker",
    "deadlines",
    "default_ssl_context",
    "open_connection",
    "turn",
]

_MAX_HEAD: Final = 64 * 1024
"""The most bytes an answer may take before its headers end (h11, used before, took 16 KiB)."""
_RESUME_PER_ITERATION: Final = 8
"""The most call steps (callers resumed with their answer, or calls about to send) that one
iteration of the event loop runs (see Waker)."""


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


Answer = tuple[int, bytes, bool]


class Waker:
    """Spreads the calls' work over iterations of the event loop: at most
    ``_RESUME_PER_ITERATION`` call steps (a caller resumed with its answer, or a call about to
    encode and send) run in one iteration; the rest wait for the next ones, in order.

    A resumed caller runs its whole continuation in one step (decoding, the caller's own code,
    often the next request), and answers to concurrent calls tend to arrive together, as do
    calls started together. Running them all at once would make one long loop iteration in
    which no timer or other task runs; in groups, the loop gets to everything else between
    groups. The total work is the same. One per event loop, shared by every store on it.

    It holds its loop weakly: the per-loop table is keyed weakly by the loop, and a strong
    reference from the value would keep every loop that ever made a call alive.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop_ref = weakref.ref(loop)
        self._steps = 0  # in this iteration
        self._queue: collections.deque[tuple[asyncio.Future[Any], Answer | Broken | None]] = (
            collections.deque()
        )
        self._scheduled = False

    def resume(self, future: asyncio.Future[Answer], outcome: Answer | Broken) -> None:
        """Hand ``outcome`` to the caller waiting on ``future``, now or in a later iteration."""
        if self._steps < _RESUME_PER_ITERATION and not self._queue:
            self._steps += 1
            _settle(future, outcome)
        else:
            self._queue.append((future, outcome))
        self._schedule()

    async def turn(self) -> None:
        """Return at once while this iteration has room for another step, else in a later one."""
        if self._steps < _RESUME_PER_ITERATION and not self._queue:
            self._steps += 1
            self._schedule()
            return
        future = asyncio.get_running_loop().create_future()
        self._queue.append((future, None))
        self._schedule()
        await future

    def _schedule(self) -> None:
        if not self._scheduled:
            loop = self._loop_ref()
            if loop is None or loop.is_closed():  # nothing would ever run the queue
                return
            self._scheduled = True
            loop.call_soon(self._next_iteration)

    def _next_iteration(self) -> None:
        self._steps = 0
        queue = self._queue
        while queue and self._steps < _RESUME_PER_ITERATION:
            future, outcome = queue.popleft()
            if not future.done():  # a caller cancelled meanwhile takes no step
                self._steps += 1
                _settle(future, outcome)
        loop = self._loop_ref()
        if (queue or self._steps) and loop is not None and not loop.is_closed():
            loop.call_soon(self._next_iteration)
        else:
            self._scheduled = False


def _settle(future: asyncio.Future[Any], outcome: Answer | Broken | None) -> None:
    if future.done():  # the caller was cancelled meanwhile
        return
    if isinstance(outcome, Broken):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)


_Kept = TypeVar("_Kept")


def _per_loop(
    table: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Kept],
    loop: asyncio.AbstractEventLoop,
    make: Callable[[asyncio.AbstractEventLoop], _Kept],
) -> _Kept:
    """``loop``'s entry of ``table``, made on first use. A loop closed with work still queued
    (callers' futures, an armed timer) keeps itself alive through it: entries of closed loops
    are dropped whenever a new one is made."""
    found = table.get(loop)
    if found is None:
        for closed in [other for other in list(table) if other.is_closed()]:
            table.pop(closed, None)
        found = table[loop] = make(loop)
    return found


_wakers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Waker] = weakref.WeakKeyDictionary()


def _waker(loop: asyncio.AbstractEventLoop) -> Waker:
    return _per_loop(_wakers, loop, Waker)


async def turn(loop: asyncio.AbstractEventLoop) -> None:
    """Wait, if need be, for an iteration of ``loop`` (the running one) with room for one more
    call step (see Waker)."""
    await _waker(loop).turn()


class Deadline:
    """One call's timeout (see Deadlines). ``expired``: the timer cancelled the call's task."""

    __slots__ = ("expired", "finished", "task")

    def __init__(self, task: asyncio.Task[Any]) -> None:
        self.task: asyncio.Task[Any] | None = task
        self.expired = False
        self.finished = False


class Deadlines:
    """Timeouts of every call on one event loop, kept by one timer.

    A cancel scope per call (``anyio.fail_after``) costs about 20 µs of a small call's CPU; here
    starting a deadline is a heap push and ending it sets a flag. The timer is set for the
    earliest deadline; when it fires, each call whose deadline has passed has its task
    cancelled (``expired`` says it was this), and the timer is set for the next one. Calls
    usually end long before their deadline, and deadlines come in the order calls start, so the
    timer seldom moves. Ended deadlines leave the heap when the timer reaches them, or all at
    once when they outnumber the live ones.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop_ref = weakref.ref(loop)
        self._heap: list[tuple[float, int, Deadline]] = []
        self._order = itertools.count()  # ties: never compare Deadlines
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = float("inf")
        self._live = 0

    def start(self, seconds: float, loop: asyncio.AbstractEventLoop) -> Deadline:
        """A deadline ``seconds`` from now for the running task of ``loop`` (the running one)."""
        task = asyncio.current_task(loop)
        assert task is not None
        deadline = Deadline(task)
        when = loop.time() + seconds
        heapq.heappush(self._heap, (when, next(self._order), deadline))
        self._live += 1
        if when < self._timer_at:
            self._arm(loop, when)
        elif len(self._heap) > 2 * self._live + 1024:
            self._compact()
        return deadline

    def finish(self, deadline: Deadline) -> None:
        """The call ended (however): its deadline no longer applies."""
        if deadline.finished:
            return
        deadline.finished = True
        deadline.task = None  # an ended task (and its result) is not kept for the heap's sake
        self._live -= 1
        if not self._live:
            # Nothing to time out: no timer either, which would keep the loop alive.
            self._heap.clear()
            if self._timer is not None:
                self._timer.cancel()
                self._timer, self._timer_at = None, float("inf")

    def _arm(self, loop: asyncio.AbstractEventLoop, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = loop.call_at(when, self._fire)
        self._timer_at = when

    def _fire(self) -> None:
        self._timer, self._timer_at = None, float("inf")
        loop = self._loop_ref()
        if loop is None or loop.is_closed():
            return
        now = loop.time()
        heap = self._heap
        while heap and (heap[0][0] <= now or heap[0][2].finished):
            _, _, deadline = heapq.heappop(heap)
            task = deadline.task
            if task is not None:
                deadline.expired = True
                self.finish(deadline)
                task.cancel()
        if heap:
            self._arm(loop, heap[0][0])

    def _compact(self) -> None:
        self._heap = [entry for entry in self._heap if not entry[2].finished]
        heapq.heapify(self._heap)


_deadlines: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Deadlines] = (
    weakref.WeakKeyDictionary()
)


def deadlines(loop: asyncio.AbstractEventLoop) -> Deadlines:
    """``loop``'s Deadlines."""
    return _per_loop(_deadlines, loop, Deadlines)


class Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection, used by one call at a time.

    The answer is parsed as it arrives, in the protocol's callbacks, and the caller is woken
    once, when it is complete. When many answers arrive together, parsing them is spread over
    the loop iterations that receive them rather than piled into the one that resumes callers.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._waker = _waker(loop)
        self._parser = httptools.HttpResponseParser(self)
        self._transport: asyncio.Transport | None = None
        self._fileno = -1
        self._poller: select.poll | None = None
        # While a request is out: the answer's future, and what has been parsed of it.
        self._answer: asyncio.Future[Answer] | None = None
        self._status = 0
        self._chunks: list[bytes] = []
        self._head_bytes = 0  # received before the answer's headers ended
        self._headers_done = False
        self._sized = False  # Content-Length or chunked; else the body ends with the connection
        self._keep_alive = False
        self._complete = False  # the final (not 1xx) answer is in
        self._trailing = False  # and something came after it
        self._settled = False
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
        if self._answer is None and self._on_done is None:
            # Bytes nobody asked for: the next answer read here could be this one.
            self._unusable = True
            return
        if self._settled:
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._settle(None, Broken("Upgrade"))  # a 101: no longer HTTP
            return
        except httptools.HttpParserError as exc:
            if not self._complete:
                self._settle(None, Broken(type(exc).__name__))
                return
            self._trailing = True  # the answer is in; what followed it is not HTTP
        if self._complete:
            self._deliver()
        elif not self._headers_done:
            self._head_bytes += len(data)
            if self._head_bytes > _MAX_HEAD:
                self._settle(None, Broken("HeadTooLarge"))

    def eof_received(self) -> bool:
        self._feed_eof()
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        try:
            self._feed_eof()
        finally:
            # Whatever happened in parsing, the caller is never left waiting on a connection
            # that is gone, and an abandoned connection's token is always released.
            try:
                if self._answer is not None or self._on_done is not None:
                    self._settle(None, Broken("ConnectionClosed"))
            finally:
                self._finish()

    def pause_writing(self) -> None:
        self._writable = False

    def resume_writing(self) -> None:
        self._writable = True

    # -- httptools' callbacks, while an answer is parsed ---------------------------------

    def on_message_begin(self) -> None:
        if self._complete:
            self._trailing = True  # a second answer nobody asked for

    def on_header(self, name: bytes, value: bytes) -> None:
        if not self._complete and name.lower() in (b"content-length", b"transfer-encoding"):
            self._sized = True

    def on_headers_complete(self) -> None:
        if not self._complete:
            self._status = self._parser.get_status_code()
            self._keep_alive = self._parser.should_keep_alive()
            self._headers_done = True

    def on_body(self, body: bytes) -> None:
        if not self._complete:
            self._chunks.append(body)

    def on_message_complete(self) -> None:
        if self._complete:
            return
        if self._status < 200:  # 100 Continue and the like: the answer follows
            self._headers_done = self._sized = False
            self._head_bytes, self._chunks = 0, []
            return
        self._complete = True

    # -- the pool's side -------------------------------------------------------------------

    def reusable(self, loop: asyncio.AbstractEventLoop) -> bool:
        """Whether a request from a call on ``loop`` (the running one) can be sent on this idle
        connection: it was made on that loop, the server has not closed it, and nothing is
        waiting on the socket that the loop has not seen yet (an EOF, a reset or stray bytes
        would all be read as the next request's answer, or break it)."""
        if self._lost or self._eof or self._unusable or self._fileno < 0 or loop is not self.loop:
            return False
        try:
            poller = self._poller
            if poller is None:  # one per connection: a checkout costs one syscall
                poller = self._poller = select.poll()  # not select: it fails for fds >= 1024
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
        self._answer = None
        self._on_done = on_done
        if self._settled or self._lost or self.loop.is_closed():
            # The answer was in already (the caller was cancelled as it arrived), or the
            # connection is gone: nothing to wait for.
            self._finish()
            return
        if grace is not None:
            self._timer = self.loop.call_later(grace, self._finish)

    # -- one exchange ----------------------------------------------------------------------

    def send(self, head: bytes, body: bytes) -> asyncio.Future[Answer]:
        """Write ``head`` (the request line and headers, built by the pool) and ``body``;
        return the future of (status, body, whether the connection can be used again).

        The future fails with :class:`Broken` if the connection fails or the answer is not
        HTTP. After any exception while waiting for it (cancellation included) the caller
        closes or abandons the connection.

        Synchronous on purpose: the head carries the Authorization header, and no frame that
        awaits may hold it (or its bytes) in its locals, where a traceback of a timeout or a
        cancellation would carry it to error trackers. The caller awaits only the future.

        The answer is not held back until the body has been written: a server (or proxy) may
        answer early, a 413 or a 401, without reading the rest. The caller gets that answer,
        and the connection, with part of the body still unsent, is never used again.
        """
        transport = self._transport
        if transport is None or self._lost or self._unusable:
            raise Broken("ConnectionClosed")
        answer: asyncio.Future[Answer] = self.loop.create_future()
        self._answer, self._settled = answer, False
        self._status, self._chunks, self._head_bytes = 0, [], 0
        self._headers_done = self._sized = self._keep_alive = False
        self._complete = self._trailing = False
        transport.writelines((head, body))  # Python 3.12+ sends both without joining them
        return answer

    def _unsent(self) -> bool:
        """Whether part of the request is still waiting in a write buffer."""
        transport = self._transport
        if transport is None or not self._writable:
            return True
        if transport.get_write_buffer_size():
            return True
        # TLS: the encrypted bytes wait in the TCP transport under the TLS one.
        lower = getattr(getattr(transport, "_ssl_protocol", None), "_transport", None)
        return bool(lower is not None and lower.get_write_buffer_size())

    def _deliver(self) -> None:
        """The answer is complete: hand it over, saying whether the connection can be reused:
        the answer keeps it alive, nothing came after it (that would be read as the next
        answer), the server has not closed it, and it read the whole request (an early answer
        may not have)."""
        reusable = self._keep_alive and not self._trailing and not self._eof and not self._unsent()
        self._settle((self._status, b"".join(self._chunks), reusable), None)

    def _settle(self, result: Answer | None, error: Broken | None) -> None:
        answer, self._answer = self._answer, None
        self._chunks, self._settled = [], True
        if result is None or not result[2]:
            self._unusable = True
        if self._on_done is not None:  # abandoned: nobody waits for the answer
            self._finish()
        elif answer is not None and not answer.done():
            outcome: Answer | Broken = result if result is not None else error or Broken("?")
            self._waker.resume(answer, outcome)

    def _feed_eof(self) -> None:
        if self._eof:
            return
        self._eof = True
        if self._settled or (self._answer is None and self._on_done is None):
            return
        if self._headers_done and not self._sized and self._status not in (204, 304):
            # An answer with neither a length nor chunks ends when the connection does.
            self._complete = True
            self._deliver()
        else:
            self._settle(None, Broken("ConnectionClosed"))

    def _finish(self) -> None:
        on_done, self._on_done = self._on_done, None
        if on_done is None:
            return
        try:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self.close()
        finally:
            on_done()
