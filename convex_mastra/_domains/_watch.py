"""Watchers: ``async for`` over what a live query sees.

A watcher holds one live query (``_live.LiveQuery``) at a time, on the store's one WebSocket,
and turns its results into items. Leaving it (``aclose()``, ``async with``, or dropping it after
``break`` or a cancellation) removes the subscription from the deployment. ``store.close()``
ends its loop.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Generic, TypeVar

import orjson

from .._dispatch import Dispatcher
from .._errors import ConfigurationError, FunctionError, NotFoundError, ValidationError
from .._live import LiveQuery
from .._models import Message, WorkflowRun

__all__ = ["ListWatch", "MessageWatch", "RunWatch"]

T = TypeVar("T")
W = TypeVar("W", bound="_Watch[Any]")
# A cursor is "cm2:<writeSeq>", or "cm1:<_creationTime>" among rows stored before writeSeq.
_CURSOR = "cm2:"
_CURSOR_UNSEQUENCED = "cm1:"
# Removals scheduled by dropped watches, referenced until done (the loop keeps weak ones only).
_closing: set[asyncio.Task[None]] = set()


class _Watch(Generic[T]):
    """The subscription's lifecycle; a subclass says what to subscribe to (``_args``) and what
    a result holds (``_take``)."""

    _query_name = ""

    def __init__(self, dispatcher: Dispatcher) -> None:
        self._dispatcher = dispatcher
        self._buffer: deque[T] = deque()
        self._query: LiveQuery | None = None
        self._closed = False
        self._finished = False  # nothing follows what is buffered

    def __aiter__(self: W) -> W:
        return self

    async def __anext__(self) -> T:
        while not self._buffer:
            if self._closed or self._finished:
                await self.aclose()
                raise StopAsyncIteration
            if self._query is None:
                self._query = await self._dispatcher.subscribe(self._query_name, self._args())
            try:
                result = await self._query.next()
            except asyncio.CancelledError:
                # The consumer was cancelled (or a wait_for around anext timed out): drop the
                # subscription now; a later anext subscribes again from where this one stood.
                self._drop()
                raise
            except FunctionError as exc:
                await self.aclose()
                raise _explain(exc) from None
            except ConfigurationError:
                # The store was closed (its live queries end with it), or refused credentials.
                ended = self._closed or self._query is None or self._query.closed
                await self.aclose()
                if ended:
                    raise StopAsyncIteration from None
                raise
            if self._take(result):
                # Read to its end: drain the buffer, then subscribe past it.
                query, self._query = self._query, None
                await query.aclose()
        return self._yielded(self._buffer.popleft())

    async def aclose(self) -> None:
        """Stop watching: the subscription is removed from the deployment."""
        self._closed = True
        query, self._query = self._query, None
        if query is not None:
            await query.aclose()

    async def __aenter__(self: W) -> W:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __del__(self) -> None:
        # Dropped after a `break`: remove the subscription all the same.
        self._drop()

    def _drop(self) -> None:
        """Remove the subscription without waiting (from code that cannot await)."""
        query, self._query = self._query, None
        if query is None or query.closed:
            return
        with contextlib.suppress(RuntimeError):  # no running loop (interpreter exit)
            task = asyncio.get_running_loop().create_task(query.aclose())
            _closing.add(task)
            task.add_done_callback(_closing.discard)

    def _args(self) -> dict[str, Any]:
        raise NotImplementedError

    def _take(self, result: Any) -> bool:
        """Buffer the result's new items; True when the next items need a new subscription."""
        raise NotImplementedError

    def _yielded(self, item: T) -> T:
        return item


class MessageWatch(_Watch[Message]):
    """A thread's messages as they are written: ``async for message in store.messages.watch(...)``.

    Oldest first, in the order they were written: each new message once, and a message again,
    once, after it is changed or moved into the thread (deletions are not yielded). Messages
    already saved come first, one page of 100 at a time. ``cursor`` names the last message
    yielded: pass it as ``after=`` to a new watch to go on exactly there, in another process or
    after a restart.

    A slow consumer holds at most one page: the deployment re-runs the query as messages are
    saved, and this watch reads the newest result when it gets to it. A thread that does not
    exist yet is watched like an empty one.
    """

    _query_name = "messages"

    def __init__(self, dispatcher: Dispatcher, thread_id: str, after: str | None) -> None:
        super().__init__(dispatcher)
        self._thread_id = thread_id
        self._after_id: str | None = None
        # Position of the last message buffered: (0, _creationTime) among rows stored before
        # writeSeq existed, which come first, then (1, writeSeq).
        self._received: tuple[int, float] | None = None
        if after is not None and after.startswith((_CURSOR_UNSEQUENCED, _CURSOR)):
            self._received = _position(after)
        elif after is not None:
            self._after_id = after
        self._cursor = after
        self._positions: deque[tuple[int, float]] = deque()  # of each buffered message

    def __repr__(self) -> str:
        return f"<MessageWatch thread={self._thread_id!r} cursor={self._cursor!r}>"

    @property
    def cursor(self) -> str | None:
        """Where this watch stands: after the last message it yielded (``after=`` resumes)."""
        return self._cursor

    def _args(self) -> dict[str, Any]:
        args: dict[str, Any] = {"threadId": self._thread_id}
        if self._received is not None:
            args["afterSeq" if self._received[0] else "after"] = self._received[1]
        elif self._after_id is not None:
            args["afterId"] = self._after_id
        return args

    def _take(self, result: Mapping[str, Any]) -> bool:
        from .messages import message_from_row

        if result.get("missing"):
            raise NotFoundError(
                f"watch {self._thread_id!r}: no message {self._after_id!r} in the thread "
                "to start after",
                op="watch",
                table="mastra_messages",
                code="NOT_FOUND",
                details={"id": self._after_id},
            )
        for row in result.get("rows", ()):
            seq = row.get("writeSeq")
            position = (0, float(row["_creationTime"])) if seq is None else (1, float(seq))
            if self._received is None or position > self._received:
                self._buffer.append(message_from_row(row))
                self._positions.append(position)
                self._received = position
        return bool(result.get("full"))  # a full page: later messages follow it

    def _yielded(self, item: Message) -> Message:
        kind, value = self._positions.popleft()
        self._cursor = f"{_CURSOR}{int(value)}" if kind else f"{_CURSOR_UNSEQUENCED}{value!r}"
        return item


def _position(cursor: str) -> tuple[int, float]:
    kind = 1 if cursor.startswith(_CURSOR) else 0
    try:
        return kind, float(cursor.split(":", 1)[1])
    except ValueError:
        raise ValidationError(f"after: {cursor!r} is not a cursor", field="after") from None


TERMINAL_STATUSES = frozenset({"success", "failed", "canceled", "bailed", "tripwire"})
"""Workflow run statuses after which a run does not change (Mastra core 1.71)."""


class RunWatch(_Watch[WorkflowRun]):
    """A workflow run each time it changes: ``async for run in store.workflows.watch(...)``.

    Starts with the run as it is (or waits for it to be created), then yields it again after
    each change, and ends after a run in a terminal status (``success``, ``failed``,
    ``canceled``, ``bailed``, ``tripwire``), or when the run is deleted. A consumer slower
    than the changes sees the newest state, not every state in between.
    """

    _query_name = "workflowRun"

    def __init__(self, dispatcher: Dispatcher, workflow_name: str, run_id: str) -> None:
        super().__init__(dispatcher)
        self._workflow_name = workflow_name
        self._run_id = run_id
        self._last: Mapping[str, Any] | None = None

    def __repr__(self) -> str:
        return f"<RunWatch {self._workflow_name!r} run={self._run_id!r}>"

    def _args(self) -> dict[str, Any]:
        return {"workflowName": self._workflow_name, "runId": self._run_id}

    def _take(self, result: Mapping[str, Any] | None) -> bool:
        from .workflows import run_from_row

        if result is None:
            self._finished = self._last is not None  # deleted after it was seen
            return False
        if result != self._last:  # a reconnect answers the same row again
            self._last = result
            run = run_from_row(result)
            self._buffer.append(run)
            snapshot = run.snapshot
            status = getattr(snapshot, "status", None) or result.get("status")
            self._finished = status in TERMINAL_STATUSES
        return False


class ListWatch(_Watch[Any]):
    """A cache list's items as they are pushed: ``async for item in cache.watch_list(key)``.

    Each item once, in list order, from index ``start`` on; items already in the list come
    first, 100 at a time. ``index`` is the index of the next item to yield: pass it as
    ``start=`` to go on there. A list that does not exist yet is watched like an empty one.
    """

    _query_name = "cacheList"

    def __init__(self, dispatcher: Dispatcher, key: str, full_key: str, start: int) -> None:
        super().__init__(dispatcher)
        self._key = key
        self._full_key = full_key
        self._next = start  # index of the next item to buffer
        self.index = start
        """Index of the next item this watch yields."""

    def __repr__(self) -> str:
        return f"<ListWatch key={self._key!r} index={self.index}>"

    def _args(self) -> dict[str, Any]:
        return {"key": self._full_key, "start": self._next}

    def _take(self, result: Mapping[str, Any]) -> bool:
        for item in result.get("items", ()):
            if int(item["index"]) == self._next:  # a reconnect answers the same items again
                self._buffer.append(orjson.loads(item["value"]))
                self._next += 1
        return bool(result.get("full"))

    def _yielded(self, item: Any) -> Any:
        self.index += 1
        return item


def _explain(exc: FunctionError) -> FunctionError:
    text = str(exc)
    if "Could not find public function" in text:
        return FunctionError(
            f"{text}. Live queries need convex-mastra's convex/mastra/live.ts deployed and the "
            "admin key (with auth_token: mastra/public.ts and an allow-listed identity); the "
            "stock @mastra/convex functions have none.",
            path=exc.path,
        )
    return exc
