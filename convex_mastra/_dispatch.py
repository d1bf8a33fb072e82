"""The dispatcher: every domain's one way to reach the storage and cache handlers.

It sends ``{op, tableName, ...}`` to the handler function, checks ``ok``, maps failures to the
error hierarchy, and loops while the handler answers ``hasMore`` under a hard bound on calls. It
also asks the handler once which operations it supports, so domains can use our faster
operations and fall back to the stock @mastra/convex protocol with the same results.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import anyio

from ._errors import (
    BatchLimitError,
    ConfigurationError,
    ConvexMastraError,
    FunctionError,
    NotFoundError,
    RecordTooLargeError,
    StorageOperationError,
)
from ._live import LiveQuery
from ._transport import AsyncTransport
from ._version import __version__

__all__ = ["LIVE_QUERIES", "MAX_CALLS", "NULL", "PROTOCOL", "Dispatcher", "HandlerInfo", "batches"]

PROTOCOL = 2
"""The handler protocol this SDK needs at least (``info().protocol``): 2 adds error codes."""

logger = logging.getLogger("convex_mastra.dispatch")

MAX_CALLS = 1000
"""Hard upper bound on calls one batched operation may make before it gives up."""

# Our handlers' error codes whose exception is not StorageOperationError itself; the handler
# wrote nothing when it answers one. TOO_LARGE becomes RecordTooLargeError from its details.
_CODE_ERRORS: dict[str, type[StorageOperationError]] = {"NOT_FOUND": NotFoundError}


def refusal(op: str, where: str, table: str | None, answer: Mapping[str, Any]) -> ConvexMastraError:
    """The exception for a handler's ``{ok: false, error, code?, details?}`` answer."""
    message = str(answer.get("error") or "unknown error")
    raw = answer.get("details")
    details = dict(raw) if isinstance(raw, Mapping) else {}
    code = answer.get("code")
    if not isinstance(code, str):
        # Only upstream's handlers send no code; their reading lives with their other fallbacks.
        from ._stock import stock_refusal

        return stock_refusal(op, where, table, message)
    if code == "TOO_LARGE":
        return RecordTooLargeError(str(details["id"]), int(details["size"]), int(details["limit"]))
    error = _CODE_ERRORS.get(code, StorageOperationError)
    return error(
        f"{op} on {where} failed: {message}", op=op, table=table, code=code, details=details
    )


LIVE_QUERIES: dict[str, tuple[str, str]] = {
    "messages": ("mastra/live:messages", "mastra/public:liveMessages"),
    "workflowRun": ("mastra/live:workflowRun", "mastra/public:liveWorkflowRun"),
    "cacheList": ("mastra/live:cacheList", "mastra/public:liveCacheList"),
}
"""Live queries by name: (the internal function, the public one for allow-listed JWTs)."""

T = TypeVar("T")


class _Null:
    def __repr__(self) -> str:
        return "NULL"


NULL: Any = _Null()
"""A request field sent as JSON null (fields given as None are left out of a request)."""


def batches(
    items: Iterable[T], *, max_items: int, max_bytes: int, size: Callable[[T], int]
) -> Iterator[list[T]]:
    """Consecutive runs of ``items``, each within one call's item and byte bounds.

    A single item larger than ``max_bytes`` still goes alone (the handler judges it).
    """
    batch: list[T] = []
    total = 0
    for item in items:
        item_size = size(item)
        if batch and (len(batch) >= max_items or total + item_size > max_bytes):
            yield batch
            batch, total = [], 0
        batch.append(item)
        total += item_size
    if batch:
        yield batch


@dataclass(frozen=True)
class HandlerInfo:
    """What the deployment's handler is and which operations it supports."""

    name: str
    version: str | None
    protocol: int
    ops: frozenset[str] = field(default_factory=frozenset)
    ranked: frozenset[tuple[str, str, tuple[str, ...]]] = field(default_factory=frozenset)
    """(table, index, equality fields) of the listings ``pageByRank`` serves."""
    read_ops: frozenset[str] = frozenset({"info"})
    """Ops that only read: sent again after an answer was lost, unlike writes."""
    limits: Mapping[str, int] = field(default_factory=dict, hash=False)
    """The handler's per-call bounds by name (``pageItems``, ``loadManyIds``...): see
    :meth:`limit`."""
    counted: Mapping[str, frozenset[frozenset[str]]] = field(default_factory=dict, hash=False)
    """Table -> the sets of equality fields whose row counts the handler keeps."""

    @property
    def is_stock(self) -> bool:
        """True for the stock @mastra/convex handler (no ``info`` op, upstream ops only)."""
        return self.name == "@mastra/convex"

    def supports(self, op: str) -> bool:
        """Whether the handler implements ``op``."""
        return op in self.ops

    def limit(self, name: str) -> int:
        """The handler's bound ``name``; a handler that does not declare it is too old."""
        try:
            return self.limits[name]
        except KeyError:
            raise FunctionError(
                f"{self.name} {self.version} does not declare its limit {name!r}; redeploy "
                f"convex/mastra/ from convex-mastra {__version__} (handler protocol {PROTOCOL})."
            ) from None

    @property
    def load_many(self) -> int:
        """Most ids one ``loadMany`` (and so ``deleteMany``) call takes."""
        return self.limit("loadManyIds")

    def counts(self, table: str, fields: Iterable[str]) -> bool:
        """Whether the handler keeps the row count of ``table`` rows equal on ``fields``."""
        return frozenset(fields) in self.counted.get(table, frozenset())


@dataclass(frozen=True)
class Reply:
    """One handler answer: its ``result`` and whether the handler has more to do."""

    result: Any
    has_more: bool
    answer: Mapping[str, Any] = field(default_factory=dict)
    """The whole answer, for op-specific fields (listFromTo's ``next`` and ``to``)."""


class Dispatcher:
    """Sends operations to one handler function (``mastra/storage:handle`` by default)."""

    def __init__(
        self, transport: AsyncTransport, function: str, *, probe_table: str | None
    ) -> None:
        self._transport = transport
        self.function = function
        self._probe_table = probe_table
        self._info: HandlerInfo | None = None
        self._probing: anyio.Event | None = None
        self._probe_error: BaseException | None = None

    async def send(self, op: str, table: str | None, /, **fields: Any) -> Reply:
        """One call to the handler; raises StorageOperationError when it answers ``ok: false``."""
        answer = await self._answer(op, table, fields)
        return Reply(
            result=answer.get("result"), has_more=bool(answer.get("hasMore")), answer=answer
        )

    async def call(self, op: str, table: str | None, /, **fields: Any) -> Any:
        """One call; the handler's ``result``."""
        return (await self._answer(op, table, fields)).get("result")

    async def _answer(
        self, op: str, table: str | None, fields: dict[str, Any]
    ) -> Mapping[str, Any]:
        request: dict[str, Any] = {
            "op": op,
            **{k: None if v is NULL else v for k, v in fields.items() if v is not None},
        }
        if table is not None:
            request["tableName"] = table
        # Only reads are resent after a request may have reached the server: replaying a write
        # that did commit could overwrite a newer write made by someone else in between.
        idempotent = op == "info" or op in (self._info or await self.info()).read_ops
        answer = await self._transport.call(
            "mutation", self.function, request, idempotent=idempotent
        )
        if not isinstance(answer, Mapping):
            raise FunctionError(
                f"{self.function} answered {op} with {type(answer).__name__}, not a response "
                "object; is this function a Mastra storage or cache handler?",
                path=self.function,
            )
        if not answer.get("ok"):
            raise refusal(op, table or self.function, table, answer)
        return answer

    async def subscribe(self, query: str, args: Mapping[str, Any]) -> LiveQuery:
        """Subscribe to the live query ``query`` (a name in LIVE_QUERIES): the internal
        function, or the public one when the store calls ``mastra/public:*`` with a JWT."""
        subscribe = getattr(self._transport, "subscribe", None)
        if subscribe is None:
            raise ConfigurationError(
                f"{type(self._transport).__name__} has no live queries; they need the "
                "HttpTransport a store builds from its URL and key"
            )
        internal, public = LIVE_QUERIES[query]
        path = public if self.function.startswith("mastra/public:") else internal
        live: LiveQuery = await subscribe(path, args)
        return live

    async def drain(
        self, op: str, table: str | None, /, *, max_calls: int = MAX_CALLS, **fields: Any
    ) -> list[Any]:
        """Call until the handler stops answering ``hasMore``; every call's result, in order.

        Raises BatchLimitError after ``max_calls`` calls. Each call is its own transaction that
        leaves the data consistent, so calling the operation again continues the work.
        """
        results: list[Any] = []
        for _ in range(max_calls):
            reply = await self.send(op, table, **fields)
            results.append(reply.result)
            if not reply.has_more:
                return results
        raise BatchLimitError(
            f"{op} on {table or self.function} still had more to do after {max_calls} calls. "
            "Every call left the data consistent; call the operation again to continue."
        )

    async def info(self) -> HandlerInfo:
        """What the handler is; asked once per dispatcher, then cached.

        Concurrent first callers share one probe and its outcome (single flight), so a slow or
        failing deployment costs each of them one timeout, not one per caller ahead of them.
        """
        while self._info is None:
            if self._probing is not None:
                probing = self._probing
                await probing.wait()
                if self._info is None and self._probe_error is not None:
                    raise self._probe_error
                continue
            self._probing = anyio.Event()
            try:
                self._info = await self._probe()
                self._probe_error = None
            except BaseException as exc:
                self._probe_error = exc
                raise
            finally:
                probing, self._probing = self._probing, None
                probing.set()
        return self._info

    async def _probe(self) -> HandlerInfo:
        try:
            result = await self.call("info", self._probe_table)
        except StorageOperationError as exc:
            # Only upstream's handler lacks info; it says so in text, with no code.
            if exc.code is not None or "unsupported operation info" not in str(exc).lower():
                raise
            if self._probe_table is not None:  # a storage handler: listings are capped
                logger.warning(
                    "%s is the stock @mastra/convex handler (a public mutation; lists read at "
                    "most 10,000 rows per call). Deploy convex-mastra's functions for admin-only "
                    "access, indexed paging and exact totals.",
                    self.function,
                )
            from ._stock import STOCK_HANDLER

            return STOCK_HANDLER
        except FunctionError as exc:
            raise FunctionError(
                f"cannot use {self.function}: {exc}. Is the function deployed? Run "
                "`python -m convex_mastra doctor` to check the deployment.",
                path=self.function,
                error_data=exc.error_data,
            ) from exc
        if not isinstance(result, Mapping):
            raise FunctionError(
                f"{self.function} answered info with {type(result).__name__}; it is not a Mastra "
                "storage or cache handler",
                path=self.function,
            )
        protocol = int(result.get("protocol", 0))
        if protocol < PROTOCOL:
            raise FunctionError(
                f"{self.function} is {result.get('name')} {result.get('version')}, speaking "
                f"handler protocol {protocol}; convex-mastra {__version__} needs protocol "
                f"{PROTOCOL} or later. Redeploy convex/mastra/ from this version "
                "(`python -m convex_mastra functions <your project>/convex`).",
                path=self.function,
            )
        return HandlerInfo(
            name=str(result.get("name", "unknown")),
            version=str(result["version"]) if result.get("version") else None,
            protocol=protocol,
            ops=frozenset(str(op) for op in result.get("ops", [])),
            ranked=frozenset(
                (str(table), str(index), tuple(str(name) for name in eq))
                for table, indexes in (result.get("ranked") or {}).items()
                for index, eq in indexes.items()
            ),
            read_ops=frozenset(str(op) for op in result.get("readOps", [])) | {"info"},
            limits={str(k): int(v) for k, v in (result.get("limits") or {}).items()},
            counted={
                str(table): frozenset(frozenset(str(f) for f in group) for group in groups)
                for table, groups in (result.get("counted") or {}).items()
            },
        )
