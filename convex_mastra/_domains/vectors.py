"""Vector indexes on upstream's tables: create, describe, upsert, query, update, delete.

An index is a row of ``mastra_vector_indexes`` (``id`` and ``indexName`` are its name, with its
``dimension``, ``metric`` and ``createdAt``); its vectors are ``mastra_vectors`` rows tagged with
the index name, reached through the logical table ``mastra_vector_<name>``. Both handlers, ours
and the stock @mastra/convex one, serve these tables with the record ops, so @mastra/convex's
TypeScript ``ConvexVector`` and this class read and write each other's indexes.

Search is exact: the index is read in pages (at most a few MiB each) and every row is scored,
so no page, and no query, ever holds the whole index in memory. Scoring runs on a worker thread:
a page of 768-dimension vectors is tens of milliseconds of Python.
"""

from __future__ import annotations

import builtins
import heapq
import math
import operator
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any, Literal

import anyio
import orjson
from pydantic import BaseModel, ConfigDict, Field

from .._codec import (
    check_document_size,
    check_json,
    convex_value_problem,
    js_numbers,
    to_iso,
)
from .._dispatch import MAX_CALLS, Dispatcher, HandlerInfo, Reply, batches
from .._errors import (
    BatchLimitError,
    ConvexMastraError,
    NotFoundError,
    PartialWriteError,
    ValidationError,
)
from .._vector_filter import Predicate, compile_filter
from ._base import check_id

__all__ = ["IndexStats", "Metric", "QueryResult", "VectorIndexes"]

Metric = Literal["cosine", "euclidean", "dotproduct"]
METRICS: tuple[str, ...] = ("cosine", "euclidean", "dotproduct")
INDEXES = "mastra_vector_indexes"
PREFIX = "mastra_vector_"
MIN_DIMENSION, MAX_DIMENSION = 2, 4096
MAX_TOP_K = 256
"""Convex's own vector search returns at most 256 results; the exact scan keeps the same bound,
so a later switch to native search changes no caller."""
Row = Mapping[str, Any]
_PAGE_BYTES = 4 * 1024 * 1024  # of one page's answer: a float is about 20 bytes of JSON


class IndexStats(BaseModel):
    """``describe_index``: the index's dimension, vector count and metric."""

    model_config = ConfigDict(frozen=True)

    dimension: int
    count: int
    metric: Metric


class QueryResult(BaseModel):
    """One match of ``query``: higher ``score`` is closer (see docs/vectors.md for each metric)."""

    id: str
    score: float
    metadata: dict[str, Any] | None = None
    vector: list[float] | None = Field(default=None, repr=False)


class VectorIndexes:
    """MastraVector's operations on one storage handler (see the module docstring)."""

    def __init__(self, dispatcher: Dispatcher) -> None:
        self._dispatcher = dispatcher

    # -- indexes -----------------------------------------------------------------------------

    async def create_index(
        self, index_name: str, dimension: int, metric: Metric = "cosine"
    ) -> None:
        """Create an index of ``dimension``-long vectors (2..4096) compared by ``metric``
        (``cosine``, ``euclidean`` or ``dotproduct``).

        Creating an index that exists with the same dimension and metric does nothing; with
        another, ValidationError (delete it first).
        """
        name = _check_name(index_name)
        if isinstance(dimension, bool) or not isinstance(dimension, int):
            raise ValidationError("dimension must be an int", field="dimension")
        if not MIN_DIMENSION <= dimension <= MAX_DIMENSION:
            raise ValidationError(
                f"dimension must be {MIN_DIMENSION}..{MAX_DIMENSION} (Convex's vector limits), "
                f"not {dimension}",
                field="dimension",
            )
        if metric not in METRICS:
            raise ValidationError(
                f"metric must be one of {', '.join(METRICS)}, not {metric!r}", field="metric"
            )
        existing = await self._index_row(name)
        if existing is not None:
            have = _stats_of(existing, 0)
            if (have.dimension, have.metric) != (dimension, metric):
                raise ValidationError(
                    f"index {name!r} exists with dimension {have.dimension} and metric "
                    f"{have.metric}, not {dimension} and {metric}; delete it first",
                    field="index_name",
                )
            return
        record = {
            "id": name,
            "indexName": name,
            "dimension": dimension,
            "metric": metric,
            "createdAt": to_iso(datetime.now(timezone.utc)),
        }
        await self._dispatcher.call("insert", INDEXES, record=record)

    async def list_indexes(self) -> builtins.list[str]:
        """The names of every index, TypeScript-made ones included."""
        rows = await self._query_all(INDEXES)
        return sorted(str(row.get("id") or row.get("indexName")) for row in rows)

    async def describe_index(self, index_name: str) -> IndexStats:
        """Dimension, metric and vector count (counted by reading the index's pages)."""
        name = _check_name(index_name)
        stats = _stats_of(await self._require(name), 0)
        count = 0
        if (await self._dispatcher.info()).supports("vectorCount"):
            async for reply in self._replies("vectorCount", PREFIX + name):
                count += int(reply.result)
        else:
            async for page in self._pages(name, stats.dimension):
                count += len(page)
        return stats.model_copy(update={"count": count})

    async def delete_index(self, index_name: str) -> None:
        """Delete the index and all its vectors (in bounded calls); a missing index is fine."""
        name = _check_name(index_name)
        await self._dispatcher.call("deleteMany", INDEXES, ids=[name])
        await self._clear(name)

    async def truncate_index(self, index_name: str) -> None:
        """Delete every vector of the index, keeping the index."""
        name = _check_name(index_name)
        await self._require(name)
        await self._clear(name)

    # -- vectors -----------------------------------------------------------------------------

    async def upsert(
        self,
        index_name: str,
        vectors: Sequence[Sequence[float]],
        *,
        ids: Sequence[str] | None = None,
        metadata: Sequence[Mapping[str, Any] | None] | None = None,
    ) -> builtins.list[str]:
        """Insert or replace vectors by id; returns their ids (new UUIDs where ``ids`` is None).

        Every vector is checked (length, finite numbers) and every metadata dict (JSON that
        Convex stores) before the first call. A repeated id keeps its last vector. Metadata is
        replaced, not merged (``update_vector`` merges). One call is atomic; a batch too big for
        one call goes in several, and a failure after the first raises PartialWriteError.
        """
        name = _check_name(index_name)
        stats = _stats_of(await self._require(name), 0)
        if isinstance(vectors, str | bytes) or not isinstance(vectors, Sequence):
            raise ValidationError("vectors must be a list of vectors", field="vectors")
        count = len(vectors)
        if ids is not None and len(ids) != count:
            raise ValidationError(f"ids has {len(ids)} items for {count} vectors", field="ids")
        if metadata is not None and len(metadata) != count:
            raise ValidationError(
                f"metadata has {len(metadata)} items for {count} vectors", field="metadata"
            )
        records = []
        for i in range(count):
            vid = check_id(ids[i], f"ids[{i}]") if ids is not None else str(uuid.uuid4())
            record: dict[str, Any] = {
                "id": vid,
                "embedding": _check_vector(vectors[i], stats.dimension, f"vectors[{i}]"),
            }
            meta = metadata[i] if metadata is not None else None
            if meta is not None:
                record["metadata"] = _check_metadata(meta, f"metadata[{i}]")
            check_document_size(vid, {**record, "indexName": name})
            records.append(record)
        await self._write(name, records)
        return [record["id"] for record in records]

    async def query(
        self,
        index_name: str,
        query_vector: Sequence[float],
        *,
        top_k: int = 10,
        filter: Mapping[str, Any] | None = None,
        include_vector: bool = False,
    ) -> builtins.list[QueryResult]:
        """The ``top_k`` (1..256) vectors closest to ``query_vector`` among those whose metadata
        matches ``filter`` (docs/vectors.md has the filter language), closest first; equal
        scores in id order. Rows whose vector has another length, or whose score is not a
        number (a zero vector under cosine), are left out."""
        name = _check_name(index_name)
        if isinstance(top_k, bool) or not isinstance(top_k, int) or not 1 <= top_k <= MAX_TOP_K:
            raise ValidationError(f"top_k must be an int in 1..{MAX_TOP_K}", field="top_k")
        match = compile_filter(filter)
        stats = _stats_of(await self._require(name), 0)
        query = _check_vector(query_vector, stats.dimension, "query_vector")
        best: builtins.list[tuple[float, str, Row]] = []
        if (await self._dispatcher.info()).supports("vectorQuery"):
            # Our handler scores each page where the rows are and answers with its best; the
            # filter travels as JSON text, since Convex refuses "$" field names in arguments.
            async for reply in self._replies(
                "vectorQuery",
                PREFIX + name,
                vector=query,
                metric=stats.metric,
                topK=top_k,
                filter=None if match is None else orjson.dumps(filter).decode(),
                includeVector=include_vector,
            ):
                found = [(-float(r["score"]), str(r["id"]), r) for r in reply.result["results"]]
                best = heapq.nsmallest(top_k, [*best, *found], key=_rank)
        else:
            score = _scorer(stats.metric, query)
            async for page in self._pages(name, stats.dimension):
                found = await anyio.to_thread.run_sync(_top, page, score, match, top_k, query)
                best = heapq.nsmallest(top_k, [*best, *found], key=_rank)
        return [
            QueryResult(
                id=rid,
                score=-negative,
                metadata=_dict_or_none(row.get("metadata")),
                vector=row.get("vector", row.get("embedding")) if include_vector else None,
            )
            for negative, rid, row in best
        ]

    async def update_vector(
        self,
        index_name: str,
        *,
        id: str | None = None,
        filter: Mapping[str, Any] | None = None,
        vector: Sequence[float] | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> int:
        """Replace the vector and/or merge ``metadata`` (shallowly) into that of the vector
        ``id``, or of every vector matching ``filter``; returns how many were updated (a
        missing id: 0). Without ``vector`` the stored one is kept."""
        name = _check_name(index_name)
        if (id is None) == (filter is None):
            raise ValidationError("pass exactly one of id and filter", field="id")
        if vector is None and metadata is None:
            raise ValidationError("nothing to update: pass vector or metadata", field="vector")
        match = compile_filter(filter)
        if filter is not None and match is None:
            raise ValidationError("an empty filter would update every vector", field="filter")
        stats = _stats_of(await self._require(name), 0)
        embedding = None if vector is None else _check_vector(vector, stats.dimension, "vector")
        patch = None if metadata is None else _check_metadata(metadata, "metadata")
        if id is not None:
            row = await self._dispatcher.call(
                "load", PREFIX + name, keys={"id": check_id(id, "id")}
            )
            targets = [row] if isinstance(row, Mapping) else []
        else:
            assert match is not None
            targets = [row async for row in self._matching(name, stats.dimension, match)]
        records = []
        for row in targets:
            record: dict[str, Any] = {"id": row["id"], "embedding": row.get("embedding")}
            if embedding is not None:
                record["embedding"] = embedding
            old = row.get("metadata")
            if patch is not None:
                record["metadata"] = {**(old if isinstance(old, Mapping) else {}), **patch}
            elif old is not None:
                record["metadata"] = old
            check_document_size(str(row["id"]), {**record, "indexName": name})
            records.append(record)
        await self._write(name, records)
        return len(records)

    async def delete_vector(self, index_name: str, id: str) -> None:
        """Delete one vector; a missing one is fine."""
        await self.delete_vectors(index_name, ids=[id])

    async def delete_vectors(
        self,
        index_name: str,
        *,
        ids: Sequence[str] | None = None,
        filter: Mapping[str, Any] | None = None,
    ) -> int:
        """Delete the vectors ``ids``, or every vector matching ``filter``; returns how many ids
        were asked for or matched."""
        name = _check_name(index_name)
        if (ids is None) == (filter is None):
            raise ValidationError("pass exactly one of ids and filter", field="ids")
        if ids is not None:
            if isinstance(ids, str) or not ids:
                raise ValidationError("ids must be a non-empty list of ids", field="ids")
            targets = list(dict.fromkeys(check_id(v, f"ids[{i}]") for i, v in enumerate(ids)))
        else:
            match = compile_filter(filter)
            if match is None:
                raise ValidationError("an empty filter would delete every vector", field="filter")
            stats = _stats_of(await self._require(name), 0)
            targets = [str(row["id"]) async for row in self._matching(name, stats.dimension, match)]
        info = await self._dispatcher.info()
        size = info.load_many
        for start in range(0, len(targets), size):
            try:
                await self._dispatcher.call(
                    "deleteMany", PREFIX + name, ids=targets[start : start + size]
                )
            except ConvexMastraError as exc:
                if start == 0:
                    raise
                raise PartialWriteError(
                    f"deleting vectors of {name!r} failed after {start:,} of {len(targets):,}",
                    done=targets[:start],
                    not_done=targets[start:],
                ) from exc
        return len(targets)

    # -- reading and writing pages -------------------------------------------------------------

    async def _index_row(self, name: str) -> Mapping[str, Any] | None:
        row = await self._dispatcher.call("load", INDEXES, keys={"id": name})
        return row if isinstance(row, Mapping) else None

    async def _require(self, name: str) -> Mapping[str, Any]:
        row = await self._index_row(name)
        if row is None:
            raise NotFoundError(
                f"vector index {name!r} not found; create it with create_index",
                op="load",
                table=INDEXES,
                code="NOT_FOUND",
            )
        return row

    async def _query_all(self, table: str) -> builtins.list[Mapping[str, Any]]:
        rows: builtins.list[Mapping[str, Any]] = []
        async for page in self._paged(table, 256):
            rows += page
        return rows

    async def _pages(self, name: str, dimension: int) -> AsyncIterator[builtins.list[Row]]:
        """The index's rows, a page of at most about 4 MiB at a time."""
        info = await self._dispatcher.info()
        most = info.limits.get("pageItems", 1000)
        rows = min(most, max(16, _PAGE_BYTES // (dimension * 20 + 512)))
        async for page in self._paged(PREFIX + name, rows):
            yield page

    async def _paged(self, table: str, rows: int) -> AsyncIterator[builtins.list[Row]]:
        async for reply in self._replies("queryTable", table, pageSize=rows):
            yield [row for row in reply.result if isinstance(row, Mapping)]

    async def _replies(self, op: str, table: str, **fields: Any) -> AsyncIterator[Reply]:
        """The answers of ``op`` called page after page, each call continuing at the cursor
        the previous one answered, until one says it has no more."""
        cursor: str | None = None
        for _ in range(MAX_CALLS):
            reply = await self._dispatcher.send(op, table, cursor=cursor, **fields)
            yield reply
            if not reply.has_more:
                return
            following = reply.answer.get("continuationCursor")
            if not isinstance(following, str) or following == cursor:
                raise ConvexMastraError(f"{op} on {table} answered no way to continue")
            cursor = following
        raise BatchLimitError(f"{op} on {table} needed more than {MAX_CALLS} calls")

    async def _matching(self, name: str, dimension: int, match: Predicate) -> AsyncIterator[Row]:
        async for page in self._pages(name, dimension):
            for row in page:
                if match(row.get("metadata")):
                    yield row

    async def _write(self, name: str, records: builtins.list[dict[str, Any]]) -> None:
        info = await self._dispatcher.info()
        done: builtins.list[str] = []
        for batch in _chunks(records, info):
            try:
                await self._dispatcher.call("batchInsert", PREFIX + name, records=batch)
            except ConvexMastraError as exc:
                if not done:
                    raise
                rest = [str(r["id"]) for r in records[len(done) :]]
                raise PartialWriteError(
                    f"upserting into {name!r} failed after {len(done):,} of {len(records):,} "
                    f"vectors ({type(exc).__name__}: {exc})",
                    done=done,
                    not_done=rest,
                ) from exc
            done += [str(r["id"]) for r in batch]

    async def _clear(self, name: str) -> None:
        await self._dispatcher.drain("clearTable", PREFIX + name)


def _chunks(
    records: builtins.list[dict[str, Any]], info: HandlerInfo
) -> Iterator[builtins.list[dict[str, Any]]]:
    return batches(
        records,
        max_items=info.limit("batchItems"),
        max_bytes=info.limit("batchBytes"),
        size=lambda r: 24 * len(r["embedding"]) + len(orjson.dumps(r.get("metadata"))) + 128,
    )


def _check_name(value: Any) -> str:
    name = check_id(value, "index_name")
    if len(name) > 256 or not name.isprintable():
        raise ValidationError(
            "index_name must be at most 256 printable characters", field="index_name"
        )
    return name


def _check_vector(value: Any, dimension: int, field: str) -> builtins.list[float]:
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Sequence):
        raise ValidationError(f"{field} must be a list of numbers", field=field)
    if len(value) != dimension:
        raise ValidationError(
            f"{field} has {len(value)} numbers; the index holds {dimension}", field=field
        )
    out = []
    for x in value:
        if isinstance(x, bool) or not isinstance(x, int | float):
            raise ValidationError(f"{field} holds {x!r}, not a number", field=field)
        number = float(x)
        if not math.isfinite(number):
            raise ValidationError(f"{field} holds {x!r}; numbers must be finite", field=field)
        out.append(number)
    return out


def _check_metadata(value: Any, field: str) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise ValidationError(f"{field} must be a dict", field=field)
    meta = dict(value)
    check_json(meta, field)
    problem = convex_value_problem(meta, field)
    if problem:
        raise ValidationError(problem, field=field)
    return meta


def _stats_of(row: Mapping[str, Any], count: int) -> IndexStats:
    metric = row.get("metric")
    return IndexStats(
        dimension=int(row.get("dimension") or 0),
        count=count,
        metric=metric if metric in METRICS else "cosine",
    )


def _scorer(metric: str, query: builtins.list[float]) -> Any:
    """Score of a stored vector against ``query``: higher is closer. The sums run left to right
    as JavaScript's loops do, so a score is the same bit for bit on either side."""
    mul = operator.mul
    if metric == "dotproduct":
        return lambda v: sum(map(mul, query, v))
    if metric == "euclidean":

        def euclidean(v: builtins.list[float]) -> float:
            distance = math.sqrt(sum((a - b) * (a - b) for a, b in zip(query, v, strict=True)))
            return 1.0 / (1.0 + distance)

        return euclidean
    query_norm = math.sqrt(sum(map(mul, query, query)))

    def cosine(v: builtins.list[float]) -> float:
        norm = math.sqrt(sum(map(mul, v, v)))
        if not norm or not query_norm:
            return math.nan
        return float(sum(map(mul, query, v)) / (query_norm * norm))

    return cosine


def _dict_or_none(value: Any) -> dict[str, Any] | None:
    # Upstream stores metadata as any value; a result carries it only when it is an object.
    # Numbers come back through JavaScript: an integral one reads as the int it was saved as.
    return js_numbers(dict(value)) if isinstance(value, Mapping) else None


def _rank(entry: tuple[float, str, Any]) -> tuple[float, str]:
    return entry[0], entry[1]


def _top(
    page: builtins.list[Mapping[str, Any]],
    score: Any,
    match: Predicate | None,
    top_k: int,
    query: builtins.list[float],
) -> builtins.list[tuple[float, str, Mapping[str, Any]]]:
    """The page's best ``top_k`` as (-score, id, row), matching rows of the right length only."""
    found = []
    for row in page:
        vector = row.get("embedding")
        if not isinstance(vector, list) or len(vector) != len(query):
            continue
        if match is not None and not match(row.get("metadata")):
            continue
        value = score(vector)
        if math.isfinite(value):
            found.append((-value, str(row.get("id")), row))
    return heapq.nsmallest(top_k, found, key=_rank)
