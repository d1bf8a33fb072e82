"""``ConvexServerCache``: Mastra's server cache (stream resumption, replay, response caching).

It speaks the cache protocol of @mastra/convex's ``ConvexServerCache`` to ``mastra/cache:handle``
and stores keys exactly as that client does, so Python and TypeScript apps read each other's keys.

On convex-mastra's handler, values travel as the JSON text that is stored (the handler's ``json``
mode), not as Convex values: a cache holds any JSON, including object keys that Convex refuses as
field names, and the size of the stored row is known exactly before anything is sent.

On upstream's stock handler, the cache speaks upstream's own protocol: values travel as Convex
values (so keys Convex refuses are refused here first), a list grows one item per call, and
ranges are read in windows of absolute indexes.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar, TypeGuard

import orjson

from ._codec import MAX_DOCUMENT_BYTES, json_text
from ._dispatch import MAX_CALLS, NULL, Dispatcher, HandlerInfo, batches
from ._domains._watch import ListWatch
from ._errors import (
    BatchLimitError,
    ConfigurationError,
    FunctionError,
    RecordTooLargeError,
    ValidationError,
)
from ._lifecycle import Closable, check_function_path, open_transport
from ._transport import AsyncTransport, RetryPolicy

__all__ = ["ConvexServerCache"]

DEFAULT_KEY_PREFIX = "mastra:cache:"
DEFAULT_TTL = 300.0
"""Seconds, as @mastra/convex's default of 300,000 ms."""


# What a cache row adds around its value text, key and prefix, counted the way Convex sizes a
# document: field names, _id, _creationTime, kind, counter or index, expiresAt (about 160 bytes;
# rounded up so a value this check lets through is never refused by the deployment).
_ROW_OVERHEAD = 200


_DEFAULT_MAX_CONCURRENCY = 16


class ConvexServerCache(Closable):
    """Mastra's server cache on a Convex deployment, compatible with @mastra/convex's.

    Use ``async with ConvexServerCache(...) as cache:`` or ``await cache.close()`` when done.
    ``deployment_url`` and ``admin_auth_token`` fall back to ``CONVEX_URL`` and
    ``CONVEX_ADMIN_KEY``. Every key is stored as ``key_prefix + key``; ``clear()`` removes the keys
    stored with exactly this prefix. ``ttl`` (seconds; ``None`` or 0: no expiry) applies to
    ``set`` without its own ``ttl``, to ``list_push`` and to ``increment``. ``request_timeout``
    (seconds; ``None`` or 0 disables) bounds every call.

    ``clock`` (a callable returning epoch seconds, like ``time.time``) replaces the clock used for
    expiry on both sides, for tests that move time. An empty ``key_prefix`` needs
    ``allow_empty_key_prefix=True``. ``max_concurrency``, ``retry`` and ``allow_insecure_http``
    mean what they mean for ``ConvexStore``; so does ``transport``.
    """

    _close_hint = "cache.close()"

    def __init__(
        self,
        deployment_url: str | None = None,
        admin_auth_token: str | None = None,
        *,
        cache_function: str = "mastra/cache:handle",
        request_timeout: float | None = 30.0,
        key_prefix: str = DEFAULT_KEY_PREFIX,
        ttl: float | None = DEFAULT_TTL,
        allow_empty_key_prefix: bool = False,
        clock: Callable[[], float] | None = None,
        max_concurrency: int = _DEFAULT_MAX_CONCURRENCY,
        retry: RetryPolicy | None = None,
        allow_insecure_http: bool = False,
        transport: AsyncTransport | None = None,
    ) -> None:
        check_function_path("cache_function", cache_function)
        if not isinstance(key_prefix, str):
            raise ConfigurationError(
                f"key_prefix must be a string, not {type(key_prefix).__name__}"
            )
        if key_prefix == "" and not allow_empty_key_prefix:
            # With no prefix, this cache's keys share one namespace with every other client that
            # uses none, and clear() removes all of those keys too.
            raise ConfigurationError(
                "key_prefix is empty: clear() would remove every key stored without a prefix, "
                "including other applications' keys. Pass a prefix such as 'myapp:cache:', or "
                "allow_empty_key_prefix=True if that is really intended."
            )
        if ttl is not None and not _is_duration(ttl):
            raise ConfigurationError(f"ttl must be a number of seconds >= 0 or None, not {ttl!r}")
        self.key_prefix = key_prefix
        self.ttl = float(ttl) if ttl else None
        self._clock = clock
        self._transport = open_transport(
            "ConvexServerCache",
            transport,
            deployment_url=deployment_url,
            admin_key=admin_auth_token,
            request_timeout=request_timeout,
            max_concurrency=max_concurrency,
            retry=retry,
            allow_insecure_http=allow_insecure_http,
            defaults={"request_timeout": 30.0, "max_concurrency": _DEFAULT_MAX_CONCURRENCY},
        )
        self._dispatcher = Dispatcher(self._transport, cache_function, probe_table=None)
        self._chosen: CacheProtocol | None = None
        # The bound on calls per operation; tests lower it to reach the limit quickly.
        self._max_calls = MAX_CALLS

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return (
            f"<ConvexServerCache url={self._transport.url!r} "
            f"key_prefix={self.key_prefix!r} {state}>"
        )

    @property
    def url(self) -> str:
        """The deployment URL."""
        return self._transport.url

    async def handler_info(self) -> HandlerInfo:
        """Which cache handler the deployment runs (convex-mastra's or stock @mastra/convex)."""
        return await self._dispatcher.info()

    async def capabilities(self) -> frozenset[str]:
        """What the deployed cache handler can do, by name: ``any_json`` (object keys Convex
        refuses), ``counter_reads`` (``get`` of a counter), ``strict_kinds`` (reading a list as a
        value, or the reverse, raises), ``contiguous_pushes`` (``list_push_many`` appends 25
        items per call), ``injected_clock`` (``clock=``). Upstream's handler has none."""
        if self._clock is not None and (await self._dispatcher.info()).is_stock:
            return frozenset()  # asking is fine; using the clock there raises
        return (await self._protocol()).capabilities

    # -- scalar values -----------------------------------------------------------------------

    async def get(self, key: str) -> Any:
        """The value stored at ``key``, or None when it is missing or expired.

        A counter reads as its number; a list raises StorageOperationError. (On the stock
        handler both read as None, as upstream's client reads them.)
        """
        full = self._key(key)
        return await (await self._protocol()).get(key, full)

    async def set(self, key: str, value: Any, ttl: float | None = None) -> None:
        """Store ``value`` (JSON) at ``key``, replacing whatever was there.

        ``ttl`` in seconds overrides the cache's default; 0 stores it without expiry.
        """
        full = self._key(key)
        expires_at = self._expires_at(ttl)
        text = self._encode(value, full, "value")
        fields = (await self._protocol()).value_fields(value, text, key, "value")
        await self._settle(
            "set", "set", key, key=full, keyPrefix=self.key_prefix, **fields, expiresAt=expires_at
        )

    async def delete(self, key: str) -> None:
        """Remove ``key`` (a long list in batches of 25 items); missing keys are fine."""
        await self._settle("delete", "delete", key, key=self._key(key))

    async def increment(self, key: str) -> int:
        """Add one to the counter at ``key`` (a missing key counts from 0); the new value.

        Refreshes the key's expiry with the cache's ``ttl``.
        """
        full = self._key(key)
        result = await self._settle(
            "increment",
            "increment",
            key,
            key=full,
            keyPrefix=self.key_prefix,
            expiresAt=self._expires_at(None),
        )
        return int(result)

    # -- lists -------------------------------------------------------------------------------

    async def list_push(self, key: str, value: Any) -> None:
        """Append ``value`` (JSON) to the list at ``key`` and refresh the list's expiry."""
        await self.list_push_many(key, [value])

    async def list_push_many(self, key: str, values: Iterable[Any]) -> None:
        """Append ``values`` in order, in as few calls as the bound of 25 items per call allows.

        Each call appends its items contiguously. Pushes from other clients may land between
        two calls, never inside one, and every pusher's items keep their order. All values are
        checked before the first call; should a later call fail, the earlier ones stay appended.
        (The stock handler appends one item per call.)
        """
        full = self._key(key)
        if isinstance(values, str | bytes | Mapping):
            raise ValidationError(
                f"values must be an iterable of values, not {type(values).__name__}",
                field="values",
            )
        items = list(values)
        texts = [self._encode(value, full, f"values[{i}]") for i, value in enumerate(items)]
        expires_at = self._expires_at(None)
        await (await self._protocol()).push(key, full, items, texts, expires_at)

    async def list_length(self, key: str) -> int:
        """Number of items in the list at ``key`` (0 when missing); a scalar raises."""
        return int(await self._settle("listLength", "list_length", key, key=self._key(key)))

    async def list_range(self, key: str, start: int, stop: int = -1) -> list[Any]:
        """Items ``start`` through ``stop``, both inclusive; negative indexes count from the end.

        ``list_range(key, 0)`` is the whole list, ``list_range(key, -3)`` the last three items.
        Read in pages of at most 25 items; a scalar at ``key`` raises.
        """
        full = self._key(key)
        for name, index in (("start", start), ("stop", stop)):
            if isinstance(index, bool) or not isinstance(index, int):
                raise ValidationError(f"{name} must be an int, not {index!r}", field=name)
        return await (await self._protocol()).range(key, full, start, stop)

    def watch_list(self, key: str, start: int = 0) -> ListWatch:
        """The list's items from index ``start`` as they are pushed, live:
        ``async for item in cache.watch_list(key)``.

        Each item once, in order; items already there come first. Stream replay across
        processes without polling: over one WebSocket per cache, opened on first use. Leaving
        the loop (or ``await watch.aclose()``) ends the subscription. Needs our cache handler's
        item rows and convex/mastra/live.ts (see docs/live.md).
        """
        full = self._key(key)
        if isinstance(start, bool) or not isinstance(start, int) or start < 0:
            raise ValidationError(f"start must be an int >= 0, not {start!r}", field="start")
        return ListWatch(self._dispatcher, key, full, start)

    def _range_limit(self, key: str, start: int, stop: int, read: int) -> BatchLimitError:
        return BatchLimitError(
            f"list_range({key!r}, {start}, {stop}) read {read:,} items in "
            f"{self._max_calls:,} calls and the range goes on; read it in smaller ranges."
        )

    # -- the whole cache ---------------------------------------------------------------------

    async def clear(self) -> None:
        """Remove every key stored with exactly this cache's ``key_prefix``.

        Keys of other prefixes are never touched, even when they start with this one. Runs in
        batches of at most 25 documents per call; a list being removed reads as missing.
        """
        await self._settle("clear", "clear", None, keyPrefix=self.key_prefix)

    # -- internals ---------------------------------------------------------------------------

    def _key(self, key: object) -> str:
        if not isinstance(key, str):
            raise ValidationError(
                f"cache keys are strings, not {type(key).__name__} ({key!r})", field="key"
            )
        return self.key_prefix + key

    def _now(self) -> dict[str, int]:
        """The ``now`` field for a request: only with an injected clock."""
        return {} if self._clock is None else {"now": _epoch_ms(self._clock())}

    def _expires_at(self, ttl: object) -> Any:
        """Epoch ms, or NULL for no expiry: upstream's handler needs the field, null or not."""
        if ttl is None:
            seconds = self.ttl
        elif _is_duration(ttl):
            seconds = float(ttl)
        else:
            raise ValidationError(
                f"ttl must be a number of seconds >= 0 (0: no expiry), not {ttl!r}", field="ttl"
            )
        if not seconds:
            return NULL
        now = self._clock() if self._clock is not None else time.time()
        # At least 1 ms, so a tiny positive ttl never means "already expired".
        return _epoch_ms(now) + max(1, round(seconds * 1000))

    def _encode(self, value: Any, full_key: str, field: str) -> str:
        text = json_text(value, field)
        size = self._row_size(text, full_key)
        if size > MAX_DOCUMENT_BYTES:
            raise RecordTooLargeError(full_key, size, MAX_DOCUMENT_BYTES)
        return text

    def _row_size(self, text: str, full_key: str) -> int:
        """The size of the row that stores ``text`` at ``full_key``, never under Convex's."""
        return (
            len(text.encode())
            + len(full_key.encode())
            + len(self.key_prefix.encode())
            + _ROW_OVERHEAD
        )

    async def _protocol(self) -> CacheProtocol:
        """How to speak to the function: convex-mastra's handler, or upstream's stock one.

        Chosen once per cache, before the first operation. A handler that is neither (an older
        convex-mastra without ``listPushMany``) is refused.
        """
        if self._chosen is not None:
            return self._chosen
        info = await self._dispatcher.info()
        if info.is_stock:
            from ._stock import StockCacheProtocol

            if self._clock is not None:
                raise ConfigurationError(
                    f"{self._dispatcher.function} is the stock @mastra/convex cache handler, "
                    "which judges expiry by the server's clock only; clock= needs convex-mastra's "
                    "handler (convex/mastra/)."
                )
            self._chosen = StockCacheProtocol(self)
        elif not info.supports("listPushMany"):
            raise ConfigurationError(
                f"{self._dispatcher.function} is the {info.name} cache handler, without the "
                "operations ConvexServerCache needs. Deploy the functions in convex/mastra/ "
                "(see convex/README.md); TypeScript clients keep working with them."
            )
        else:
            self._chosen = CacheProtocol(self)
        return self._chosen

    async def _settle(self, op: str, method: str, key: str | None, /, **fields: Any) -> Any:
        """Call ``op`` until the handler stops answering ``hasMore``; the last result."""
        await self._protocol()
        for _ in range(self._max_calls):
            reply = await self._dispatcher.send(op, None, **fields, **self._now())
            if not reply.has_more:
                return reply.result
        target = f"{method}({key!r})" if key is not None else f"{method}()"
        raise BatchLimitError(
            f"{target} on prefix {self.key_prefix!r} still had work left after "
            f"{self._max_calls:,} calls. Every call is its own transaction, so the cache is left "
            f"in a consistent, resumable state (a list being removed reads as missing until it is "
            f"gone); call {method}() again to continue where it stopped."
        )


def _is_duration(value: object) -> TypeGuard[float]:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value >= 0
    )


def _epoch_ms(seconds: float) -> int:
    return round(seconds * 1000)


def range_items(result: Any) -> list[Any]:
    """A listFromTo result as its list of items; anything else is a FunctionError."""
    if not isinstance(result, list):
        raise FunctionError(f"the cache handler answered listFromTo with {type(result).__name__}")
    return result


def _decode(text: Any) -> Any:
    if not isinstance(text, str):
        # An older handler without the json mode answers decoded values.
        raise FunctionError(
            "the cache handler answered with a decoded value instead of JSON text; redeploy "
            "convex/mastra/ from this convex-mastra version"
        )
    return orjson.loads(text)


def _utf8_length(text: str) -> int:
    return len(text.encode())


class CacheProtocol:
    """How ``ConvexServerCache`` speaks to convex-mastra's cache handler: values as the JSON
    text that is stored, lists pushed and read in pages of the handler's size.

    ``StockCacheProtocol`` (``_stock.py``) speaks upstream's protocol with the same methods.
    """

    capabilities: ClassVar[frozenset[str]] = frozenset(
        {"any_json", "counter_reads", "strict_kinds", "contiguous_pushes", "injected_clock"}
    )
    """What this protocol can do, by name (see docs/cache.md); upstream's declares none."""

    def __init__(self, cache: ConvexServerCache) -> None:
        self.cache = cache

    def value_fields(self, value: Any, text: str, key: str, field: str) -> dict[str, Any]:
        """The request fields that carry a value (checked JSON, as ``text``)."""
        return {"value": text, "json": True}

    async def get(self, key: str, full: str) -> Any:
        """The value at ``full``: a counter reads as its number, a list raises."""
        text = await self.cache._settle("get", "get", key, key=full, json=True, strict=True)
        return None if text is None else _decode(text)

    async def push(
        self, key: str, full: str, values: list[Any], texts: list[str], expires_at: Any
    ) -> None:
        """Append, as many items and bytes per call as the handler takes (25 items, 4 MiB;
        one item alone may be bigger)."""
        cache = self.cache
        info = await cache._dispatcher.info()
        for chunk in batches(
            texts,
            max_items=info.limit("listItemsPerCall"),
            max_bytes=info.limit("itemBytesPerCall"),
            size=_utf8_length,
        ):
            await cache._settle(
                "listPushMany",
                "list_push_many",
                key,
                key=full,
                keyPrefix=cache.key_prefix,
                values=chunk,
                json=True,
                expiresAt=expires_at,
            )

    async def range(self, key: str, full: str, start: int, stop: int) -> list[Any]:
        """Items ``start`` through ``stop`` in pages: the handler continues from ``next``."""
        cache = self.cache
        page_items = (await cache._dispatcher.info()).limit("listItemsPerCall")
        values: list[Any] = []
        first, last = start, stop
        for _ in range(cache._max_calls):
            reply = await cache._dispatcher.send(
                "listFromTo",
                None,
                key=full,
                to=last,
                maxItems=page_items,
                json=True,
                strict=True,
                **{"from": first},
                **cache._now(),
            )
            values.extend(_decode(text) for text in range_items(reply.result))
            if not reply.has_more:
                return values
            # With `next` the handler pages on through the range (absolute indexes from here on);
            # without it, it was reclaiming an expired list and the same request is repeated.
            if reply.answer.get("next") is not None:
                first, last = int(reply.answer["next"]), int(reply.answer["to"])
        raise cache._range_limit(key, start, stop, len(values))
