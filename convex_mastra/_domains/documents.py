"""``store.documents``: records of the logical tables that have no typed table of their own.

Both handlers keep them in one Convex table, ``mastra_documents``, as ``{table, primaryKey,
record}``, with the record's ``id`` as its primary key. Names that the handlers route to a typed
table are refused here: writing them through this domain would land in that typed table.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from .._codec import check_document_size, decode_json, json_arg
from .._errors import ValidationError
from ._base import Domain, check_id, check_ids, check_scalar_filter, in_chunks

__all__ = ["RESERVED_TABLES", "Documents"]


RESERVED_TABLES = frozenset(
    {
        # Logical names routed to typed tables (by both handlers).
        "mastra_threads",
        "mastra_messages",
        "mastra_resources",
        "mastra_workflow_snapshot",
        "mastra_scorers",
        "mastra_schedules",
        "mastra_schedule_triggers",
        "mastra_channel_installations",
        "mastra_channel_config",
        "mastra_background_tasks",
        "mastra_observational_memory",
        "mastra_vector_indexes",
        # Convex tables of the schema; as logical names they would only confuse.
        "mastra_workflow_snapshots",
        "mastra_vectors",
        "mastra_cache",
        "mastra_cache_list_items",
        "mastra_documents",
        "mastra_counters",
    }
)
"""Table names ``store.documents`` refuses (compared case-insensitively)."""
VECTOR_PREFIX = "mastra_vector_"
"""Names starting with this are vector indexes to both handlers."""

BATCH_RECORDS = 500
BATCH_BYTES = 8 * 1024 * 1024
CLEAR_BATCH = 500


def check_table(table: Any) -> str:
    """A logical table name this domain may use, else ValidationError."""
    if not isinstance(table, str) or not table.strip():
        raise ValidationError(f"table must be a non-empty string, not {table!r}", field="table")
    folded = table.casefold()
    if folded in RESERVED_TABLES or folded.startswith(VECTOR_PREFIX):
        raise ValidationError(
            f"table {table!r} is (or looks like) a typed convex-mastra table; use its own domain "
            "(store.threads, store.workflows, store.scorers...) or pick another name",
            field="table",
        )
    return table


def encode_record(table: str, record: Any, where: str, *, json_text: bool) -> tuple[str, Any]:
    """(id, value to send) for one record: the record itself, or JSON text when Convex
    cannot hold its keys. Checks JSON, the id and the size first."""
    if not isinstance(record, Mapping):
        raise ValidationError(f"{where} must be a dict, not {type(record).__name__}", field=where)
    record_id = check_id(record.get("id"), f"{where}.id")
    value = json_arg(dict(record), where)
    if isinstance(value, str) and not json_text:
        raise ValidationError(
            f"{where} ({record_id!r}) has keys Convex cannot store (such as '$'-prefixed or "
            "non-ASCII ones) or is nested too deeply; the stock @mastra/convex handler stores "
            "records as they are. Deploy convex-mastra's functions to store it as JSON text.",
            field=where,
        )
    # The row the handler stores in mastra_documents, sized as Convex sizes it.
    check_document_size(record_id, {"table": table, "primaryKey": record_id, "record": value})
    return record_id, value


def decode_record(stored: Any) -> dict[str, Any]:
    """A stored record (object or JSON text) as a dict."""
    value = decode_json(stored)
    if not isinstance(value, dict):
        raise ValidationError(f"stored record is not a JSON object: {str(stored)[:80]!r}")
    return value


class Documents(Domain):
    """Records of untyped logical tables: insert, get, query, patch, delete, clear."""

    async def insert(self, table: str, record: Mapping[str, Any]) -> None:
        """Insert the record, or replace the one with the same ``id``."""
        check_table(table)
        _, value = (await self._handler()).encode_document(table, record, "record")
        await self._dispatcher.call("insert", table, record=value)

    async def insert_many(self, table: str, records: Iterable[Mapping[str, Any]]) -> None:
        """Insert or replace records by ``id`` (a repeated id: the last one wins).

        Every record is checked before the first is sent. Each call is atomic; a large batch
        takes several calls, and if one fails the records before it stay written.
        """
        check_table(table)
        handler = await self._handler()
        encoded = [
            handler.encode_document(table, record, f"records[{i}]")
            for i, record in enumerate(records)
        ]
        batch: builtins.list[Any] = []
        size = 0
        for _, value in encoded:
            value_size = len(orjson.dumps(value))
            if batch and (len(batch) >= BATCH_RECORDS or size + value_size > BATCH_BYTES):
                await self._dispatcher.call("batchInsert", table, records=batch)
                batch, size = [], 0
            batch.append(value)
            size += value_size
        if batch:
            await self._dispatcher.call("batchInsert", table, records=batch)

    async def get(self, table: str, **keys: Any) -> dict[str, Any] | None:
        """The record with these field values (``id=...`` is a direct lookup), or None.

        Other keys are matched by reading the table's records in turn, so keep them for small
        tables.
        """
        check_table(table)
        if not keys:
            raise ValidationError("get needs at least one key, such as id=...", field="keys")
        wanted = check_scalar_filter(keys, "keys") or {}
        if "id" in wanted:
            check_id(wanted["id"], "id")
        stored = await self._dispatcher.call("load", table, keys=wanted)
        return decode_record(stored) if stored is not None else None

    async def get_many(self, table: str, ids: Iterable[str]) -> builtins.list[dict[str, Any]]:
        """The records with these ids that exist, in the order asked for."""
        check_table(table)
        wanted = check_ids(ids, "ids")
        step = (await self._dispatcher.info()).load_many
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(wanted), step):
            for stored in await self._dispatcher.call(
                "loadMany", table, ids=wanted[start : start + step]
            ):
                record = decode_record(stored)
                found[str(record.get("id"))] = record
        return [found[record_id] for record_id in wanted if record_id in found]

    async def query(
        self,
        table: str,
        *,
        filters: Mapping[str, Any] | None = None,
        limit: int | None = None,
    ) -> builtins.list[dict[str, Any]]:
        """Records whose fields equal every value in ``filters``; at most ``limit`` of them.

        Our handler pages through the whole table, so nothing is cut off; the stock handler
        reads at most 10,000 records of a table per call (a warning says when it did).
        """
        check_table(table)
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, int) or limit < 1
        ):
            raise ValidationError(
                f"limit must be a positive integer or None, not {limit!r}", field="limit"
            )
        wanted = check_scalar_filter(filters, "filters") or {}
        clauses = [{"field": name, "value": value} for name, value in wanted.items()]
        rows = await (await self._handler()).query_documents(table, clauses, limit)
        return [decode_record(row) for row in rows]

    async def patch(self, table: str, id: str, fields: Mapping[str, Any]) -> bool:
        """Merge ``fields`` into the stored record (top level); False when it does not exist."""
        check_table(table)
        check_id(id, "id")
        if not isinstance(fields, Mapping):
            raise ValidationError("fields must be a dict", field="fields")
        handler = await self._handler()
        _, value = handler.encode_document(table, {**fields, "id": id}, "fields")
        return bool(await self._dispatcher.call("patch", table, id=id, record=value))

    async def delete_many(self, table: str, ids: Iterable[str]) -> None:
        """Delete the records with these ids (missing ids are ignored).

        Many ids take several calls; should one fail after others were applied,
        PartialWriteError lists the ids deleted and those not.
        """
        check_table(table)
        wanted = check_ids(ids, "ids")

        async def delete(batch: builtins.list[str]) -> None:
            await self._dispatcher.call("deleteMany", table, ids=batch)

        step = (await self._dispatcher.info()).load_many
        await in_chunks(wanted, step, f"documents.delete_many({table!r})", delete)

    async def clear(self, table: str) -> None:
        """Delete every record of the table, in bounded batches until none is left."""
        check_table(table)
        await self._dispatcher.drain("clearTable", table, batchSize=CLEAR_BATCH)
