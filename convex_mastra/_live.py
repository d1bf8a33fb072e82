"""Live queries over Convex's WebSocket sync protocol, on the event loop.

The transport layer's other half (``_transport.py`` speaks the HTTP API). Why not the official
``convex.ConvexClient``: its ``subscribe`` holds the GIL while it connects, and against a
deployment that accepts and never answers it froze the interpreter for 9 to 44 s
(../shared/notes/live-updates.md). This client runs on the event loop with ``websockets``'
asyncio implementation, so nothing here waits on the network outside an ``await``.

One ``SyncClient`` per store: one WebSocket, opened on the first subscription and shared by all
of them, authenticated like the store's HTTP calls (admin key or user JWT), reconnecting with
jittered exponential backoff, closed with the store. Protocol rules (convex-js
``browser/sync/protocol.ts``): a connection starts with Connect and Authenticate, then one
ModifyQuerySet holding every live query; each Transition carries the results that changed.
After a reconnect the query set starts again from version 0 with all queries.

A ``LiveQuery`` keeps only its newest result: a consumer slower than the updates skips the
results in between and never buffers them (the watchers built on it read by cursor, so the
newest result is all they need).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import orjson
from convex.values import json_to_convex
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException

from ._errors import AuthenticationError, ConfigurationError, FunctionError, refused_caller

__all__ = ["LiveQuery", "SyncClient"]

logger = logging.getLogger("convex_mastra.live")

_OPEN_TIMEOUT = 10.0
# A connection that stops answering is found by websockets' own keepalive: a WebSocket ping
# every 20 s, and the connection counts as lost when no pong comes within 20 s.
_PING = 20.0
_BACKOFF_FIRST = 0.1
_BACKOFF_MAX = 10.0
_BIG_MESSAGE = 64 * 1024  # bytes; decoding more on the loop would stall it for milliseconds


class LiveQuery:
    """One subscribed query: wait for its next result with :meth:`next`; :meth:`aclose` ends it."""

    def __init__(self, client: SyncClient, query_id: int, path: str, args: Mapping[str, Any]):
        self._client = client
        self.query_id = query_id
        self.path = path
        self.args = dict(args)
        self._value: Any = None
        self._error: BaseException | None = None
        self._version = 0  # results received
        self._taken = 0  # results returned by next()
        self._changed = asyncio.Event()
        self.closed = False

    def __repr__(self) -> str:
        return f"<LiveQuery {self.path} id={self.query_id}{' closed' if self.closed else ''}>"

    async def next(self) -> Any:
        """The query's newest result once it is newer than the last one returned.

        Raises the query's failure (FunctionError), the connection's (AuthenticationError), or
        ConfigurationError once the query or its client is closed.
        """
        while self._taken == self._version and self._error is None:
            if self.closed:
                raise ConfigurationError(f"{self!r} is closed")
            self._changed.clear()
            await self._changed.wait()
        if self._error is not None:
            raise self._error
        self._taken = self._version
        return self._value

    async def aclose(self) -> None:
        """Remove the subscription from the deployment; ``next`` raises from now on."""
        if not self.closed:
            self.closed = True
            self._changed.set()
            await self._client._remove(self)

    def _deliver(self, value: Any) -> None:
        self._value = value
        self._error = None
        self._version += 1
        self._changed.set()

    def _fail(self, error: BaseException) -> None:
        self._error = error
        self._changed.set()


class SyncClient:
    """One WebSocket to a deployment's sync endpoint, shared by every live query of a store."""

    def __init__(
        self,
        url: str,
        *,
        admin_key: str | None,
        auth_token: str | None,
        redact: Callable[[str], str],
    ) -> None:
        scheme, rest = url.split("://", 1)
        self._ws_url = f"{'wss' if scheme == 'https' else 'ws'}://{rest}/api/sync"
        self.url = url
        self._admin_key = admin_key
        self._auth_token = auth_token
        self._redact = redact
        self._session_id = str(uuid.uuid4())
        self._queries: dict[int, LiveQuery] = {}
        self._next_id = 0
        self._ws: ClientConnection | None = None
        self._query_set = 0  # this connection's query-set version
        self._send_lock = asyncio.Lock()
        self._pending: list[dict[str, Any]] = []  # modifications not sent yet
        self._flusher: asyncio.Task[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self.connections = 0
        """Connections opened so far (a reconnect counts one more)."""

    def __repr__(self) -> str:
        return f"<SyncClient {self._ws_url} queries={len(self._queries)}>"

    async def subscribe(self, path: str, args: Mapping[str, Any]) -> LiveQuery:
        """Subscribe to the query at ``path``; its results arrive through the LiveQuery."""
        if self._closed:
            raise ConfigurationError("the store is closed")
        query = LiveQuery(self, self._next_id, path, args)
        self._next_id += 1
        self._queries[query.query_id] = query
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="convex-sync")
        else:
            self._queue(_add(query))
        return query

    async def aclose(self) -> None:
        """Close the WebSocket; every live query's ``next`` raises ConfigurationError."""
        self._closed = True
        for query in list(self._queries.values()):
            query.closed = True
            query._changed.set()
        self._queries.clear()
        for task in (self._task, self._flusher):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _remove(self, query: LiveQuery) -> None:
        if self._queries.pop(query.query_id, None) is None:
            return
        added = next((m for m in self._pending if m.get("queryId") == query.query_id), None)
        if added is not None:
            self._pending.remove(added)  # never sent: nothing to remove
            return
        self._queue({"type": "Remove", "queryId": query.query_id})
        if self._flusher is not None:
            # Sent when this returns (a cancelled caller does not cancel the send).
            await asyncio.shield(self._flusher)

    def _queue(self, modification: dict[str, Any]) -> None:
        """Send ``modification`` with the others queued in this turn of the loop, in one
        ModifyQuerySet: a thousand watchers starting at once cost one message, not a thousand."""
        self._pending.append(modification)
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush())

    async def _flush(self) -> None:
        # Until nothing is queued: what is queued while a send is under way goes in the next.
        while self._pending:
            async with self._send_lock:
                modifications, self._pending = self._pending, []
                # Read under the lock: the connection (and its version chain) may have changed.
                ws = self._ws
                if ws is None or not modifications:
                    continue  # the next connection sends the whole query set
                base, self._query_set = self._query_set, self._query_set + 1
                # A connection that just broke: the next one sends the whole query set.
                with contextlib.suppress(WebSocketException, OSError):
                    await ws.send(_text(self._modify_message(base, modifications)))

    def _modify_message(self, base: int, modifications: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "type": "ModifyQuerySet",
            "baseVersion": base,
            "newVersion": base + 1,
            "modifications": modifications,
        }

    async def _run(self) -> None:
        attempt = 0
        while self._queries and not self._closed:
            try:
                async with connect(
                    self._ws_url,
                    open_timeout=_OPEN_TIMEOUT,
                    max_size=None,  # a result is bounded by the deployment (16 MiB)
                    compression=None,
                    ping_interval=_PING,
                    ping_timeout=_PING,
                ) as ws:
                    await self._start(ws)
                    attempt = 0
                    await self._read(ws)
            except (OSError, TimeoutError, WebSocketException) as exc:
                logger.info("sync connection to %s lost: %s", self.url, self._redact(str(exc)))
            except Exception as exc:  # AuthenticationError, or an answer we cannot read
                for query in self._queries.values():
                    query._fail(exc)
                return
            finally:
                self._ws = None
            # Full jitter, so many stores do not reconnect in step after a restart.
            await asyncio.sleep(random.uniform(0, min(_BACKOFF_MAX, _BACKOFF_FIRST * 2**attempt)))
            attempt += 1

    async def _start(self, ws: ClientConnection) -> None:
        connect_message = {
            "type": "Connect",
            "sessionId": self._session_id,
            "connectionCount": self.connections,
            "lastCloseReason": None,
        }
        if self._admin_key:
            auth: dict[str, Any] = {"tokenType": "Admin", "value": self._admin_key}
        elif self._auth_token:
            auth = {"tokenType": "User", "value": self._auth_token}
        else:
            auth = {"tokenType": "None"}
        self.connections += 1
        async with self._send_lock:
            # In one step with no await: this ModifyQuerySet holds every query subscribed so
            # far (so nothing queued before counts); later ones are queued and flushed after it.
            queries = [_add(q) for q in self._queries.values()]
            self._pending.clear()
            self._ws, self._query_set = ws, 1
            await ws.send(_text(connect_message))
            await ws.send(_text({"type": "Authenticate", "baseVersion": 0, **auth}))
            await ws.send(_text(self._modify_message(0, queries)))

    async def _read(self, ws: ClientConnection) -> None:
        async for raw in ws:
            # A big result (a page of large messages) is decoded off the loop.
            big = len(raw) > _BIG_MESSAGE
            message = await asyncio.to_thread(_decode, raw) if big else _decode(raw)
            kind = message.get("type")
            if kind == "Transition":
                for change in message.get("modifications", ()):
                    self._apply(change)
            elif kind == "AuthError":
                raise AuthenticationError(
                    f"the deployment at {self.url} refused the credentials of a live query: "
                    f"{self._redact(str(message.get('error', '')))}. Check CONVEX_ADMIN_KEY / "
                    "admin_auth_token, or auth_token."
                )

    def _apply(self, change: Mapping[str, Any]) -> None:
        query = self._queries.get(int(change.get("queryId", -1)))
        if query is None:
            return
        if change.get("type") == "QueryUpdated":
            query._deliver(change.get("value"))
        elif change.get("type") == "QueryFailed":
            message = self._redact(str(change.get("errorMessage", "unknown error")))
            raw = change.get("errorData")
            error_data = None if raw is None else json_to_convex(raw)
            refused = refused_caller(f"live query {query.path}", error_data)
            if refused is not None:
                query._fail(refused)
                return
            query._fail(
                FunctionError(
                    f"live query {query.path} failed: {message}",
                    path=query.path,
                    error_data=error_data,
                )
            )


def _decode(raw: str | bytes) -> dict[str, Any]:
    """A server message, its query values as Python values (Convex JSON read)."""
    message: dict[str, Any] = orjson.loads(raw)
    # Convex JSON differs from JSON only in objects keyed "$integer", "$bytes" or "$float".
    escaped = '"$' in raw if isinstance(raw, str) else b'"$' in raw
    if message.get("type") == "Transition" and escaped:
        for change in message.get("modifications", ()):
            if change.get("type") == "QueryUpdated":
                change["value"] = json_to_convex(change.get("value"))
    return message


def _add(query: LiveQuery) -> dict[str, Any]:
    return {"type": "Add", "queryId": query.query_id, "udfPath": query.path, "args": [query.args]}


def _text(message: Mapping[str, Any]) -> str:
    return orjson.dumps(message).decode()
