"""The async facade over the official ``convex`` package: the only module that imports it.

Why it is built this way (measured, see docs/architecture.md):

- ``convex.ConvexClient`` (WebSocket, Rust) holds the GIL while it waits for the server, so even on
  a worker thread it freezes the event loop for the whole round trip. We do not use it.
- ``convex.http_client.ConvexHttpClient`` speaks the HTTP API, but opens a new connection per
  call, sets no timeout, raises bare ``Exception`` and blocks. So we speak the same wire format
  ourselves and reuse ``convex.values`` for value encoding (``ConvexInt64``, bytes, special
  floats), with orjson for the JSON itself.
- The I/O runs on the event loop itself: keep-alive connections are asyncio protocols parsed
  by ``httptools`` (``_http.py``), pooled by ``_pool.py``. A call is a write and a wait; no
  thread hop, no GIL hand-over. (The first transport ran ``http.client`` on worker threads:
  about 0.3 ms more CPU per call, which capped one process near 1,000 calls/s.) Encoding a big
  request or decoding a big answer takes tens of milliseconds, so above a size threshold that
  runs on a worker thread.
- ``HttpTransport`` here is the call policy: each call has a deadline (one timer per event
  loop, ``_http.Deadlines``), is retried where that is safe, and its answer is decoded and
  mapped to the package's errors. The pool (``_pool.py``) owns the sockets, TLS, and the
  ``max_concurrency`` bound on them.
- ``AsyncTransport`` is what the stores need of a transport, so a test or a wrapper can stand
  in for ``HttpTransport`` (``transport=``), as httpx's clients take a transport.

Cancellation and timeouts are honest about mutations: once a mutation's request may have reached
the server, a timeout or cancellation cannot tell whether it was applied. Convex runs a mutation
as one transaction, so it was applied entirely or not at all. After a send it is retried only when
it is marked idempotent, which the dispatcher does for read-only operations.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, Protocol
from urllib.parse import urlsplit

import anyio
import orjson
from convex import ConvexInt64
from convex.values import _validate_object_field, convex_to_json, float_to_json, json_to_convex

from ._errors import (
    AuthenticationError,
    ConfigurationError,
    DeploymentUnavailable,
    FunctionError,
    RequestTimeoutError,
    ValidationError,
    refused_caller,
)
from ._http import Broken, deadlines, turn
from ._live import LiveQuery, SyncClient
from ._pool import CLOSED, ConnectionPool, NotSent

__all__ = [
    "DEFAULT",
    "AsyncTransport",
    "ConvexInt64",
    "HttpTransport",
    "Kind",
    "RetryPolicy",
    "Transport",
    "UseDefault",
]

logger = logging.getLogger("convex_mastra.transport")

Kind = Literal["query", "mutation", "action"]


class UseDefault:
    """Sentinel type: "use the transport's own setting"."""

    def __repr__(self) -> str:
        return "DEFAULT"


DEFAULT: Final = UseDefault()
Timeout = float | None | UseDefault

_MAX_SECRET = 8192  # admin keys are ~100 characters; JWTs a few thousand at most
# Above these sizes, encoding a request or decoding an answer moves to a worker thread; below
# them it costs the loop at most about 2 ms (measured, see docs/architecture.md).
_BIG_REQUEST = 1000  # values in the arguments (strings count one per KiB)
_BIG_ANSWER = 16 * 1024  # bytes of JSON
_SAMPLE = 8  # items weighed of a long list


@dataclass(frozen=True)
class RetryPolicy:
    """When and how long to retry.

    Only failures that are safe to retry are retried: a connection that was never made (the
    request cannot have reached the server), or any transport failure of an idempotent call.
    Backoff is exponential with full jitter, and all tries fit inside the call's timeout and
    ``max_total`` seconds.
    """

    attempts: int = 4
    base_delay: float = 0.05
    max_delay: float = 1.0
    max_total: float = 10.0

    def delay(self, attempt: int) -> float:
        """Backoff before try ``attempt + 1`` (full jitter)."""
        return random.uniform(0, min(self.max_delay, self.base_delay * 2**attempt))


def validate_url(url: str, *, allow_insecure_http: bool) -> str:
    """Check a deployment URL: http(s), a host, and https unless the host is loopback."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(
            f"deployment URL {url!r} is not an http(s) URL; it looks like "
            "https://<name>.convex.cloud or http://127.0.0.1:3210"
        )
    if parts.scheme == "http" and not allow_insecure_http and not _is_loopback(parts.hostname):
        raise ConfigurationError(
            f"refusing plain http:// to non-loopback host {parts.hostname!r}: the admin key would "
            "travel unencrypted. Use https://, or pass allow_insecure_http=True if this network "
            "is trusted."
        )
    return url.strip().rstrip("/")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def encode_args(args: Mapping[str, Any]) -> bytes:
    """Encode function arguments as Convex JSON, or raise ValidationError naming the field."""
    try:
        return orjson.dumps({k: _to_json(v) for k, v in args.items()})
    except (ValueError, TypeError) as exc:
        where = _find_bad_path(args)
        raise ValidationError(
            f"value at {where} cannot be stored in Convex: {exc}", field=where
        ) from None


_FIELDS_CHECKED: set[str] = set()
_FIELDS_REMEMBERED = 4096


def _to_json(value: Any) -> Any:
    """``convex.values.convex_to_json(value)``, the same values and the same errors, faster.

    Requests are mostly dicts, lists and strings whose field names repeat from call to call:
    those take a short path here, and a field name is checked once (convex checks every
    character of every name, in Python, on every call). Anything else goes to convex itself.
    """
    kind = type(value)
    if kind is str or value is None or value is True or value is False:
        return value
    if kind is dict:
        out = {}
        for key, item in value.items():
            if key not in _FIELDS_CHECKED:
                _check_field(key)
            out[key] = _to_json(item)
        return out
    if kind is list:
        return [_to_json(item) for item in value]
    if kind is float:
        return float_to_json(value)  # NaN, infinities and -0.0 travel as {"$float": ...}
    return convex_to_json(value)


def _check_field(key: Any) -> None:
    if not isinstance(key, str):
        raise ValueError(f"Convex object keys must be strings, found {key}")
    _validate_object_field(key)
    if len(_FIELDS_CHECKED) < _FIELDS_REMEMBERED and type(key) is str:
        _FIELDS_CHECKED.add(key)


def _find_bad_path(value: Any, path: str = "args") -> str:
    # Only called on failure, so this second walk costs nothing on the hot path.
    if isinstance(value, Mapping):
        for key, item in value.items():
            child = f"{path}.{key}" if isinstance(key, str) else f"{path}[{key!r}]"
            if not isinstance(key, str):
                return child
            try:
                convex_to_json({key: item})
            except (ValueError, TypeError):
                return _find_bad_path(item, child)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            try:
                convex_to_json(item)
            except (ValueError, TypeError):
                return _find_bad_path(item, f"{path}[{index}]")
    return path


class AsyncTransport(Protocol):
    """What a store or cache needs from a transport: one call to a Convex function at a time.

    ``HttpTransport`` is the one that talks to deployments; pass another as ``transport=`` to
    ``ConvexStore`` or ``ConvexServerCache`` to answer calls in-process (tests of pure logic)
    or to wrap calls (tracing, metrics). The client owns the transport it is given: closing the
    client closes it.
    """

    @property
    def url(self) -> str:
        """The deployment URL, for messages and ``repr``."""
        ...

    @property
    def closed(self) -> bool:
        """Whether :meth:`aclose` was called."""
        ...

    async def call(
        self,
        kind: Kind,
        path: str,
        args: Mapping[str, Any],
        *,
        timeout: Timeout = DEFAULT,
        idempotent: bool = False,
    ) -> Any:
        """Run the ``kind`` function at ``path`` with ``args``; its value, or raise one of the
        package's errors. ``idempotent`` says the call may be resent after it may have reached
        the server (the dispatcher sets it for reads)."""
        ...

    async def aclose(self) -> None:
        """Release what the transport holds; later calls raise ConfigurationError."""
        ...


class HttpTransport:
    """Async calls to Convex functions over the HTTP API, never blocking the event loop.

    Shareable by many tasks of one event loop; connections (open sockets) are bounded by
    ``max_concurrency``. It owns the call policy (encoding, the timeout, retries, decoding and
    the error mapping); its connection pool owns the sockets.
    """

    def __init__(
        self,
        url: str,
        *,
        admin_key: str | None = None,
        auth_token: str | None = None,
        request_timeout: float | None = 30.0,
        max_concurrency: int = 16,
        retry: RetryPolicy | None = None,
        allow_insecure_http: bool = False,
    ) -> None:
        if max_concurrency < 1:
            raise ConfigurationError("max_concurrency must be at least 1")
        if request_timeout is not None and request_timeout < 0:
            raise ConfigurationError("request_timeout must be >= 0 (0 or None disables it)")
        self.url = validate_url(url, allow_insecure_http=allow_insecure_http)
        admin_key, auth_token = _clean_secret(admin_key), _clean_secret(auth_token)
        self._secret = admin_key or auth_token or ""
        self._auth_kind = "admin" if admin_key else "token" if auth_token else "none"
        self.request_timeout = request_timeout or None
        self.max_concurrency = max_concurrency
        self.retry = retry or RetryPolicy()
        # A limiter of our own for the worker threads that encode and decode big payloads, so
        # this store never takes tokens from the process-wide default pool that FastAPI's sync
        # endpoints share.
        self._threads = anyio.CapacityLimiter(max_concurrency)
        bearer = f"Bearer {auth_token}" if auth_token else None
        self._pool = ConnectionPool(
            self.url,
            authorization=f"Convex {admin_key}" if admin_key else bearer,
            max_connections=max_concurrency,
            threads=self._threads,
            redact=self._redact,
        )
        # The sync protocol's WebSocket, opened by the first live query (see _live.py).
        self._live = SyncClient(
            self.url, admin_key=admin_key, auth_token=auth_token, redact=self._redact
        )

    def __repr__(self) -> str:
        return (
            f"<HttpTransport url={self.url!r} auth={self._auth_kind} "
            f"max_concurrency={self.max_concurrency}>"
        )

    @property
    def closed(self) -> bool:
        """Whether :meth:`aclose` was called."""
        return self._pool.closed

    # -- public calls ----------------------------------------------------------------------

    async def query(self, path: str, args: Mapping[str, Any], *, timeout: Timeout = DEFAULT) -> Any:
        """Run a query function; queries are read-only, so transport failures are retried."""
        return await self.call("query", path, args, timeout=timeout, idempotent=True)

    async def mutation(
        self,
        path: str,
        args: Mapping[str, Any],
        *,
        timeout: Timeout = DEFAULT,
        idempotent: bool = False,
    ) -> Any:
        """Run a mutation; retried after a sent request only when ``idempotent``."""
        return await self.call("mutation", path, args, timeout=timeout, idempotent=idempotent)

    async def action(
        self,
        path: str,
        args: Mapping[str, Any],
        *,
        timeout: Timeout = DEFAULT,
        idempotent: bool = False,
    ) -> Any:
        """Run an action; retried after a sent request only when ``idempotent``."""
        return await self.call("action", path, args, timeout=timeout, idempotent=idempotent)

    async def call(
        self,
        kind: Kind,
        path: str,
        args: Mapping[str, Any],
        *,
        timeout: Timeout = DEFAULT,
        idempotent: bool = False,
    ) -> Any:
        """Encode, send with retries where safe, and decode one function call."""
        if self._pool.closed:
            raise ConfigurationError(CLOSED)
        limit = self.request_timeout if isinstance(timeout, UseDefault) else (timeout or None)
        # Asked once and passed down: on Python 3.11 each asking costs a getpid() syscall.
        loop = asyncio.get_running_loop()
        if limit is None:
            return await self._with_retries(kind, path, args, limit, idempotent, loop)
        # One timer for all calls, not a cancel scope per call (see Deadlines): the deadline
        # cancels this task, and only a cancellation it made becomes RequestTimeoutError.
        timer = deadlines(loop)
        deadline = timer.start(limit, loop)
        try:
            return await self._with_retries(kind, path, args, limit, idempotent, loop)
        except asyncio.CancelledError:
            if not deadline.expired or _cancelled_by_others():
                raise
            raise RequestTimeoutError(
                f"{kind} {path} got no answer from {self.url} within {limit} s "
                "(request_timeout); a mutation may or may not have been applied"
            ) from None
        finally:
            timer.finish(deadline)

    async def aclose(self) -> None:
        """Close pooled connections, and those of calls that timed out or were cancelled;
        later calls raise ConfigurationError.

        Calls still in flight finish (or time out) and close their connection afterwards. Live
        queries end: their ``next`` raises ConfigurationError.
        """
        await self._live.aclose()
        await self._pool.aclose()

    async def subscribe(self, path: str, args: Mapping[str, Any]) -> LiveQuery:
        """Subscribe to the query at ``path`` over the sync protocol's WebSocket (one per
        transport, opened on first use); the LiveQuery yields its newest results."""
        if self._pool.closed:
            raise ConfigurationError(CLOSED)
        return await self._live.subscribe(path, args)

    # -- the call policy -------------------------------------------------------------------

    async def _with_retries(
        self,
        kind: Kind,
        path: str,
        args: Mapping[str, Any],
        limit: float | None,
        idempotent: bool,
        loop: asyncio.AbstractEventLoop,
    ) -> Any:
        started = time.monotonic()
        attempt = 0
        await turn(loop)  # calls started together encode and send over a few loop iterations
        body = await self._encode(path, args)  # once: every attempt sends the same bytes
        while True:
            try:
                return await self._attempt(kind, path, body, limit, loop)
            except DeploymentUnavailable as exc:
                # Resending is safe when the request never left, or when it only reads: a write
                # that may have committed is never replayed over someone else's newer write.
                safe = isinstance(exc, NotSent) or idempotent
                elapsed = time.monotonic() - started
                if (
                    not safe
                    or self._pool.closed
                    or attempt + 1 >= self.retry.attempts
                    or elapsed >= self.retry.max_total
                ):
                    raise DeploymentUnavailable(str(exc)) from exc.__cause__
                delay = self.retry.delay(attempt)
                logger.debug("retrying %s %s after %.3fs: %s", kind, path, delay, exc)
                attempt += 1
                await anyio.sleep(delay)
                await turn(loop)

    async def _attempt(
        self,
        kind: Kind,
        path: str,
        body: bytes,
        limit: float | None,
        loop: asyncio.AbstractEventLoop,
    ) -> Any:
        try:
            status, content = await self._pool.post(kind, body, limit, loop)
        except Broken as exc:
            message = f"connection to {self.url} failed during {kind} {path}: {exc.reason}"
            raise DeploymentUnavailable(self._redact(message)) from None
        if len(content) > _BIG_ANSWER:  # a long listing: decoding it would stall the loop
            return await anyio.to_thread.run_sync(
                self._decode, kind, path, status, content, limiter=self._threads
            )
        return self._decode(kind, path, status, content)

    async def _encode(self, path: str, args: Mapping[str, Any]) -> bytes:
        if _weight(args) < _BIG_REQUEST:
            return _envelope(path, args)
        # A large batch takes tens of milliseconds to encode: a worker thread does it.
        return await anyio.to_thread.run_sync(_envelope, path, args, limiter=self._threads)

    def _decode(self, kind: Kind, path: str, status: int, content: bytes) -> Any:
        try:
            payload = orjson.loads(content)
        except orjson.JSONDecodeError:
            payload = None
        if status in (401, 403):
            raise AuthenticationError(
                f"the deployment at {self.url} rejected the credentials for {kind} {path} "
                f"(HTTP {status}{_code(payload)}). Check CONVEX_ADMIN_KEY / admin_auth_token."
            )
        if status >= 500 or status == 429:  # overloaded or down: worth retrying
            raise DeploymentUnavailable(
                self._redact(f"{kind} {path}: HTTP {status} from {self.url}{_code(payload)}")
            )
        if not isinstance(payload, dict):
            raise ConfigurationError(
                f"{kind} {path}: HTTP {status} from {self.url} is not a Convex API answer; is the "
                "URL the deployment's own (https://<name>.convex.cloud, no path)?"
            )
        if status >= 400:
            detail = f"(HTTP {status}{_code(payload)}): {payload.get('message', '')}"
            raise FunctionError(self._redact(f"{kind} {path} was refused {detail}"), path=path)
        try:
            if payload.get("status") == "success":
                # Convex JSON differs from plain JSON only in objects keyed "$integer", "$bytes"
                # or "$float": an answer without '"$' reads as it is, and converting it would
                # walk every value for nothing (the most of a small answer's decoding).
                if b'"$' not in content:
                    return payload.get("value")
                return json_to_convex(payload.get("value"))
            error_data = json_to_convex(payload["errorData"]) if "errorData" in payload else None
        except (ValueError, TypeError, KeyError) as exc:
            raise FunctionError(
                f"{kind} {path}: cannot decode the deployment's answer: {exc}", path=path
            ) from None
        refused = refused_caller(f"{kind} {path}", error_data)
        if refused is not None:
            raise refused
        raise FunctionError(
            self._redact(f"{kind} {path} failed: {payload.get('errorMessage', 'unknown error')}"),
            path=path,
            error_data=error_data,
        )

    def _redact(self, text: str) -> str:
        return text.replace(self._secret, "<redacted>") if self._secret else text


def _cancelled_by_others() -> bool:
    """After a deadline cancelled the running task: whether something else cancelled it too
    (that cancellation goes on). Takes back the deadline's request (Python 3.11+; before, the
    two cannot be told apart, and the timeout is reported)."""
    task = asyncio.current_task()
    uncancel = getattr(task, "uncancel", None)
    return uncancel is not None and uncancel() > 0


def _clean_secret(secret: str | None) -> str | None:
    """Strip surrounding whitespace (keys read from files or .env end in newlines)."""
    if secret is None:
        return None
    secret = secret.strip()
    # The messages must not echo the secret: they would end up in logs and tracebacks.
    if not secret:
        # Sent as no credentials at all, it would fail later as "function not found".
        raise ConfigurationError("the admin key or auth token is blank")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in secret):
        raise ConfigurationError("the admin key or auth token contains control characters")
    if len(secret) > _MAX_SECRET:
        # Servers refuse headers this long (HTTP 431), which would read as a wrong URL.
        raise ConfigurationError(
            f"the admin key or auth token is {len(secret):,} characters long, more than an "
            f"HTTP header can carry ({_MAX_SECRET:,}); check what was passed"
        )
    if not secret.isascii():
        # No Convex key or JWT has them, and an HTTP header cannot carry them: the call would
        # fail as if the deployment were down (and reads would be retried).
        raise ConfigurationError(
            "the admin key or auth token contains non-ASCII characters; check that it was "
            "copied whole from the dashboard or `npx convex dashboard`"
        )
    return secret


def _envelope(path: str, args: Mapping[str, Any]) -> bytes:
    return (
        b'{"path":'
        + orjson.dumps(path)
        + b',"format":"convex_encoded_json","args":'
        + encode_args(args)
        + b"}"
    )


def _weight(value: Any, budget: int = _BIG_REQUEST) -> int:
    """Roughly what encoding ``value`` costs: values in it, a string counting one per KiB.

    Bounded, since it runs on the loop: the walk stops once the weight reaches ``budget`` (the
    answer is then "big" whatever the rest holds), and a long list is weighed by a sample of
    ``_SAMPLE`` items spread over it (first, last, evenly spaced between: batches repeat one
    shape, and a heavy item late in the list still counts).
    """
    kind = type(value)
    if kind is str:
        return 1 + (len(value) >> 10)
    if kind is list or kind is tuple:
        items: Any = value
    elif kind is dict:
        items = value.values()
    elif isinstance(value, bytes | bytearray):
        return 1 + (len(value) >> 8)  # base64 in Python: slower than strings
    elif isinstance(value, Mapping):
        items = value.values()
    elif isinstance(value, list | tuple):
        items = value
    else:
        return 1
    count = len(value)
    total = 1
    if count <= 2 * _SAMPLE or not isinstance(items, list | tuple):
        for item in items:
            # Strings, most of a request's values, are weighed here: no call for each.
            total += 1 + (len(item) >> 10) if type(item) is str else _weight(item, budget - total)
            if total >= budget:
                break
        return total
    sampled = 0
    step = (count - 1) / (_SAMPLE - 1)
    for n in range(_SAMPLE):
        sampled += _weight(items[round(n * step)], budget)
        if 1 + sampled >= budget:  # these items alone reach it
            return 1 + sampled
    return 1 + count * sampled // _SAMPLE


def _code(payload: Any) -> str:
    return f", {payload['code']}" if isinstance(payload, dict) and "code" in payload else ""


Transport = HttpTransport
"""The first name of ``HttpTransport``, which tests and benchmarks import."""
