"""``store.scorers``: evaluation scores, listed newest first by scorer, run, entity or span."""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping
from typing import Any

import orjson

from .._codec import check_document_size, decode_json, json_arg, parse_time, to_iso
from .._errors import ValidationError
from .._models import Page, Score, coerce
from .._paging import IndexQuery, check_paging
from ._base import Domain, check_id, no_extras, now_iso, strip_system

__all__ = ["Scorers"]

TABLE = "mastra_scorers"

RECORD_COLUMNS = (
    "scorer",
    "entity",
    "metadata",
    "preprocessStepResult",
    "extractStepResult",
    "analyzeStepResult",
    "additionalContext",
    "requestContext",
)
"""Free-form object columns: stored as they are when Convex accepts them, else as JSON text
(unambiguous: a string is never a valid value here)."""
VALUE_COLUMNS = ("input", "output")
"""Free-form columns of any JSON value, strings included: stored as they are when Convex accepts
them, else wrapped as ``{JSON_MARKER: <JSON text>}``, so a string always reads back as itself."""
JSON_MARKER = "__convex_mastra_json__"
REQUIRED_VALUES = ("scorer", "input", "output")
"""Free-form columns the table requires (null when there is no value)."""


def _is_marker(value: Any) -> bool:
    return isinstance(value, dict) and list(value) == [JSON_MARKER]


def encode_value(value: Any, field: str) -> Any:
    """An input or output value as stored (see VALUE_COLUMNS)."""
    stored = json_arg(value, field)
    if (isinstance(stored, str) and not isinstance(value, str)) or _is_marker(value):
        # A payload that is itself marker-shaped is wrapped too, so it reads back unchanged.
        return {JSON_MARKER: orjson.dumps(value).decode()}
    return stored


def decode_value(stored: Any) -> Any:
    """A stored input or output value."""
    if _is_marker(stored) and isinstance(stored[JSON_MARKER], str):
        return decode_json(stored[JSON_MARKER])
    return stored if isinstance(stored, str) else decode_json(stored)


def score_from_row(row: Mapping[str, Any]) -> Score:
    """A stored score row as a Score."""
    fields = strip_system(row)
    for column in RECORD_COLUMNS:
        if column in fields:
            fields[column] = decode_json(fields[column])
    for column in VALUE_COLUMNS:
        if column in fields:
            fields[column] = decode_value(fields[column])
    return Score.model_validate(fields)


def score_record(score: Score, *, clear_missing: bool) -> dict[str, Any]:
    """A Score as the stored row; checks JSON and size first.

    With ``clear_missing``, absent optional columns are sent as null, which our handler reads as
    "no value" (so an upsert leaves nothing of the row it replaces); the stock handler refuses
    nulls in optional columns, so there they are left out.
    """
    no_extras(score, "score")
    if not math.isfinite(score.score):
        raise ValidationError(f"score must be a finite number, not {score.score}", field="score")
    record: dict[str, Any] = {}
    for key, value in score.model_dump(by_alias=True, mode="python").items():
        if key in ("createdAt", "updatedAt"):
            record[key] = to_iso(value)
        elif value is not None:
            if key in RECORD_COLUMNS:
                value = json_arg(value, f"score.{key}")
            elif key in VALUE_COLUMNS:
                value = encode_value(value, f"score.{key}")
            record[key] = value
        elif key in REQUIRED_VALUES or clear_missing:
            record[key] = None
    check_document_size(score.id, record)
    return record


def _given(data: Mapping[str, Any], *names: str) -> bool:
    return any(data.get(name) is not None for name in names)


class Scorers(Domain):
    """Scores: save, get, and list by scorer, run, entity or span."""

    async def save(self, score: Score | Mapping[str, Any]) -> Score:
        """Insert a score, or replace the one with the same id; returns it as stored.

        An id is generated when absent. A caller-supplied id is kept: saving it again replaces
        that score (latest write wins) and keeps its first ``createdAt``. ``updatedAt`` is now.
        """
        now = parse_time(now_iso())
        if isinstance(score, Score):
            model, supplied_id = score, True
        else:
            if not isinstance(score, Mapping):
                raise ValidationError(
                    f"score must be a Score or a dict, not {type(score).__name__}", field="score"
                )
            data = dict(score)
            supplied_id = _given(data, "id")
            if not supplied_id:
                data["id"] = str(uuid.uuid4())
            if not _given(data, "createdAt", "created_at"):
                data["createdAt"] = now
            data.pop("updated_at", None)
            data["updatedAt"] = now
            model = coerce(Score, data, "score")
        created = model.created_at
        if supplied_id:
            existing = await self._dispatcher.call("load", TABLE, keys={"id": model.id})
            if existing:
                created = parse_time(existing["createdAt"])
        model = model.model_copy(update={"created_at": created, "updated_at": now})
        record = (await self._handler()).score_record(model)
        await self._dispatcher.call("insert", TABLE, record=record)
        return model

    async def get(self, score_id: str) -> Score | None:
        """The score, or None."""
        check_id(score_id, "score_id")
        row = await self._dispatcher.call("load", TABLE, keys={"id": score_id})
        return score_from_row(row) if row else None

    async def list_by_scorer(
        self,
        scorer_id: str,
        *,
        entity_id: str | None = None,
        entity_type: str | None = None,
        source: str | None = None,
        organization_id: str | None = None,
        project_id: str | None = None,
        page: int = 0,
        per_page: int | None = 100,
    ) -> Page[Score]:
        """One page of a scorer's scores, newest first, optionally of one entity or source."""
        check_id(scorer_id, "scorer_id")
        eq: list[tuple[str, Any]] = [("scorerId", scorer_id)]
        filters: list[tuple[str, Any]] = []
        index = "by_scorer_created"
        if entity_id is not None:
            index = "by_scorer_entity_created"
            eq.append(("entityId", check_id(entity_id, "entity_id")))
            if entity_type is not None:
                eq.append(("entityType", check_id(entity_type, "entity_type")))
        elif entity_type is not None:
            filters.append(("entityType", check_id(entity_type, "entity_type")))
        if source is not None:
            filters.append(("source", check_id(source, "source")))
        return await self._list(index, eq, filters, organization_id, project_id, page, per_page)

    async def list_by_run(
        self,
        run_id: str,
        *,
        organization_id: str | None = None,
        project_id: str | None = None,
        page: int = 0,
        per_page: int | None = 100,
    ) -> Page[Score]:
        """One page of the scores of a run, newest first."""
        eq = [("runId", check_id(run_id, "run_id"))]
        return await self._list(
            "by_run_created", eq, [], organization_id, project_id, page, per_page
        )

    async def list_by_entity(
        self,
        entity_id: str,
        entity_type: str,
        *,
        organization_id: str | None = None,
        project_id: str | None = None,
        page: int = 0,
        per_page: int | None = 100,
    ) -> Page[Score]:
        """One page of the scores of an entity (an agent, a workflow...), newest first."""
        eq = [
            ("entityId", check_id(entity_id, "entity_id")),
            ("entityType", check_id(entity_type, "entity_type")),
        ]
        return await self._list(
            "by_entity_created", eq, [], organization_id, project_id, page, per_page
        )

    async def list_by_span(
        self,
        trace_id: str,
        span_id: str,
        *,
        organization_id: str | None = None,
        project_id: str | None = None,
        page: int = 0,
        per_page: int | None = 100,
    ) -> Page[Score]:
        """One page of the scores of a trace span, newest first."""
        eq = [
            ("traceId", check_id(trace_id, "trace_id")),
            ("spanId", check_id(span_id, "span_id")),
        ]
        return await self._list(
            "by_span_created", eq, [], organization_id, project_id, page, per_page
        )

    async def _list(
        self,
        index: str,
        eq: list[tuple[str, Any]],
        filters: list[tuple[str, Any]],
        organization_id: str | None,
        project_id: str | None,
        page: int,
        per_page: int | None,
    ) -> Page[Score]:
        check_paging(page, per_page)
        if organization_id is not None:
            filters.append(("organizationId", check_id(organization_id, "organization_id")))
        if project_id is not None:
            filters.append(("projectId", check_id(project_id, "project_id")))
        query = IndexQuery(
            table=TABLE,
            index=index,
            sort_field="createdAt",
            eq=tuple(eq),
            filters=tuple(filters),
        )
        return await (await self._rows()).page(
            query, score_from_row, page=page, per_page=per_page, descending=True
        )
