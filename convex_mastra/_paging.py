"""Listing rows by index, shared by every domain.

A domain describes what it lists as an :class:`IndexQuery` (an index, equality on its leading
fields, an optional range on the next one, an optional JSON match) and asks :class:`Rows` for a
count, a window at an offset, or an iteration. ``Rows`` works against both handlers:

- ours pages on the server. Where the handler keeps a rank tree (a thread's messages, a
  resource's threads) one call answers a window at any offset and its total, reading one tree
  node per level plus the window. Elsewhere a window at offset ``o`` of ``n`` rows reads
  ``o + n`` rows from the nearer end of the index (so the first and the last page of any size
  cost about ``n``); totals come from transactional counters when no range or match applies,
  else from counting scans. Only the window travels back.
- the stock @mastra/convex handler has neither, so the same calls fetch every matching row
  (upstream caps that at 10,000) and page in memory, as upstream does.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from ._dispatch import MAX_CALLS, Dispatcher
from ._errors import BatchLimitError, StorageOperationError, ValidationError
from ._models import Page

__all__ = ["IndexQuery", "Match", "Rows", "check_paging"]

logger = logging.getLogger("convex_mastra.paging")

T = TypeVar("T")


@dataclass(frozen=True)
class Match:
    """Scalar equality on keys of a stored JSON object (``field``, then down ``path``)."""

    field: str
    equals: Mapping[str, str | int | float | bool | None]
    path: tuple[str, ...] = ()
    view: str | None = None
    """``"run"``: compare with {status, threadId} of the workflow snapshot found there
    (``workflows.run_view``), not with the object itself."""

    def wire(self) -> dict[str, Any]:
        # Pairs, not an object: keys such as "$schema" cannot be Convex field names.
        pairs = [[key, value] for key, value in self.equals.items()]
        out = {"field": self.field, "path": list(self.path), "equals": pairs}
        if self.view is not None:
            out["view"] = self.view
        return out


@dataclass(frozen=True)
class IndexQuery:
    """Rows of ``table`` read through ``index``, ordered by ``sort_field`` then creation time."""

    table: str
    index: str
    sort_field: str
    eq: tuple[tuple[str, Any], ...] = ()
    range: Mapping[str, Any] | None = None
    match: Match | None = None
    filters: tuple[tuple[str, Any], ...] = ()
    """Equality on fields outside the index, checked by the handler as it reads (never counted)."""

    def args(self, *, descending: bool) -> dict[str, Any]:
        """The index read as the handler's pageByIndex and scan ops take it."""
        out: dict[str, Any] = {
            "order": "desc" if descending else "asc",
            "index": self.index,
            "eq": [{"field": name, "value": value} for name, value in self.eq],
        }
        if self.range:
            out["range"] = dict(self.range)
        if self.filters:
            out["filters"] = [{"field": name, "value": value} for name, value in self.filters]
        return out


def check_paging(page: int, per_page: int | None) -> None:
    """Raise ValidationError for a page or page size that cannot be listed."""
    if isinstance(page, bool) or not isinstance(page, int) or page < 0:
        raise ValidationError(f"page must be an integer >= 0, not {page!r}", field="page")
    if per_page is not None and (
        isinstance(per_page, bool) or not isinstance(per_page, int) or per_page < 0
    ):
        raise ValidationError(
            f"per_page must be an integer >= 0 or None (all), not {per_page!r}", field="per_page"
        )


def sort_key(sort_field: str) -> Any:
    """Index order: missing values first (as Convex sorts undefined), then creation time."""

    def key(row: Mapping[str, Any]) -> tuple[int, Any, float]:
        value = row.get(sort_field)
        return (0 if value is None else 1, "" if value is None else value, row["_creationTime"])

    return key


class Rows:
    """Counts, windows and iterations over an IndexQuery, read through indexes on the server.

    ``StockRows`` (``_stock.py``) answers the same on upstream's handler from one fetch.
    """

    def __init__(self, dispatcher: Dispatcher) -> None:
        self._dispatcher = dispatcher
        self._warned_stale: set[str] = set()  # tables already named in a warning
        self._warned_unranked: set[str] = set()

    async def _limit(self, name: str) -> int:
        """The handler's bound ``name``: ``pageItems`` (rows one call returns), ``scanRows``
        (rows one pageByIndex or scan call reads), ``queryTableRows``."""
        return (await self._dispatcher.info()).limit(name)

    async def count(self, query: IndexQuery) -> int:
        """How many rows ``query`` matches."""
        if query.range and await self._rankable(query):
            ranked = await self._by_rank(query, offset=0, limit=0, descending=False)
            if ranked is not None:
                return ranked[1]
        counted = (await self._dispatcher.info()).counts(query.table, (f for f, _ in query.eq))
        if counted and not query.range and query.match is None and not query.filters:
            try:
                return int(await self._dispatcher.call("count", query.table, **_count_args(query)))
            except StorageOperationError as exc:
                if exc.code != "STALE_COUNTERS":
                    raise
                if query.table not in self._warned_stale:
                    self._warned_stale.add(query.table)
                    logger.warning(
                        "counters of %s are stale (rows written before counting started); "
                        "counting by scanning. store.rebuild_counters() makes totals cheap again.",
                        query.table,
                    )
        total = 0
        async for reply in self._scans(query, descending=False, skip=0, take=0):
            total += int(reply["matched"])
        return total

    async def page(
        self,
        query: IndexQuery,
        convert: Callable[[dict[str, Any]], T],
        *,
        page: int,
        per_page: int | None,
        descending: bool,
    ) -> Page[T]:
        """Page ``page`` of ``query`` (``per_page=None``: every row), rows converted to models."""
        check_paging(page, per_page)
        offset = page * per_page if per_page is not None else 0
        rows, total = await self.slice(query, offset=offset, limit=per_page, descending=descending)
        return Page[T](
            items=[convert(row) for row in rows],
            total=total,
            page=page,
            per_page=per_page,
            has_more=per_page is not None and offset + per_page < total,
        )

    async def slice(
        self, query: IndexQuery, *, offset: int, limit: int | None, descending: bool
    ) -> tuple[list[dict[str, Any]], int]:
        """Rows ``offset .. offset + limit`` (as :meth:`window`) and the total they come from.

        Counts, then reads only the window (or both from a rank tree in one call).
        """
        if limit is not None and await self._rankable(query):
            ranked = await self._by_rank(query, offset=offset, limit=limit, descending=descending)
            if ranked is not None:
                return ranked
        total = await self.count(query)
        rows = await self.window(
            query, offset=offset, limit=limit, descending=descending, total=total
        )
        return rows, total

    async def peek(
        self, query: IndexQuery, *, offset: int, limit: int | None, descending: bool
    ) -> tuple[list[dict[str, Any]], bool]:
        """Rows ``offset .. offset + limit`` and whether more follow, without counting: the
        window and one row more are read from the near end of the index."""
        if limit is not None and await self._rankable(query):
            ranked = await self._by_rank(query, offset=offset, limit=limit, descending=descending)
            if ranked is not None:
                rows, total = ranked
                return rows, offset + limit < total
        if limit is None:  # to the end: whatever _read finds is all of it
            return await self._read(
                query, offset=offset, limit=sys.maxsize, descending=descending
            ), False
        if limit == 0:
            return [], False
        rows = await self._read(query, offset=offset, limit=limit + 1, descending=descending)
        return rows[:limit], len(rows) > limit

    async def slice_all(
        self, queries: list[IndexQuery], *, offset: int, limit: int | None, descending: bool
    ) -> tuple[list[dict[str, Any]], int]:
        """:meth:`slice` of the union of disjoint queries on one sort field (several threads,
        several statuses): the window can only hold each query's first ``offset + limit`` rows
        in listing order, so those are read and merged."""
        if len(queries) == 1:
            return await self.slice(queries[0], offset=offset, limit=limit, descending=descending)
        need = None if limit is None else offset + limit
        merged: list[dict[str, Any]] = []
        total = 0
        for query in queries:
            rows, found = await self.slice(query, offset=0, limit=need, descending=descending)
            merged += rows
            total += found
        merged.sort(key=sort_key(queries[0].sort_field), reverse=descending)
        return merged[offset:need], total

    async def peek_all(
        self, queries: list[IndexQuery], *, offset: int, limit: int | None, descending: bool
    ) -> tuple[list[dict[str, Any]], bool]:
        """:meth:`peek` of the union of disjoint queries, as :meth:`slice_all` merges them."""
        if len(queries) == 1:
            return await self.peek(queries[0], offset=offset, limit=limit, descending=descending)
        need = None if limit is None else offset + limit
        merged: list[dict[str, Any]] = []
        more = False
        for query in queries:
            rows, beyond = await self.peek(query, offset=0, limit=need, descending=descending)
            merged += rows
            more = more or beyond  # this query alone has more than the window's end
        merged.sort(key=sort_key(queries[0].sort_field), reverse=descending)
        return merged[offset:need], more or (need is not None and len(merged) > need)

    async def window(
        self, query: IndexQuery, *, offset: int, limit: int | None, descending: bool, total: int
    ) -> list[dict[str, Any]]:
        """Rows ``offset .. offset + limit`` in index order (reversed when ``descending``).

        ``total`` (from :meth:`count`) picks the nearer end of the index to read from.
        """
        if limit == 0 or offset >= total:
            return []
        end = total if limit is None else min(total, offset + limit)
        from_far_end = total - end < offset
        if from_far_end:
            # The same rows, counted from the other end of the index, then put back in order.
            rows = await self._read(
                query, offset=total - end, limit=end - offset, descending=not descending
            )
            rows.reverse()
            return rows
        return await self._read(query, offset=offset, limit=end - offset, descending=descending)

    async def iterate(
        self, query: IndexQuery, *, descending: bool, page_size: int
    ) -> AsyncIterator[list[dict[str, Any]]]:
        """Every row of ``query`` in pages of at most ``page_size``, holding one page at a time."""
        if query.match is not None:
            take = await self._limit("pageItems")
            async for reply in self._scans(query, descending=descending, skip=0, take=take):
                if reply["page"]:
                    yield list(reply["page"])
            return
        cursor: str | None = None
        while True:
            reply = await self._dispatcher.call(
                "pageByIndex",
                query.table,
                **query.args(descending=descending),
                numItems=min(page_size, await self._limit("pageItems")),
                cursor=cursor,
            )
            if reply["page"]:
                yield list(reply["page"])
            if reply["isDone"]:
                return
            cursor = reply["continueCursor"]

    async def _rankable(self, query: IndexQuery) -> bool:
        info = await self._dispatcher.info()
        return (
            query.match is None
            and not query.filters
            and (query.table, query.index, tuple(name for name, _ in query.eq)) in info.ranked
        )

    async def _by_rank(
        self, query: IndexQuery, *, offset: int, limit: int, descending: bool
    ) -> tuple[list[dict[str, Any]], int] | None:
        """The window and total from the handler's rank tree; None where it keeps none."""
        reply = await self._dispatcher.call(
            "pageByRank",
            query.table,
            **query.args(descending=descending),
            offset=offset,
            numItems=min(limit, await self._limit("pageItems")),
        )
        if not reply["ranked"]:
            if query.table not in self._warned_unranked:
                self._warned_unranked.add(query.table)
                logger.warning(
                    "rank trees of %s are incomplete (counters stale, or not built since an "
                    "upgrade); pages deep in a listing read the rows before them. "
                    "store.rebuild_counters() builds them.",
                    query.table,
                )
            return None
        total = int(reply["total"])
        rows = list(reply["page"])
        want = max(0, min(limit, total - offset))
        if len(rows) < want and not reply["isDone"]:
            # Cut short by the page or byte bound: read on from where the handler stopped, with
            # the range its cursor belongs to.
            rows += await self._read(
                dataclasses.replace(query, range=reply["range"]),
                offset=int(reply["ties"]) - int(reply["skipped"]),
                limit=want - len(rows),
                descending=descending,
                cursor=reply["continueCursor"],
            )
        return rows, total

    async def _read(
        self,
        query: IndexQuery,
        *,
        offset: int,
        limit: int,
        descending: bool,
        cursor: str | None = None,
    ) -> list[dict[str, Any]]:
        page_items, scan_rows = await self._limit("pageItems"), await self._limit("scanRows")
        if query.match is not None:
            rows: list[dict[str, Any]] = []
            async for reply in self._scans(
                query, descending=descending, skip=offset, take=page_items
            ):
                rows.extend(reply["page"])
                if len(rows) >= limit:
                    return rows[:limit]
            return rows
        rows = []
        skip = offset
        for _ in range(MAX_CALLS):
            want = min(limit - len(rows), page_items)
            if skip > scan_rows - want:
                # Too far to reach and read in one call: skip only, keep the cursor.
                step, want = min(skip, scan_rows), 0
            else:
                step = skip
            reply = await self._dispatcher.call(
                "pageByIndex",
                query.table,
                **query.args(descending=descending),
                skip=step,
                numItems=want,
                cursor=cursor,
            )
            skip -= int(reply.get("skipped", 0))
            rows.extend(reply["page"])
            if reply["isDone"] or len(rows) >= limit:
                return rows
            cursor = reply["continueCursor"]
        raise _too_many(query)

    async def _scans(
        self, query: IndexQuery, *, descending: bool, skip: int, take: int
    ) -> AsyncIterator[Mapping[str, Any]]:
        """Scan batches over the whole query; each reply's window follows on from the last.

        A batch that returns rows reads at most ``take`` rows, so none of its matches can fall
        outside the window; a counting scan (``take=0``) reads the most a call may.
        """
        if take == 0:
            batch = await self._limit("scanRows")
        else:
            batch = min(take, await self._limit("pageItems"))
        cursor: str | None = None
        for _ in range(MAX_CALLS):
            reply = await self._dispatcher.call(
                "scan",
                query.table,
                **query.args(descending=descending),
                numItems=batch,
                cursor=cursor,
                match=query.match.wire() if query.match else None,
                skip=skip,
                take=take,
            )
            skip = max(0, skip - int(reply["matched"]))
            yield reply
            if reply["isDone"]:
                return
            cursor = reply["continueCursor"]
        raise _too_many(query)


def _count_args(query: IndexQuery) -> dict[str, Any]:
    return {"eq": [{"field": name, "value": value} for name, value in query.eq]}


def _too_many(query: IndexQuery) -> BatchLimitError:
    return BatchLimitError(
        f"listing {query.table} by {query.index} needed more than {MAX_CALLS} calls; narrow the "
        "query or page through it with a smaller window"
    )
