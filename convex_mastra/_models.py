"""Pydantic models of what the store keeps: snake_case attributes, Mastra's camelCase as aliases.

Models accept either spelling (``thread_id`` or ``threadId``) and dump with ``by_alias=True`` to
Mastra's shape. Datetimes are aware, UTC and cut to milliseconds, so a value read back equals the
value written. Fields a model does not declare are kept (``extra="allow"``): data written by a
newer Mastra survives a round trip through this SDK.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Annotated, Any, Generic, TypeVar

import pydantic
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

from ._codec import truncate_ms
from ._errors import ValidationError

__all__ = [
    "MastraModel",
    "Message",
    "MessageContent",
    "Page",
    "Resource",
    "Score",
    "Thread",
    "WorkflowRun",
    "WorkflowSnapshot",
    "coerce",
]

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")

Timestamp = Annotated[datetime, AfterValidator(truncate_ms)]
"""An aware datetime, made UTC and cut to milliseconds (what a JavaScript Date holds). Only the
timestamp fields run this check: a validator on every field would cost a Python call each."""


def utc_now() -> datetime:
    """The current time as a ``Timestamp`` holds it: UTC, whole milliseconds."""
    return truncate_ms(datetime.now(timezone.utc))


def fill_times(data: Any) -> Any:
    """Record input with ``createdAt`` defaulting to now and ``updatedAt`` to ``createdAt``;
    other input is left to validation."""
    if not isinstance(data, Mapping):
        return data
    created = data.get("createdAt", data.get("created_at"))
    updated = data.get("updatedAt", data.get("updated_at"))
    if created is not None and updated is not None:
        return data
    data = dict(data)  # the caller's dict is never changed
    if created is None:
        created = data["createdAt"] = utc_now()
        data.pop("created_at", None)
    if updated is None:
        data["updatedAt"] = created
        data.pop("updated_at", None)
    return data


class MastraModel(BaseModel):
    """Base of every record model: camelCase aliases, unknown fields kept; timestamps are
    ``Timestamp`` (aware, UTC, milliseconds)."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="allow",
        validate_assignment=True,
    )

    def to_mastra(self) -> dict[str, Any]:
        """This record as Mastra's camelCase dict (None values left out)."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="python")


class TimedModel(MastraModel):
    """A record whose ``created_at`` is now when not given (Mastra's stores fill it in) and
    whose ``updated_at`` is ``created_at`` when not given."""

    @model_validator(mode="before")
    @classmethod
    def _fill_times(cls, data: Any) -> Any:
        return fill_times(data)


def coerce(model: type[M], value: M | Mapping[str, Any], what: str) -> M:
    """``value`` as ``model``: instances pass through, dicts are validated (either key spelling)."""
    if isinstance(value, model):
        return value
    if not isinstance(value, Mapping):
        raise ValidationError(
            f"{what} must be a {model.__name__} or a dict, not {type(value).__name__}", field=what
        )
    try:
        # Validation reads the dict and never changes it: only other Mappings are copied.
        return model.model_validate(value if type(value) is dict else dict(value))
    except pydantic.ValidationError as exc:
        raise ValidationError(f"invalid {what}: {_describe(exc)}", field=what) from None


def _describe(exc: pydantic.ValidationError) -> str:
    parts = []
    for error in exc.errors(include_url=False):
        location = ".".join(str(part) for part in error["loc"]) or "value"
        parts.append(f"{location}: {error['msg']}")
    return "; ".join(parts)


class Thread(TimedModel):
    """A conversation thread owned by a resource (a user, an agent, a tenant...)."""

    id: str = Field(min_length=1)
    resource_id: str = Field(min_length=1)
    title: str = ""
    metadata: dict[str, Any] | None = None
    # The defaults only tell type checkers the fields may be left out; TimedModel's
    # validator fills both in first (updated_at from created_at).
    created_at: Timestamp = Field(default_factory=utc_now)
    updated_at: Timestamp = Field(default_factory=utc_now)
    last_message_at: Timestamp | None = None
    """The newest message's ``createdAt``; None until the thread has one (ours, not Mastra's)."""


class MessageContent(MastraModel):
    """Mastra's stored message content, format 2. Unknown fields are kept as they are."""

    format: int = 2
    parts: list[Any] = Field(default_factory=list)
    content: str | None = None
    metadata: dict[str, Any] | None = None


class Message(MastraModel):
    """One stored message in Mastra's format v2 (``MastraDBMessage``)."""

    id: str = Field(min_length=1)
    role: str = Field(min_length=1)
    created_at: Timestamp = Field(default_factory=utc_now)
    """Now, when not given."""
    thread_id: str | None = None
    resource_id: str | None = None
    type: str = "v2"
    content: MessageContent

    @field_validator("content", mode="before")
    @classmethod
    def _plain_text(cls, value: Any) -> Any:
        # Plain text (format-1 rows, or a caller's string) is one text part, as Mastra's
        # message list reads it.
        if isinstance(value, str):
            return {"format": 2, "content": value, "parts": [{"type": "text", "text": value}]}
        return value


class Resource(TimedModel):
    """What an agent remembers about a resource across threads: working memory and metadata."""

    id: str = Field(min_length=1)
    working_memory: str | None = None
    metadata: dict[str, Any] | None = None
    # The defaults only tell type checkers the fields may be left out; TimedModel's
    # validator fills both in first (updated_at from created_at).
    created_at: Timestamp = Field(default_factory=utc_now)
    updated_at: Timestamp = Field(default_factory=utc_now)


class Page(BaseModel, Generic[T]):
    """One page of a listing. ``total`` counts every match, not just this page."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    items: list[T]
    total: int
    page: int
    per_page: int | None
    """The page size asked for; None when everything was returned in one page."""
    has_more: bool


class WorkflowSnapshot(MastraModel):
    """A workflow run's state as Mastra stores it (``WorkflowRunState``), keys in camelCase.

    Only a few fields are declared; every other key (``activePaths``, ``suspendedPaths``,
    ``result``...) is kept as it is. A snapshot read back dumps exactly the keys it was stored
    with (:meth:`to_mastra`), explicit nulls included.
    """

    run_id: str | None = None
    status: str | None = None
    """``running``, ``suspended``, ``success``, ``failed``... as Mastra sets it."""
    context: dict[str, Any] = Field(default_factory=dict)
    """Step id -> that step's result (``input`` holds the run's input)."""
    timestamp: int | float | None = None

    def to_mastra(self) -> dict[str, Any]:
        """The snapshot as Mastra's dict: the keys that were given or stored, nulls kept."""
        return self.model_dump(by_alias=True, exclude_unset=True, mode="python")


class WorkflowRun(MastraModel):
    """One stored workflow run: its snapshot and when it was first and last written."""

    workflow_name: str = Field(min_length=1)
    run_id: str = Field(min_length=1)
    snapshot: WorkflowSnapshot | str
    """The snapshot; text only when the stored value is not a JSON object."""
    created_at: Timestamp
    updated_at: Timestamp
    resource_id: str | None = None


class Score(MastraModel):
    """One evaluation score, with the columns of Mastra's scorers table."""

    id: str = Field(min_length=1)
    scorer_id: str = Field(min_length=1)
    run_id: str = Field(min_length=1)
    score: float
    source: str = Field(min_length=1)
    """``LIVE`` or ``TEST`` in current Mastra."""
    scorer: dict[str, Any]
    output: Any = None
    input: Any = None
    entity_id: str | None = None
    entity_type: str | None = None
    """``AGENT``, ``WORKFLOW``, a span type... as Mastra sets it."""
    entity: dict[str, Any] | None = None
    trace_id: str | None = None
    span_id: str | None = None
    reason: str | None = None
    metadata: dict[str, Any] | None = None
    preprocess_step_result: dict[str, Any] | None = None
    extract_step_result: dict[str, Any] | None = None
    analyze_step_result: dict[str, Any] | None = None
    preprocess_prompt: str | None = None
    extract_prompt: str | None = None
    analyze_prompt: str | None = None
    reason_prompt: str | None = None
    generate_score_prompt: str | None = None
    generate_reason_prompt: str | None = None
    additional_context: dict[str, Any] | None = None
    request_context: dict[str, Any] | None = None
    resource_id: str | None = None
    thread_id: str | None = None
    organization_id: str | None = None
    project_id: str | None = None
    batch_id: str | None = None
    dataset_id: str | None = None
    dataset_item_id: str | None = None
    created_at: Timestamp
    updated_at: Timestamp
