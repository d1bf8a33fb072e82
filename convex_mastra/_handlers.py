"""The deployed handler, chosen once per store: the operations domains call.

``Handler`` is convex-mastra's handler (``convex/mastra/``): each operation is one call, or a
documented loop of calls. ``StockHandler`` (``_stock.py``) serves the same operations on
upstream's stock @mastra/convex handler with what its protocol allows. A domain method checks its
input, calls one operation, and never asks which handler runs; what a handler can do is declared
in ``capabilities``, not sniffed.

Every domain and listing goes through here where the handlers differ; the cache chooses its
``CacheProtocol`` the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from ._codec import json_text
from ._dispatch import MAX_CALLS, Dispatcher, HandlerInfo
from ._domains._base import CONFLICT, Conflict, in_chunks, now_iso
from ._domains.documents import encode_record
from ._domains.messages import TABLE as MESSAGES
from ._domains.messages import Include, chunks
from ._domains.observational import TABLE as OBSERVATIONAL_MEMORY
from ._domains.resources import TABLE as RESOURCES
from ._domains.schedules import TABLE as SCHEDULES
from ._domains.scorers import score_record
from ._domains.threads import TABLE as THREADS
from ._domains.workflows import INDEXES as RUN_INDEXES
from ._domains.workflows import TABLE as WORKFLOWS
from ._errors import BatchLimitError, NotFoundError, StorageOperationError
from ._models import Score
from ._paging import IndexQuery, Match, Rows

__all__ = [
    "CAPABILITIES",
    "CONFLICT",
    "MESSAGES",
    "RESOURCES",
    "THREADS",
    "Conflict",
    "Handler",
    "HandlerChoice",
]

CAPABILITIES = frozenset(
    {
        "last_message_at",
        "atomic_metadata_merge",
        "conditional_metadata_update",
        "conditional_patch",
        "atomic_message_saves",
        "atomic_message_pop",
        "indexed_paging",
        "exact_totals",
        "counters",
    }
)
"""Every capability a handler may declare (see docs/concepts.md)."""

DELETE_BATCH = 500
"""Messages one deleteThread call removes; small enough for Convex's per-transaction limits."""

MOVE_BATCH = 500
"""Messages one moveThread call rewrites: far under Convex's 16,000 writes, and the handler
stops sooner at 4 MiB read, so the rewritten documents stay under its 16 MiB too."""


class Handler:
    """convex-mastra's handler: memory operations, each as its own call."""

    capabilities: ClassVar[frozenset[str]] = CAPABILITIES
    rows_class: ClassVar[type[Rows]] = Rows

    def __init__(self, dispatcher: Dispatcher, info: HandlerInfo) -> None:
        self._dispatcher = dispatcher
        self.info = info
        self.rows = self.rows_class(dispatcher)
        """Counts, windows and pages of listings on this handler."""

    # -- messages ------------------------------------------------------------------------------

    async def save_messages(self, rows: list[dict[str, Any]], moved_from: list[str]) -> None:
        """Upsert message rows by id; every thread touched (``moved_from`` included: the
        handler finds those itself) gets a new ``updatedAt``. One call per chunk."""
        for batch in chunks(rows, self.info):
            await self._dispatcher.call(
                "saveMessages", None, messages=batch, threadUpdatedAt=now_iso()
            )

    async def delete_messages(self, ids: list[str]) -> None:
        """Delete messages (missing ids are fine) in chunks; PartialWriteError midway."""

        async def delete(batch: list[str]) -> None:
            await self._dispatcher.call("deleteMessages", None, ids=batch, updatedAt=now_iso())

        await in_chunks(ids, self.info.load_many, "messages.delete", delete)

    async def pop_message(self, thread_id: str) -> dict[str, Any] | None:
        """Delete the thread's newest message (by ``createdAt``, then insertion) and return its
        row, in one mutation: concurrent pops each get a different message. None when the
        thread has none."""
        row: dict[str, Any] | None = await self._dispatcher.call(
            "popMessage", None, threadId=thread_id, updatedAt=now_iso()
        )
        return row

    async def message_windows(
        self, includes: list[Include], resource_id: str | None
    ) -> list[dict[str, Any]]:
        """Each included message with its neighbours in its own thread, as rows."""
        rows: list[dict[str, Any]] = []
        step = self.info.limit("windowItems")
        for start in range(0, len(includes), step):
            rows += await self._dispatcher.call(
                "messageWindow",
                None,
                items=[
                    {
                        "id": item.id,
                        "before": item.with_previous_messages,
                        "after": item.with_next_messages,
                    }
                    for item in includes[start : start + step]
                ],
                resourceId=resource_id,
            )
        return rows

    # -- threads -------------------------------------------------------------------------------

    async def update_thread(
        self,
        thread_id: str,
        title: str | None,
        metadata: Mapping[str, Any] | None,
        encoded: Any,
    ) -> Mapping[str, Any] | None:
        """Set the title and merge metadata key by key in one mutation; the row, or None when
        the thread does not exist. ``encoded`` is ``metadata`` as it is sent."""
        row: Mapping[str, Any] | None = await self._dispatcher.call(
            "updateThread",
            THREADS,
            id=thread_id,
            title=title,
            metadata=encoded,
            updatedAt=now_iso(),
        )
        return row

    async def replace_thread_metadata(
        self,
        thread_id: str,
        expected: Mapping[str, Any],
        metadata: Mapping[str, Any],
        encoded: Any,
    ) -> Mapping[str, Any] | Conflict | None:
        """Replace the metadata with ``encoded`` only if the stored metadata still equals
        ``expected``, checked in the same mutation: the row, None when the thread does not
        exist, or CONFLICT when another writer changed the metadata first."""
        try:
            row: Mapping[str, Any] | None = await self._dispatcher.call(
                "updateThread",
                THREADS,
                id=thread_id,
                metadata=encoded,
                replaceMetadata=True,
                expectedMetadata=json_text(dict(expected), "metadata"),
                updatedAt=now_iso(),
            )
        except StorageOperationError as exc:
            if exc.code != "CONFLICT":
                raise
            return CONFLICT
        return row

    async def delete_thread(self, thread_id: str) -> None:
        """Delete the thread's messages in bounded batches, then the thread."""
        await self._dispatcher.drain(
            "deleteThread", THREADS, threadId=thread_id, batchSize=DELETE_BATCH
        )

    async def move_thread(self, thread_id: str, resource_id: str) -> bool:
        """Give every message of the thread, then the thread, ``resource_id``: one call per
        batch of at most MOVE_BATCH messages (and 4 MiB read), each its own transaction, the
        thread row in the last. False when the thread does not exist."""
        after = None
        for _ in range(MAX_CALLS):
            reply = await self._dispatcher.send(
                "moveThread",
                THREADS,
                threadId=thread_id,
                resourceId=resource_id,
                batchSize=MOVE_BATCH,
                after=after,
                updatedAt=now_iso(),
            )
            if not reply.has_more:
                return bool(reply.result["threadFound"])
            after = reply.result["after"]
        raise BatchLimitError(
            f"moving thread {thread_id!r} needed more than {MAX_CALLS} calls; call move again "
            "to continue"
        )

    # -- conditional writes ----------------------------------------------------------------------

    async def patch_if(
        self, table: str, record_id: str, record: dict[str, Any], *, expect: Mapping[str, Any]
    ) -> bool:
        """Patch the row only if its fields hold ``expect``, checked in the same mutation;
        False when they do not (or the row is missing)."""
        pairs = [[field, value] for field, value in expect.items()]
        return bool(
            await self._dispatcher.call("patch", table, id=record_id, record=record, expect=pairs)
        )

    # -- observational memory ------------------------------------------------------------------

    async def om_update(self, op: str, **fields: Any) -> Any:
        """One observational-memory op on a record by ``id``; NotFoundError when it is
        missing (the handler's ``NOT_FOUND``)."""
        return await self._dispatcher.call(op, OBSERVATIONAL_MEMORY, **fields)

    # -- schedules -----------------------------------------------------------------------------

    async def create_schedule(self, record: dict[str, Any]) -> None:
        """Insert a schedule row; StorageOperationError ``CONFLICT`` when its id is taken."""
        await self._dispatcher.call("createSchedule", SCHEDULES, record=record)

    async def update_schedule(self, schedule_id: str, patch: dict[str, Any]) -> Mapping[str, Any]:
        """Patch a schedule row in one mutation; its new row. NotFoundError when missing."""
        row: Mapping[str, Any] = await self._dispatcher.call(
            "updateSchedule", SCHEDULES, id=schedule_id, patch=patch
        )
        return row

    # -- resources -----------------------------------------------------------------------------

    async def update_resource(
        self,
        resource_id: str,
        working_memory: str | None,
        metadata: Mapping[str, Any] | None,
        encoded: Any,
    ) -> Mapping[str, Any]:
        """Set working memory and merge metadata key by key in one mutation, creating a
        missing resource; the row. ``encoded`` is ``metadata`` as it is sent."""
        now = now_iso()
        row: Mapping[str, Any] = await self._dispatcher.call(
            "updateResource",
            RESOURCES,
            resourceId=resource_id,
            workingMemory=working_memory,
            metadata=encoded,
            createdAt=now,
            updatedAt=now,
        )
        return row

    # -- workflows -----------------------------------------------------------------------------

    def runs_query(
        self,
        workflow_name: str | None,
        resource_id: str | None,
        status: str | None,
        bounds: Mapping[str, str] | None,
        thread_id: str | None = None,
    ) -> IndexQuery:
        """The listing of runs: the snapshot's status is a column of its own, in the index;
        the thread is read from the snapshot as the handler scans."""
        eq: list[tuple[str, Any]] = []
        if workflow_name is not None:
            eq.append(("workflow_name", workflow_name))
        if resource_id is not None:
            eq.append(("resourceId", resource_id))
        if status is not None:
            eq.append(("status", status))
        index = RUN_INDEXES[
            (workflow_name is not None, resource_id is not None, status is not None)
        ]
        return IndexQuery(
            table=WORKFLOWS,
            index=index,
            sort_field="createdAt",
            eq=tuple(eq),
            range=bounds,
            match=Match("snapshot", {"threadId": thread_id}, view="run") if thread_id else None,
        )

    async def merge_workflow_state(
        self, workflow_name: str, run_id: str, opts: dict[str, Any], statuses: list[str] | None
    ) -> Any:
        """Merge top-level snapshot fields; with ``statuses``, only when the stored status is one
        of them, checked in the same mutation. The stored snapshot, or None (no run, or another
        status)."""
        if statuses is not None:
            opts = {**opts, "expectedStatus": statuses}
        try:
            return await self._dispatcher.call(
                "mergeWorkflowState",
                WORKFLOWS,
                workflowName=workflow_name,
                runId=run_id,
                opts=json_text(opts, "changes"),
            )
        except NotFoundError:
            return None

    # -- scores and documents ------------------------------------------------------------------

    def score_record(self, score: Score) -> dict[str, Any]:
        """A score as sent: absent optional columns as null, which this handler reads as "no
        value", so an upsert leaves nothing of the row it replaces."""
        return score_record(score, clear_missing=True)

    def encode_document(self, table: str, record: Any, where: str) -> tuple[str, Any]:
        """(id, value to send) for a generic record; keys Convex refuses go as JSON text."""
        return encode_record(table, record, where, json_text=True)

    async def query_documents(
        self, table: str, clauses: list[dict[str, Any]], limit: int | None
    ) -> list[Any]:
        """Stored records equal on ``clauses``, paged through the whole table."""
        out: list[Any] = []
        cursor: str | None = None
        for _ in range(MAX_CALLS):
            reply = await self._dispatcher.send(
                "queryTable",
                table,
                filters=clauses,
                pageSize=self.info.limit("pageItems"),
                cursor=cursor,
            )
            out += reply.result
            if limit is not None and len(out) >= limit:
                return out[:limit]
            if not reply.has_more:
                return out
            cursor = reply.answer.get("continuationCursor")
        raise BatchLimitError(
            f"querying {table} needed more than {MAX_CALLS} calls; pass a limit or narrow the "
            "filters"
        )


class HandlerChoice:
    """The store's one handler, chosen after the deployment's ``info`` answer."""

    def __init__(self, dispatcher: Dispatcher) -> None:
        self._dispatcher = dispatcher
        self._handler: Handler | None = None

    async def get(self) -> Handler:
        """The handler; asks ``info`` on first use."""
        if self._handler is None:
            info = await self._dispatcher.info()
            if info.is_stock:
                from ._stock import StockHandler

                self._handler = StockHandler(self._dispatcher, info)
            else:
                self._handler = Handler(self._dispatcher, info)
        return self._handler
