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
from typing import Any, TypeGuard

import orjson

from ._codec import MAX_DOCUMENT_BYTES, convex_value_problem, js_numbers, json_text
from ._dispatch import MAX_CALLS, NULL, Dispatcher, HandlerInfo, batches
from ._errors import (
    BatchLimitError,
    ConfigurationError,
    FunctionError,
    RecordTooLargeError,
    ValidationError,
)
from ._lifecycle import Closable, check_function_path, resolve_deployment
from ._transport import RetryPolicy, Transport

__all__ = ["ConvexServerCache"]

DEFAULT_KEY_PREFIX = "mastra:cache:"
DEFAULT_TTL = 300.0
"""Seconds, as @mastra/convex's default of 300,000 ms."""


# What a cache row adds around its value text, key and prefix, counted the way Convex sizes a
# document: field names, _id, _creationTime, kind, counter or index, expiresAt (about 160 bytes;
# rounded up so a value this check lets through is never refused by the deployment).
_ROW_OVERHEAD = 200


# Upstream's listFromTo answers a whole range in one call. Ranges go in windows of this many
# items; a window that fails (items so large it passes Convex's 16 MiB read or answer limit) is
# read again in windows of STOCK_SAFE_WINDOW, which fit whatever the items are: 15 rows of at
# most 1 MiB each, plus the key's row.
STOCK_RANGE_WINDOW = 1000
STOCK_SAFE_WINDOW = 15

# Upstream's cleanup reads up to 104 rows in one call at worst: clear() takes 26 key rows and
# an orphan item, deletes (so reads again) 24 of them, and then removes a list: its key row, 26
# items, 25 of them read again to delete, and the key row again. Rows this small keep that
# within Convex's 16 MiB read limit, so whatever this client writes can always be removed.
STOCK_MAX_ROW_BYTES = 16 * 1024 * 1024 // 104


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
    mean what they mean for ``ConvexStore``.
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
    ) -> None:
        url, admin_key = resolve_deployment("ConvexServerCache", deployment_url, admin_auth_token)
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
        assert url is not None and admin_key is not None
        self.key_prefix = key_prefix
        self.ttl = float(ttl) if ttl else None
        self._clock = clock
        self._transport = Transport(
            url,
            admin_key=admin_key,
            request_timeout=request_timeout,
            max_concurrency=max_concurrency,
            retry=retry,
            allow_insecure_http=allow_insecure_http,
        )
        self._dispatcher = Dispatcher(self._transport, cache_function, probe_table=None)
        self._stock: bool | None = None
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

    # -- scalar values -----------------------------------------------------------------------

    async def get(self, key: str) -> Any:
        """The value stored at ``key``, or None when it is missing or expired.

        A counter reads as its number; a list raises StorageOperationError. (On the stock
        handler both read as None, as upstream's client reads them.)
        """
        full = self._key(key)
        if await self._is_stock():
            return js_numbers(await self._settle("get", "get", key, key=full))
        text = await self._settle("get", "get", key, key=full, json=True, strict=True)
        return None if text is None else _decode(text)

    async def set(self, key: str, value: Any, ttl: float | None = None) -> None:
        """Store ``value`` (JSON) at ``key``, replacing whatever was there.

        ``ttl`` in seconds overrides the cache's default; 0 stores it without expiry.
        """
        full = self._key(key)
        expires_at = self._expires_at(ttl)
        text = self._encode(value, full, "value")
        stock = await self._is_stock()
        await self._settle(
            "set",
            "set",
            key,
            key=full,
            keyPrefix=self.key_prefix,
            **self._value_fields(value, text, key, "value", stock),
            expiresAt=expires_at,
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
        if await self._is_stock():
            fields = [
                self._value_fields(value, text, key, f"values[{i}]", True)
                for i, (value, text) in enumerate(zip(items, texts, strict=True))
            ]
            for field in fields:
                await self._settle(
                    "listPush",
                    "list_push_many",
                    key,
                    key=full,
                    keyPrefix=self.key_prefix,
                    **field,
                    expiresAt=expires_at,
                )
            return
        # At most 25 items and about 4 MiB per call (one item alone may be bigger).
        # As many items and bytes per call as the handler takes (25 items, 4 MiB).
        info = await self._dispatcher.info()
        for chunk in batches(
            texts,
            max_items=info.limit("listItemsPerCall"),
            max_bytes=info.limit("itemBytesPerCall"),
            size=_utf8_length,
        ):
            await self._settle(
                "listPushMany",
                "list_push_many",
                key,
                key=full,
                keyPrefix=self.key_prefix,
                values=chunk,
                json=True,
                expiresAt=expires_at,
            )

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
        if await self._is_stock():
            return await self._stock_range(key, full, start, stop)
        page_items = (await self._dispatcher.info()).limit("listItemsPerCall")
        values: list[Any] = []
        first, last = start, stop
        for _ in range(self._max_calls):
            reply = await self._dispatcher.send(
                "listFromTo",
                None,
                key=full,
                to=last,
                maxItems=page_items,
                json=True,
                strict=True,
                **{"from": first},
                **self._now(),
            )
            values.extend(_decode(text) for text in _items(reply.result))
            if not reply.has_more:
                return values
            # With `next` the handler pages on through the range (absolute indexes from here on);
            # without it, it was reclaiming an expired list and the same request is repeated.
            if reply.answer.get("next") is not None:
                first, last = int(reply.answer["next"]), int(reply.answer["to"])
        raise self._range_limit(key, start, stop, len(values))

    async def _stock_range(self, key: str, full: str, start: int, stop: int) -> list[Any]:
        """``list_range`` on upstream's handler, in windows of absolute indexes.

        A short range of same-signed indexes is one call, as upstream's client makes it. Else
        a negative start is made absolute from the list's length, and a negative stop is
        applied at the end: windows run until one comes back short, then the last ``-stop - 1``
        items are dropped.
        """
        asked = (start, stop)
        window = STOCK_RANGE_WINDOW
        calls = 0

        async def read(first: int, last: int) -> list[Any]:
            nonlocal calls
            # Upstream answers hasMore while it reclaims an expired list: ask again.
            while calls < self._max_calls:
                calls += 1
                reply = await self._dispatcher.send(
                    "listFromTo", None, key=full, to=last, **{"from": first}
                )
                if not reply.has_more:
                    return [js_numbers(value) for value in _items(reply.result)]
            raise self._range_limit(key, *asked, 0)

        if (start < 0) == (stop < 0) and stop - start < STOCK_SAFE_WINDOW:
            return await read(start, stop)
        if start < 0:
            length = await self.list_length(key)
            start = max(length + start, 0)
            if stop < 0:
                stop = length + stop
        if 0 <= stop < start:
            return []
        values: list[Any] = []
        first = start
        while True:
            last = first + window - 1 if stop < 0 else min(first + window - 1, stop)
            try:
                got = await read(first, last)
            except FunctionError:
                if window == STOCK_SAFE_WINDOW:
                    raise
                window = STOCK_SAFE_WINDOW
                continue
            values += got
            if len(got) < last - first + 1 or last == stop:
                break
            if calls >= self._max_calls:
                raise self._range_limit(key, *asked, len(values))
            first = last + 1
        return values if stop >= -1 else values[: max(0, len(values) + stop + 1)]

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

    async def _is_stock(self) -> bool:
        """Whether the function is upstream's stock handler (else convex-mastra's).

        Asked once per cache, before the first operation. A handler that is neither (an older
        convex-mastra without ``listPushMany``) is refused.
        """
        if self._stock is not None:
            return self._stock
        info = await self._dispatcher.info()
        if info.is_stock:
            if self._clock is not None:
                raise ConfigurationError(
                    f"{self._dispatcher.function} is the stock @mastra/convex cache handler, "
                    "which judges expiry by the server's clock only; clock= needs convex-mastra's "
                    "handler (convex/mastra/)."
                )
        elif not info.supports("listPushMany"):
            raise ConfigurationError(
                f"{self._dispatcher.function} is the {info.name} cache handler, without the "
                "operations ConvexServerCache needs. Deploy the functions in convex/mastra/ "
                "(see convex/README.md); TypeScript clients keep working with them."
            )
        self._stock = info.is_stock
        return self._stock

    def _value_fields(
        self, value: Any, text: str, key: str, field: str, stock: bool
    ) -> dict[str, Any]:
        """The request fields that carry a value: its JSON text, or on the stock handler the
        value itself, which Convex must accept as an argument."""
        if not stock:
            return {"value": text, "json": True}
        size = self._row_size(text, self.key_prefix + key)
        if size > STOCK_MAX_ROW_BYTES:
            raise ValidationError(
                f"cache key {key!r}: {field} makes a row of {size:,} bytes; on the stock "
                f"@mastra/convex handler rows are kept to {STOCK_MAX_ROW_BYTES:,} bytes, since "
                "one of its cleanup calls reads up to 104 rows and Convex reads at most 16 MiB "
                "per call: a bigger row could never be deleted, cleared or expired. "
                "convex-mastra's handler (convex/mastra/) takes rows up to 1 MiB.",
                field=field,
            )
        problem = convex_value_problem(value, field)
        if problem:
            raise ValidationError(
                f"cache key {key!r} cannot hold this value on the stock @mastra/convex handler "
                f"({problem}): it receives values as Convex function arguments. "
                "convex-mastra's handler (convex/mastra/) stores any JSON.",
                field=field,
            )
        return {"value": value}

    async def _settle(self, op: str, method: str, key: str | None, /, **fields: Any) -> Any:
        """Call ``op`` until the handler stops answering ``hasMore``; the last result."""
        await self._is_stock()
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


def _items(result: Any) -> list[Any]:
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
