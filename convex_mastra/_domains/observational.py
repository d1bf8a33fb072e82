"""``store.observational_memory``: Mastra's observational memory (@mastra/core's OM methods of
``MemoryStorage``), one row per generation in @mastra/convex's ``mastra_observational_memory``.

A thread-scoped memory is looked up by ``thread:<id>``, a resource-scoped one by
``resource:<id>``; the newest generation is the current record. Every change to a record is one
mutation on the handler (or, for the flags, a patch of the fields it sets), so observers,
reflectors and flag setters running at once never lose each other's writes.
"""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from .._codec import decode_json, json_text, to_iso
from .._errors import NotFoundError, ValidationError
from .._models import MastraModel, Timestamp, coerce, utc_now
from ._base import Domain, check_id, check_ids, now_iso, strip_system

__all__ = ["BufferedActivation", "ObservationalMemory", "ObservationalMemoryRecord"]

TABLE = "mastra_observational_memory"


class ObservationalMemoryRecord(MastraModel):
    """One generation of a thread's or resource's observational memory."""

    id: str = Field(min_length=1)
    scope: Literal["thread", "resource"]
    thread_id: str | None = None
    resource_id: str | None = None
    created_at: Timestamp = Field(default_factory=utc_now)
    updated_at: Timestamp = Field(default_factory=utc_now)
    last_observed_at: Timestamp | None = None
    origin_type: str = "initial"
    generation_count: int = 0
    active_observations: str = ""
    buffered_observation_chunks: list[dict[str, Any]] | None = None
    buffered_observations: str | None = None
    buffered_observation_tokens: int | None = None
    buffered_reflection: str | None = None
    buffered_reflection_tokens: int | None = None
    buffered_reflection_input_tokens: int | None = None
    reflected_observation_line_count: int | None = None
    total_tokens_observed: int = 0
    observation_token_count: int = 0
    pending_message_tokens: int = 0
    is_reflecting: bool = False
    is_observing: bool = False
    is_buffering_observation: bool = False
    is_buffering_reflection: bool = False
    last_buffered_at_tokens: int = 0
    last_buffered_at_time: Timestamp | None = None
    config: dict[str, Any] = Field(default_factory=dict)
    metadata: dict[str, Any] | None = None
    observed_message_ids: list[str] | None = None
    observed_timezone: str | None = None


class BufferedActivation(MastraModel):
    """What :meth:`ObservationalMemory.swap_buffered_to_active` moved into the active
    observations (Mastra's ``SwapBufferedToActiveResult``)."""

    chunks_activated: int = 0
    message_tokens_activated: int = 0
    observation_tokens_activated: int = 0
    messages_activated: int = 0
    activated_cycle_ids: list[str] = Field(default_factory=list)
    activated_message_ids: list[str] = Field(default_factory=list)
    observations: str | None = None
    per_chunk: list[dict[str, Any]] | None = None
    suggested_continuation: str | None = None
    current_task: str | None = None


def lookup_key(thread_id: str | None, resource_id: str | None) -> str:
    """The key a memory is found by: its thread's, else its resource's (as upstream)."""
    if thread_id:
        check_id(thread_id, "thread_id")
        return f"thread:{thread_id}"
    if not resource_id:
        raise ValidationError("thread_id or resource_id is required", field="resource_id")
    check_id(resource_id, "resource_id")
    return f"resource:{resource_id}"


def _iso(value: datetime | str | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return to_iso(value)


def _chunk_out(chunk: Mapping[str, Any]) -> dict[str, Any]:
    """A buffered chunk as stored: its two dates as ISO text."""
    out = dict(chunk)
    for key in ("lastObservedAt", "createdAt"):
        if isinstance(out.get(key), datetime):
            out[key] = to_iso(out[key])
    return out


def record_row(record: ObservationalMemoryRecord) -> dict[str, Any]:
    """The row @mastra/convex writes for a record (JSON text for config, metadata, chunks)."""
    chunks = [_chunk_out(chunk) for chunk in record.buffered_observation_chunks or ()]
    return {
        "id": record.id,
        "lookupKey": lookup_key(record.thread_id, record.resource_id),
        "scope": record.scope,
        "resourceId": record.resource_id,
        "threadId": record.thread_id or None,
        "activeObservations": record.active_observations,
        "activeObservationsPendingUpdate": record.buffered_observations,
        "originType": record.origin_type,
        "config": json_text(record.config, "config"),
        "generationCount": record.generation_count,
        "lastObservedAt": _iso(record.last_observed_at),
        "lastReflectionAt": None,
        "pendingMessageTokens": record.pending_message_tokens,
        "totalTokensObserved": record.total_tokens_observed,
        "observationTokenCount": record.observation_token_count,
        "observedMessageIds": record.observed_message_ids,
        "bufferedObservationChunks": json_text(chunks, "buffered_observation_chunks"),
        "bufferedReflection": record.buffered_reflection,
        "bufferedReflectionTokens": record.buffered_reflection_tokens,
        "bufferedReflectionInputTokens": record.buffered_reflection_input_tokens,
        "reflectedObservationLineCount": record.reflected_observation_line_count,
        "isObserving": record.is_observing,
        "isReflecting": record.is_reflecting,
        "isBufferingObservation": record.is_buffering_observation,
        "isBufferingReflection": record.is_buffering_reflection,
        "lastBufferedAtTokens": record.last_buffered_at_tokens,
        "lastBufferedAtTime": _iso(record.last_buffered_at_time),
        "observedTimezone": record.observed_timezone,
        "metadata": None if record.metadata is None else json_text(record.metadata, "metadata"),
        "createdAt": to_iso(record.created_at),
        "updatedAt": to_iso(record.updated_at),
    }


def record_from_row(row: Mapping[str, Any]) -> ObservationalMemoryRecord:
    """A stored row as a record, read as upstream reads it."""
    fields = strip_system(row)
    chunks = decode_json(fields.get("bufferedObservationChunks"))
    config = decode_json(fields.get("config"))
    metadata = decode_json(fields.get("metadata"))
    return ObservationalMemoryRecord.model_validate(
        {
            "id": fields["id"],
            "scope": fields["scope"],
            "threadId": fields.get("threadId") or None,
            "resourceId": fields.get("resourceId"),
            "createdAt": fields["createdAt"],
            "updatedAt": fields["updatedAt"],
            "lastObservedAt": fields.get("lastObservedAt") or None,
            "originType": fields.get("originType") or "initial",
            "generationCount": int(fields.get("generationCount") or 0),
            "activeObservations": fields.get("activeObservations") or "",
            "bufferedObservationChunks": chunks if isinstance(chunks, list) and chunks else None,
            "bufferedObservations": fields.get("activeObservationsPendingUpdate") or None,
            "bufferedObservationTokens": fields.get("bufferedObservationTokens") or None,
            "bufferedReflection": fields.get("bufferedReflection") or None,
            "bufferedReflectionTokens": fields.get("bufferedReflectionTokens") or None,
            "bufferedReflectionInputTokens": fields.get("bufferedReflectionInputTokens") or None,
            "reflectedObservationLineCount": fields.get("reflectedObservationLineCount") or None,
            "totalTokensObserved": int(fields.get("totalTokensObserved") or 0),
            "observationTokenCount": int(fields.get("observationTokenCount") or 0),
            "pendingMessageTokens": int(fields.get("pendingMessageTokens") or 0),
            "isReflecting": bool(fields.get("isReflecting")),
            "isObserving": bool(fields.get("isObserving")),
            "isBufferingObservation": bool(fields.get("isBufferingObservation")),
            "isBufferingReflection": bool(fields.get("isBufferingReflection")),
            "lastBufferedAtTokens": int(fields.get("lastBufferedAtTokens") or 0),
            "lastBufferedAtTime": fields.get("lastBufferedAtTime") or None,
            "config": config if isinstance(config, dict) else {},
            "metadata": metadata if isinstance(metadata, dict) else None,
            "observedMessageIds": fields.get("observedMessageIds") or None,
            "observedTimezone": fields.get("observedTimezone") or None,
        }
    )


def _count(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValidationError(f"{field} must be a non-negative integer", field=field)
    return value


def _number(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        raise ValidationError(f"{field} must be a number", field=field)
    return value


class ObservationalMemory(Domain):
    """Observational memory: the current record and its history, new generations, observations
    and reflections (active and buffered), and the flags observers and reflectors set."""

    # -- reading ---------------------------------------------------------------------------------

    async def get(
        self, thread_id: str | None, resource_id: str | None = None
    ) -> ObservationalMemoryRecord | None:
        """The newest generation of the thread's memory (or, with no thread, the
        resource's), or None."""
        key = lookup_key(thread_id, resource_id)
        row = await self._dispatcher.call("omGetLatest", TABLE, lookupKey=key)
        return record_from_row(row) if row else None

    async def history(
        self,
        thread_id: str | None,
        resource_id: str | None = None,
        *,
        limit: int = 10,
        start: datetime | None = None,
        end: datetime | None = None,
        offset: int = 0,
    ) -> builtins.list[ObservationalMemoryRecord]:
        """Generations newest first: ``limit`` of them after skipping ``offset``, created
        between ``start`` and ``end`` (both inclusive)."""
        key = lookup_key(thread_id, resource_id)
        rows = await self._dispatcher.call(
            "omGetHistory",
            TABLE,
            lookupKey=key,
            limit=_count(limit, "limit"),
            offset=_count(offset, "offset"),
            **{"from": _iso(start), "to": _iso(end)},
        )
        return [record_from_row(row) for row in rows or ()]

    # -- new generations -------------------------------------------------------------------------

    async def initialize(
        self,
        *,
        scope: Literal["thread", "resource"],
        thread_id: str | None = None,
        resource_id: str | None = None,
        config: Mapping[str, Any] | None = None,
        observed_timezone: str | None = None,
    ) -> ObservationalMemoryRecord:
        """Start a memory: its first, empty generation."""
        now = utc_now()
        record = coerce(
            ObservationalMemoryRecord,
            {
                "id": str(uuid.uuid4()),
                "scope": scope,
                "threadId": thread_id,
                "resourceId": resource_id,
                "createdAt": now,
                "updatedAt": now,
                "config": dict(config or {}),
                "observedTimezone": observed_timezone,
            },
            "observational memory",
        )
        return await self.insert_record(record)

    async def insert_record(
        self, record: ObservationalMemoryRecord | Mapping[str, Any]
    ) -> ObservationalMemoryRecord:
        """Store a whole record as given (a copy or an import of a generation)."""
        model = coerce(ObservationalMemoryRecord, record, "observational memory")
        check_id(model.id, "record.id")
        await self._dispatcher.call("insert", TABLE, record=record_row(model))
        return model

    async def create_reflection_generation(
        self, current: ObservationalMemoryRecord, reflection: str, token_count: int
    ) -> ObservationalMemoryRecord:
        """Start the next generation with ``reflection`` as its observations."""
        if not isinstance(reflection, str):
            raise ValidationError("reflection must be text", field="reflection")
        now = utc_now()
        record = current.model_copy(
            update={
                "id": str(uuid.uuid4()),
                "created_at": now,
                "updated_at": now,
                "origin_type": "reflection",
                "generation_count": current.generation_count + 1,
                "active_observations": reflection,
                "observation_token_count": _count(token_count, "token_count"),
                "pending_message_tokens": 0,
                "is_reflecting": False,
                "is_observing": False,
                "is_buffering_observation": False,
                "is_buffering_reflection": False,
                "last_buffered_at_tokens": 0,
                "last_buffered_at_time": None,
                "buffered_observation_chunks": None,
                "buffered_observations": None,
                "buffered_reflection": None,
                "buffered_reflection_tokens": None,
                "buffered_reflection_input_tokens": None,
                "reflected_observation_line_count": None,
                "observed_message_ids": None,
            }
        )
        row = record_row(record)
        row["lastReflectionAt"] = to_iso(now)
        await self._dispatcher.call("insert", TABLE, record=row)
        return record

    # -- observations ----------------------------------------------------------------------------

    async def update_active_observations(
        self,
        record_id: str,
        *,
        observations: str,
        token_count: int,
        last_observed_at: datetime,
        observed_message_ids: Sequence[str] | None = None,
    ) -> None:
        """Replace the active observations; pending message tokens go to 0 and the tokens
        observed add up, in one mutation."""
        check_id(record_id, "record_id")
        if not isinstance(observations, str):
            raise ValidationError("observations must be text", field="observations")
        await self._update(
            "omUpdateActive",
            id=record_id,
            observations=observations,
            tokenCount=_count(token_count, "token_count"),
            lastObservedAt=_iso(last_observed_at),
            observedMessageIds=None
            if observed_message_ids is None
            else check_ids(observed_message_ids, "observed_message_ids"),
            updatedAt=now_iso(),
        )

    async def update_buffered_observations(
        self,
        record_id: str,
        chunk: Mapping[str, Any],
        *,
        last_buffered_at_time: datetime | None = None,
    ) -> None:
        """Append a buffered chunk (``cycleId``, ``observations``, ``tokenCount``,
        ``messageIds``, ``messageTokens``, ``lastObservedAt``...) in one mutation, so
        concurrent buffers all land."""
        check_id(record_id, "record_id")
        if not isinstance(chunk, Mapping) or not isinstance(chunk.get("observations"), str):
            raise ValidationError("chunk must be a dict with observations text", field="chunk")
        stored = _chunk_out({"id": f"ombuf-{uuid.uuid4()}", **chunk, "createdAt": now_iso()})
        await self._update(
            "omAppendBufferedChunk",
            id=record_id,
            chunk=json_safe(stored),
            lastBufferedAtTime=_iso(last_buffered_at_time),
            updatedAt=now_iso(),
        )

    async def swap_buffered_to_active(
        self,
        record_id: str,
        *,
        activation_ratio: float,
        message_tokens_threshold: float,
        current_pending_tokens: float,
        force_max_activation: bool = False,
        last_observed_at: datetime | None = None,
        buffered_chunks: Sequence[Mapping[str, Any]] | None = None,
    ) -> BufferedActivation:
        """Move the oldest buffered chunks into the active observations, as many as Mastra's
        activation rule picks, in one mutation."""
        check_id(record_id, "record_id")
        result = await self._update(
            "omSwapBuffered",
            id=record_id,
            activationRatio=_number(activation_ratio, "activation_ratio"),
            messageTokensThreshold=_number(message_tokens_threshold, "message_tokens_threshold"),
            currentPendingTokens=_number(current_pending_tokens, "current_pending_tokens"),
            forceMaxActivation=bool(force_max_activation),
            lastObservedAt=_iso(last_observed_at),
            bufferedChunks=None
            if buffered_chunks is None
            else [json_safe(_chunk_out(chunk)) for chunk in buffered_chunks],
            now=now_iso(),
        )
        return BufferedActivation.model_validate(result or {})

    # -- reflections -----------------------------------------------------------------------------

    async def update_buffered_reflection(
        self,
        record_id: str,
        *,
        reflection: str,
        token_count: int,
        input_token_count: int,
        reflected_observation_line_count: int,
    ) -> None:
        """Append to the buffered reflection and add up its tokens, in one mutation."""
        check_id(record_id, "record_id")
        if not isinstance(reflection, str):
            raise ValidationError("reflection must be text", field="reflection")
        await self._update(
            "omUpdateBufferedReflection",
            id=record_id,
            reflection=reflection,
            tokenCount=_count(token_count, "token_count"),
            inputTokenCount=_count(input_token_count, "input_token_count"),
            reflectedObservationLineCount=_count(
                reflected_observation_line_count, "reflected_observation_line_count"
            ),
            updatedAt=now_iso(),
        )

    async def swap_buffered_reflection_to_active(
        self, current: ObservationalMemoryRecord, token_count: int
    ) -> ObservationalMemoryRecord:
        """Start the next generation from the buffered reflection plus the lines observed
        since it began, and clear the buffer, in one mutation."""
        current_row = {
            "id": current.id,
            "lookupKey": lookup_key(current.thread_id, current.resource_id),
            "scope": current.scope,
            "threadId": current.thread_id or None,
            "resourceId": current.resource_id,
            "config": json_text(current.config, "config"),
            "metadata": None if current.metadata is None else json_text(current.metadata, "m"),
            "observedTimezone": current.observed_timezone,
            "lastObservedAt": _iso(current.last_observed_at),
            "totalTokensObserved": current.total_tokens_observed,
            "generationCount": current.generation_count,
        }
        row = await self._dispatcher.call(
            "omSwapBufferedReflection",
            TABLE,
            currentRecord=current_row,
            newId=str(uuid.uuid4()),
            tokenCount=_count(token_count, "token_count"),
            now=now_iso(),
        )
        return record_from_row(row)

    # -- flags, tokens, config -------------------------------------------------------------------

    async def set_reflecting(self, record_id: str, value: bool) -> None:
        """Set ``is_reflecting`` (a patch of that field alone)."""
        await self._patch(record_id, {"isReflecting": _flag(value)}, "set_reflecting")

    async def set_observing(self, record_id: str, value: bool) -> None:
        """Set ``is_observing``."""
        await self._patch(record_id, {"isObserving": _flag(value)}, "set_observing")

    async def set_buffering_observation(
        self, record_id: str, value: bool, *, last_buffered_at_tokens: int | None = None
    ) -> None:
        """Set ``is_buffering_observation`` (and ``last_buffered_at_tokens`` when given)."""
        fields: dict[str, Any] = {"isBufferingObservation": _flag(value)}
        if last_buffered_at_tokens is not None:
            fields["lastBufferedAtTokens"] = _count(
                last_buffered_at_tokens, "last_buffered_at_tokens"
            )
        await self._patch(record_id, fields, "set_buffering_observation")

    async def set_buffering_reflection(self, record_id: str, value: bool) -> None:
        """Set ``is_buffering_reflection``."""
        await self._patch(
            record_id, {"isBufferingReflection": _flag(value)}, "set_buffering_reflection"
        )

    async def set_pending_message_tokens(self, record_id: str, token_count: int) -> None:
        """Set ``pending_message_tokens``."""
        await self._patch(
            record_id,
            {"pendingMessageTokens": _count(token_count, "token_count")},
            "set_pending_message_tokens",
        )

    async def update_config(self, record_id: str, config: Mapping[str, Any]) -> None:
        """Deep-merge ``config`` into the record's, in one mutation."""
        check_id(record_id, "record_id")
        if not isinstance(config, Mapping):
            raise ValidationError("config must be a dict", field="config")
        await self._update(
            "omUpdateConfig",
            id=record_id,
            config=json_text(dict(config), "config"),
            updatedAt=now_iso(),
        )

    async def clear(self, thread_id: str | None, resource_id: str | None = None) -> None:
        """Delete every generation of the memory."""
        key = lookup_key(thread_id, resource_id)
        rows = await self._dispatcher.call(
            "queryTable", TABLE, filters=[{"field": "lookupKey", "value": key}]
        )
        ids = [row["id"] for row in rows or ()]
        if ids:
            await self._dispatcher.call("deleteMany", TABLE, ids=ids)

    async def _update(self, op: str, **fields: Any) -> Any:
        # The arguments are checked as they are built, before the handler is asked for.
        return await (await self._handler()).om_update(op, **fields)

    async def _patch(self, record_id: str, fields: dict[str, Any], op: str) -> None:
        check_id(record_id, "record_id")
        found = await self._dispatcher.call(
            "patch", TABLE, id=record_id, record={**fields, "updatedAt": now_iso()}
        )
        if not found:
            raise NotFoundError(
                f"observational memory record {record_id!r} not found", op=op, table=TABLE
            )


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValidationError("a flag must be True or False", field="value")
    return value


def json_safe(value: dict[str, Any]) -> Any:
    """``value`` as JSON would carry it (checked: no NaN, no huge ints), for op arguments."""
    return decode_json(json_text(value, "chunk"))
