"""Upstream's stock @mastra/convex handler: the same operations, with what its protocol allows.

Every fallback for the stock handlers lives here: the domains', the listings' and the cache's.
So do what upstream's handlers are (``STOCK_HANDLER``, since they cannot say) and the reading of
their answers, which carry no error code (``stock_refusal``). Results are the
same as on convex-mastra's handler except where a capability is missing (``capabilities`` is
empty): merges that Convex cannot store are written back whole (not atomically), saves and
deletes touch each thread in a call of its own, and no ``lastMessageAt`` is kept.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from datetime import timedelta
from typing import Any, ClassVar

from ._cache import CacheProtocol, range_items
from ._codec import convex_value_problem, decode_json, js_numbers, json_arg, parse_time, to_iso
from ._dispatch import HandlerInfo
from ._domains._base import in_chunks, now_iso, strip_system
from ._domains.documents import encode_record
from ._domains.messages import Include, chunks, thread_query
from ._domains.observational import TABLE as OBSERVATIONAL_MEMORY
from ._domains.resources import resource_from_row, resource_record
from ._domains.schedules import TABLE as SCHEDULES
from ._domains.scorers import score_record
from ._domains.threads import thread_from_row, thread_record
from ._domains.workflows import TABLE as WORKFLOWS
from ._domains.workflows import run_view, snapshot_from_stored
from ._errors import (
    ConfigurationError,
    FunctionError,
    NotFoundError,
    StorageOperationError,
    ValidationError,
)
from ._handlers import CONFLICT, MESSAGES, RESOURCES, THREADS, Conflict, Handler
from ._models import Score
from ._paging import IndexQuery, Match, Rows, sort_key

__all__ = [
    "STOCK_HANDLER",
    "StockCacheProtocol",
    "StockHandler",
    "StockRows",
    "stock_refusal",
]

# Named as before the move here: configuration.md documents it.
logger = logging.getLogger("convex_mastra.documents")
paging_logger = logging.getLogger("convex_mastra.paging")

# What upstream's handlers are, declared here since they cannot say: no info op, no codes.
STOCK_HANDLER = HandlerInfo(
    name="@mastra/convex",
    version=None,
    protocol=0,
    ops=frozenset(
        {
            "insert",
            "batchInsert",
            "load",
            "loadMany",
            "queryTable",
            "patch",
            "deleteMany",
            "clearTable",
            "dropTable",
            "updateThread",
            "updateResource",
            "mergeWorkflowStepResult",
            "mergeWorkflowState",
        }
    ),
    # Storage and cache reads alike: the cache's reclaim expired rows, which is safe to repeat.
    read_ops=frozenset({"load", "loadMany", "queryTable", "get", "listLength", "listFromTo"}),
    limits={
        # Upstream's loadMany refuses more; its deleteMany has no bound of its own, but a
        # failed call then leaves at most this many ids unaccounted for.
        "loadManyIds": 10,
        "queryTableRows": 10_000,
        # Not upstream's (it has none), but what one batchInsert may carry within Convex's
        # per-transaction limits.
        "batchItems": 1000,
        "batchBytes": 8 * 1024 * 1024,
    },
)


def stock_refusal(op: str, where: str, table: str | None, message: str) -> StorageOperationError:
    # The stock @mastra/convex handler sends no code; its messages are all there is to read.
    error = NotFoundError if "not found" in message.lower() else StorageOperationError
    return error(f"{op} on {where} failed: {message}", op=op, table=table)


_ONE_MS = timedelta(milliseconds=1)


def stock_mergeable(merged: Mapping[str, Any]) -> bool:
    """Whether upstream's handler can store this merged metadata (it stores it verbatim)."""
    return not isinstance(json_arg(dict(merged), "metadata"), str)


class StockRows(Rows):
    """Listings on upstream's handler: one queryTable call fetches every matching row (at most
    10,000, with a warning), then counts, windows and pages are cut in memory."""

    async def count(self, query: IndexQuery) -> int:
        """How many rows ``query`` matches."""
        return len(await self._stock_rows(query))

    async def slice(
        self, query: IndexQuery, *, offset: int, limit: int | None, descending: bool
    ) -> tuple[list[dict[str, Any]], int]:
        """The window and its total, both from one fetch of every matching row."""
        rows = await self._stock_sorted(query, descending)
        return rows[offset : None if limit is None else offset + limit], len(rows)

    async def peek(
        self, query: IndexQuery, *, offset: int, limit: int | None, descending: bool
    ) -> tuple[list[dict[str, Any]], bool]:
        """The window and whether more rows follow, from the same one fetch."""
        rows, total = await self.slice(query, offset=offset, limit=limit, descending=descending)
        return rows, limit is not None and offset + limit < total

    async def window(
        self, query: IndexQuery, *, offset: int, limit: int | None, descending: bool, total: int
    ) -> list[dict[str, Any]]:
        """Rows ``offset .. offset + limit`` in index order (reversed when ``descending``)."""
        if limit == 0 or offset >= total:
            return []
        rows = await self._stock_sorted(query, descending)
        return rows[offset : None if limit is None else offset + limit]

    async def iterate(
        self, query: IndexQuery, *, descending: bool, page_size: int
    ) -> AsyncIterator[list[dict[str, Any]]]:
        """Every row of ``query`` in pages of ``page_size``, from one fetch."""
        rows = await self._stock_sorted(query, descending)
        for start in range(0, len(rows), page_size):
            yield rows[start : start + page_size]

    async def _stock_sorted(self, query: IndexQuery, descending: bool) -> list[dict[str, Any]]:
        rows = await self._stock_rows(query)
        return sorted(rows, key=sort_key(query.sort_field), reverse=descending)

    async def _stock_rows(self, query: IndexQuery) -> list[dict[str, Any]]:
        filters = [{"field": name, "value": value} for name, value in (*query.eq, *query.filters)]
        rows: Sequence[dict[str, Any]] = await self._dispatcher.call(
            "queryTable", query.table, filters=filters
        )
        cap = await self._limit("queryTableRows")
        if len(rows) >= cap:
            paging_logger.warning(
                "the stock @mastra/convex handler returned its cap of %d rows of %s; listings "
                "and totals may be missing rows. Deploy convex-mastra's functions for indexed "
                "paging.",
                cap,
                query.table,
            )
        out = []
        for row in rows:
            value = row.get(query.sort_field)
            if query.range and not _in_range(value, query.range):
                continue
            if query.match is not None and not _matches(row, query.match):
                continue
            out.append(row)
        return out


def _in_range(value: Any, bounds: Mapping[str, Any]) -> bool:
    if value is None:
        return False
    checks = {
        "gt": lambda bound: value > bound,
        "gte": lambda bound: value >= bound,
        "lt": lambda bound: value < bound,
        "lte": lambda bound: value <= bound,
    }
    return all(checks[name](bound) for name, bound in bounds.items())


def _matches(row: Mapping[str, Any], match: Match) -> bool:
    value = decode_json(row.get(match.field))
    for part in match.path:
        value = decode_json(value.get(part)) if isinstance(value, dict) else None
    if not isinstance(value, dict):
        return False
    if match.view == "run":
        value = run_view(value)
    return all(
        key in value and _same_scalar(value[key], expected)
        for key, expected in match.equals.items()
    )


def _same_scalar(stored: Any, expected: Any) -> bool:
    # JavaScript's ===: numbers equal across int and float, but never a bool or a string.
    if isinstance(stored, bool) or isinstance(expected, bool):
        return stored is expected
    return bool(stored == expected) and isinstance(stored, str) == isinstance(expected, str)


class StockHandler(Handler):
    """Memory operations on upstream's handler, which has no ops of convex-mastra's own."""

    capabilities: ClassVar[frozenset[str]] = frozenset()
    rows_class: ClassVar[type[Rows]] = StockRows

    # -- messages ------------------------------------------------------------------------------

    async def save_messages(self, rows: list[dict[str, Any]], moved_from: list[str]) -> None:
        """Upstream's batchInsert takes messages for any thread id. Touching each thread first
        (patch answers false for a missing one) refuses the batch before a message is written;
        the threads messages left are touched after."""
        missing = await self._touch(row["thread_id"] for row in rows)
        if missing:
            raise NotFoundError(
                f"thread {missing[0]!r} not found; no message of this batch was written",
                op="batchInsert",
                table=THREADS,
            )
        for batch in chunks(rows, self.info):
            await self._dispatcher.call("batchInsert", MESSAGES, records=batch)
        await self._touch(moved_from)

    async def delete_messages(self, ids: list[str]) -> None:
        """Upstream's deleteMany leaves threads alone: read which threads lose messages first,
        then move their ``updatedAt``."""
        threads: list[str] = []

        async def delete(batch: list[str]) -> None:
            rows = await self._dispatcher.call("loadMany", MESSAGES, ids=batch)
            threads.extend(row["thread_id"] for row in rows or ())
            await self._dispatcher.call("deleteMany", MESSAGES, ids=batch)

        await in_chunks(ids, self.info.load_many, "messages.delete", delete)
        await self._touch(threads)

    async def pop_message(self, thread_id: str) -> dict[str, Any] | None:
        """Upstream has no such op: the newest row is read, then deleted, in two calls, so two
        concurrent pops can return the same message (``atomic_message_pop`` is not declared)."""
        query = thread_query(thread_id)
        rows, _ = await self.rows.peek(query, offset=0, limit=1, descending=True)
        if not rows:
            return None
        await self.delete_messages([rows[0]["id"]])
        return rows[0]

    async def message_windows(
        self, includes: list[Include], resource_id: str | None
    ) -> list[dict[str, Any]]:
        """Read each target's thread and cut the window in memory."""
        out: list[dict[str, Any]] = []
        for item in includes:
            targets = await self._dispatcher.call("loadMany", MESSAGES, ids=[item.id])
            if not targets or (
                resource_id is not None and targets[0].get("resourceId") != resource_id
            ):
                continue
            query = thread_query(targets[0]["thread_id"])
            thread, _ = await self.rows.slice(query, offset=0, limit=None, descending=False)
            thread = [
                row for row in thread if resource_id is None or row.get("resourceId") == resource_id
            ]
            at = next(i for i, row in enumerate(thread) if row["id"] == item.id)
            out += thread[
                max(0, at - item.with_previous_messages) : at + item.with_next_messages + 1
            ]
        return out

    async def _touch(self, thread_ids: Iterable[str]) -> list[str]:
        """Move ``updatedAt`` of these threads to now; the ids of those that do not exist."""
        now = now_iso()
        missing = []
        for thread_id in dict.fromkeys(thread_ids):
            record = {"updatedAt": now}
            if not await self._dispatcher.call("patch", THREADS, id=thread_id, record=record):
                missing.append(thread_id)
        return missing

    # -- threads -------------------------------------------------------------------------------

    async def update_thread(
        self,
        thread_id: str,
        title: str | None,
        metadata: Mapping[str, Any] | None,
        encoded: Any,
    ) -> Mapping[str, Any] | None:
        """Upstream blanks an omitted title and stores merged metadata verbatim, so send the
        current title, and when the merge holds keys Convex refuses, write the merged thread
        back whole with its metadata as JSON text (not atomic, unlike ours)."""
        row = await self._dispatcher.call("load", THREADS, keys={"id": thread_id})
        if not row:
            return None
        # As our handler does: never at or before the stored value (say, one set in the future).
        updated_at = to_iso(max(parse_time(now_iso()), parse_time(row["updatedAt"]) + _ONE_MS))
        merged = {**(decode_json(row.get("metadata")) or {}), **(metadata or {})}
        if stock_mergeable(merged):
            stored: Mapping[str, Any] = await self._dispatcher.call(
                "updateThread",
                THREADS,
                id=thread_id,
                title=row.get("title", "") if title is None else title,
                metadata=dict(metadata) if metadata is not None else None,
                updatedAt=updated_at,
            )
            return stored
        thread = thread_from_row(row).model_copy(
            update={"metadata": merged, "updated_at": parse_time(updated_at)}
            | ({"title": title} if title is not None else {})
        )
        await self._dispatcher.call("insert", THREADS, record=thread_record(thread))
        return {**row, **thread_record(thread)}

    async def replace_thread_metadata(
        self,
        thread_id: str,
        expected: Mapping[str, Any],
        metadata: Mapping[str, Any],
        encoded: Any,
    ) -> Mapping[str, Any] | Conflict | None:
        """Upstream has no conditional write: the thread is read, compared and written back
        whole, two calls apart. Within one store, ``Threads.update_metadata`` serializes the
        callers per thread; writers in other processes can still interleave."""
        row = await self._dispatcher.call("load", THREADS, keys={"id": thread_id})
        if not row:
            return None
        if (decode_json(row.get("metadata")) or {}) != expected:
            return CONFLICT
        updated_at = to_iso(max(parse_time(now_iso()), parse_time(row["updatedAt"]) + _ONE_MS))
        thread = thread_from_row(row).model_copy(
            update={"metadata": dict(metadata), "updated_at": parse_time(updated_at)}
        )
        record = thread_record(thread)
        await self._dispatcher.call("insert", THREADS, record=record)
        return {**row, **record}

    async def delete_thread(self, thread_id: str) -> None:
        """Messages first (as messages.delete deletes them), then the thread."""
        query = thread_query(thread_id)
        ids = [
            row["id"]
            async for rows in self.rows.iterate(query, descending=False, page_size=100)
            for row in rows
        ]
        await self.delete_messages(ids)
        await self._dispatcher.call("deleteMany", THREADS, ids=[thread_id])

    async def move_thread(self, thread_id: str, resource_id: str) -> bool:
        """Upstream has no such operation: the thread's messages of its current resource are
        fetched (10,000 at most per fetch) and written back with the new one until none are
        left, then any of other resources, then the thread."""
        thread = await self._dispatcher.call("load", THREADS, keys={"id": thread_id})
        if not thread:
            return False
        old = thread["resourceId"]
        for filters in (
            [("thread_id", thread_id), ("resourceId", old)],
            [("thread_id", thread_id)],
        ):
            while True:
                rows = await self._dispatcher.call(
                    "queryTable",
                    MESSAGES,
                    filters=[{"field": name, "value": value} for name, value in filters],
                )
                todo = [
                    {**strip_system(row), "resourceId": resource_id}
                    for row in rows
                    if row.get("resourceId") != resource_id
                ]
                if not todo:
                    break
                for batch in chunks(todo, self.info):
                    await self._dispatcher.call("batchInsert", MESSAGES, records=batch)
        updated_at = to_iso(max(parse_time(now_iso()), parse_time(thread["updatedAt"]) + _ONE_MS))
        moved = {**strip_system(thread), "resourceId": resource_id, "updatedAt": updated_at}
        await self._dispatcher.call("insert", THREADS, record=moved)
        return True

    # -- conditional writes ----------------------------------------------------------------------

    async def patch_if(
        self, table: str, record_id: str, record: dict[str, Any], *, expect: Mapping[str, Any]
    ) -> bool:
        """Upstream's patch ignores conditions: it would write whatever the row holds, so two
        workers could both claim one task. Refused rather than done unsafely."""
        raise ConfigurationError(
            "a conditional write (such as background_tasks.claim) needs convex-mastra's "
            "handler: the stock @mastra/convex handler cannot check and write in one mutation. "
            "Deploy convex-mastra's functions (convex/mastra/)."
        )

    # -- observational memory ------------------------------------------------------------------

    async def om_update(self, op: str, **fields: Any) -> Any:
        """Upstream throws for a missing record without a code, in words of its own: those
        words are the only sign, so they are what is matched."""
        try:
            return await super().om_update(op, **fields)
        except FunctionError as exc:
            if "Observational memory record not found" not in str(exc):
                raise
            raise NotFoundError(
                f"observational memory record {fields.get('id')!r} not found",
                op=op,
                table=OBSERVATIONAL_MEMORY,
            ) from None

    # -- schedules -----------------------------------------------------------------------------

    async def create_schedule(self, record: dict[str, Any]) -> None:
        """Upstream throws without a code on a taken id: the id is looked up first (a separate
        read, so two creators racing can still both get upstream's bare error)."""
        if await self._dispatcher.call("load", SCHEDULES, keys={"id": record["id"]}):
            raise StorageOperationError(
                f"schedule {record['id']!r} already exists",
                op="createSchedule",
                table=SCHEDULES,
                code="CONFLICT",
            )
        await super().create_schedule(record)

    async def update_schedule(self, schedule_id: str, patch: dict[str, Any]) -> Mapping[str, Any]:
        """Upstream throws without a code for a missing schedule: looked up first."""
        if not await self._dispatcher.call("load", SCHEDULES, keys={"id": schedule_id}):
            raise NotFoundError(
                f"schedule {schedule_id!r} not found", op="updateSchedule", table=SCHEDULES
            )
        return await super().update_schedule(schedule_id, patch)

    # -- resources -----------------------------------------------------------------------------

    async def update_resource(
        self,
        resource_id: str,
        working_memory: str | None,
        metadata: Mapping[str, Any] | None,
        encoded: Any,
    ) -> Mapping[str, Any]:
        """Upstream stores merged metadata verbatim: when the merge holds keys Convex refuses,
        write the resource back whole with its metadata as JSON text (not atomic, unlike
        ours)."""
        row = await self._dispatcher.call("load", RESOURCES, keys={"id": resource_id})
        current = resource_from_row(row) if row else None
        merged = {**((current.metadata if current else None) or {}), **(metadata or {})}
        if current is None or stock_mergeable(merged):
            return await super().update_resource(resource_id, working_memory, metadata, encoded)
        changes: dict[str, Any] = {"metadata": merged, "updated_at": parse_time(now_iso())}
        if working_memory is not None:
            changes["working_memory"] = working_memory
        record = resource_record(current.model_copy(update=changes))
        await self._dispatcher.call("insert", RESOURCES, record=record)
        return record

    # -- workflows -----------------------------------------------------------------------------

    def runs_query(
        self,
        workflow_name: str | None,
        resource_id: str | None,
        status: str | None,
        bounds: Mapping[str, str] | None,
        thread_id: str | None = None,
    ) -> IndexQuery:
        """Upstream's rows keep no status column: the status is read from the snapshot while
        paging in memory, with the thread."""
        query = super().runs_query(workflow_name, resource_id, None, bounds)
        equals = {"status": status, "threadId": thread_id}
        equals = {key: value for key, value in equals.items() if value is not None}
        if not equals:
            return query
        return dataclasses.replace(query, match=Match("snapshot", equals, view="run"))

    async def merge_workflow_state(
        self, workflow_name: str, run_id: str, opts: dict[str, Any], statuses: list[str] | None
    ) -> Any:
        """Upstream has no status guard: the status is checked by a read first (not atomic)."""
        if statuses is not None:
            row = await self._dispatcher.call(
                "load", WORKFLOWS, keys={"workflow_name": workflow_name, "run_id": run_id}
            )
            current = snapshot_from_stored(row.get("snapshot")) if row else None
            if current is None or current.status not in statuses:
                return None
        return await super().merge_workflow_state(workflow_name, run_id, opts, None)

    # -- scores and documents ------------------------------------------------------------------

    def score_record(self, score: Score) -> dict[str, Any]:
        """Upstream refuses nulls in optional columns, so absent ones are left out."""
        return score_record(score, clear_missing=False)

    def encode_document(self, table: str, record: Any, where: str) -> tuple[str, Any]:
        """Upstream stores records as they are, so keys Convex refuses are refused here."""
        return encode_record(table, record, where, json_text=False)

    async def query_documents(
        self, table: str, clauses: list[dict[str, Any]], limit: int | None
    ) -> list[Any]:
        """One call, which upstream caps at 10,000 records (a warning says when it did)."""
        rows: list[Any] = await self._dispatcher.call(
            "queryTable", table, filters=clauses, limit=limit
        )
        cap = self.info.limit("queryTableRows")
        if limit is None and len(rows) >= cap:
            logger.warning(
                "the stock @mastra/convex handler returned its cap of %d records of %s; "
                "records may be missing. Deploy convex-mastra's functions to read them all.",
                cap,
                table,
            )
        return rows


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


class StockCacheProtocol(CacheProtocol):
    """How ``ConvexServerCache`` speaks to upstream's cache handler: values as Convex values
    (so keys Convex refuses are refused first), one listPush per item, ranges read in windows
    of absolute indexes. ``get`` of a counter or a list reads None, as upstream answers."""

    capabilities: ClassVar[frozenset[str]] = frozenset()

    def value_fields(self, value: Any, text: str, key: str, field: str) -> dict[str, Any]:
        """The value itself, which Convex must accept as a function argument."""
        size = self.cache._row_size(text, self.cache.key_prefix + key)
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

    async def get(self, key: str, full: str) -> Any:
        return js_numbers(await self.cache._settle("get", "get", key, key=full))

    async def push(
        self, key: str, full: str, values: list[Any], texts: list[str], expires_at: Any
    ) -> None:
        """One listPush per item, every value checked before the first call."""
        cache = self.cache
        fields = [
            self.value_fields(value, text, key, f"values[{i}]")
            for i, (value, text) in enumerate(zip(values, texts, strict=True))
        ]
        for field in fields:
            await cache._settle(
                "listPush",
                "list_push_many",
                key,
                key=full,
                keyPrefix=cache.key_prefix,
                **field,
                expiresAt=expires_at,
            )

    async def range(self, key: str, full: str, start: int, stop: int) -> list[Any]:
        """``list_range`` on upstream's handler, in windows of absolute indexes.

        A short range of same-signed indexes is one call, as upstream's client makes it. Else
        a negative start is made absolute from the list's length, and a negative stop is
        applied at the end: windows run until one comes back short, then the last ``-stop - 1``
        items are dropped.
        """
        cache = self.cache
        asked = (start, stop)
        window = STOCK_RANGE_WINDOW
        calls = 0

        async def read(first: int, last: int) -> list[Any]:
            nonlocal calls
            # Upstream answers hasMore while it reclaims an expired list: ask again.
            while calls < cache._max_calls:
                calls += 1
                reply = await cache._dispatcher.send(
                    "listFromTo", None, key=full, to=last, **{"from": first}
                )
                if not reply.has_more:
                    return [js_numbers(value) for value in range_items(reply.result)]
            raise cache._range_limit(key, *asked, 0)

        if (start < 0) == (stop < 0) and stop - start < STOCK_SAFE_WINDOW:
            return await read(start, stop)
        if start < 0:
            length = await cache.list_length(key)
            start = max(length + start, 0)
            if stop < 0:
                stop = length + stop
                if stop < 0:  # ends before the list's first item (a negative stop means "end")
                    return []
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
            if calls >= cache._max_calls:
                raise cache._range_limit(key, *asked, len(values))
            first = last + 1
        return values if stop >= -1 else values[: max(0, len(values) + stop + 1)]
