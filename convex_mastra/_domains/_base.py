"""What every domain shares: the dispatcher, the row pager and input checks."""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from .._codec import to_iso
from .._dispatch import Dispatcher
from .._errors import ConvexMastraError, PartialWriteError, ValidationError

if TYPE_CHECKING:
    from .._handlers import Handler, HandlerChoice
    from .._paging import Rows

__all__ = [
    "CONFLICT",
    "Conflict",
    "Domain",
    "check_choice",
    "check_direction",
    "check_id",
    "check_ids",
    "check_scalar_filter",
    "in_chunks",
    "no_extras",
    "now_iso",
    "strip_system",
]

SYSTEM_FIELDS = ("_id", "_creationTime")


class Conflict(enum.Enum):
    """A conditional write found the record changed since it was read."""

    CONFLICT = "conflict"


CONFLICT = Conflict.CONFLICT


class Domain:
    """Base of the domain classes: holds the dispatcher, the pager built on it, and the
    store's choice of handler."""

    def __init__(self, dispatcher: Dispatcher, handlers: HandlerChoice) -> None:
        self._dispatcher = dispatcher
        self._handlers = handlers

    async def _handler(self) -> Handler:
        """The deployed handler's operations (chosen once per store)."""
        return await self._handlers.get()

    async def _rows(self) -> Rows:
        """Listings on the deployed handler."""
        return (await self._handlers.get()).rows


async def in_chunks(
    ids: list[str], size: int, what: str, apply: Callable[[list[str]], Awaitable[object]]
) -> None:
    """``apply`` to consecutive chunks of at most ``size`` ids, in order.

    When a call fails after earlier ones were applied, PartialWriteError says which ids were
    and were not; a failure of the first call is raised as it is, since nothing was applied.
    """
    for start in range(0, len(ids), size):
        try:
            await apply(ids[start : start + size])
        except ConvexMastraError as exc:
            if start == 0:
                raise
            done, not_done = ids[:start], ids[start:]
            raise PartialWriteError(
                f"{what} failed after {len(done):,} of {len(ids):,} ids were applied "
                f"({type(exc).__name__}: {exc}). Applied: {_listed(done)}. Not applied, or not "
                f"confirmed: {_listed(not_done)}. The exception's .done and .not_done hold all "
                "of them; repeating the call with .not_done is safe.",
                done=done,
                not_done=not_done,
            ) from exc


def _listed(ids: list[str], shown: int = 10) -> str:
    text = ", ".join(repr(i) for i in ids[:shown])
    return text if len(ids) <= shown else f"{text} and {len(ids) - shown:,} more"


def now_iso() -> str:
    """The current time as a stored timestamp."""
    return to_iso(datetime.now(timezone.utc))


def check_id(value: Any, field: str) -> str:
    """``value`` as a non-blank string id, else ValidationError."""
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(f"{field} must be a non-empty string, not {value!r}", field=field)
    return value


def check_ids(values: Iterable[Any], field: str) -> list[str]:
    """Non-blank string ids, duplicates removed, order kept."""
    if isinstance(values, (str, bytes)):
        raise ValidationError(f"{field} must be a list of ids, not a single string", field=field)
    return list(dict.fromkeys(check_id(value, f"{field}[{i}]") for i, value in enumerate(values)))


def check_scalar_filter(value: Mapping[str, Any] | None, field: str) -> dict[str, Any] | None:
    """A metadata filter: string keys to scalar values (str, int, float, bool, None)."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ValidationError(f"{field} must be a dict of key -> scalar", field=field)
    for key, item in value.items():
        if not isinstance(key, str) or not key:
            raise ValidationError(
                f"{field} keys must be non-empty strings, not {key!r}", field=field
            )
        if item is not None and not isinstance(item, (str, int, float, bool)):
            raise ValidationError(
                f"{field}[{key!r}] must be a scalar (str, int, float, bool or None), not "
                f"{type(item).__name__}",
                field=field,
            )
    return dict(value) or None


def no_extras(model: BaseModel, what: str) -> None:
    """Refuse fields a typed table cannot store (they would be rejected by the deployment)."""
    if model.model_extra:
        names = ", ".join(sorted(model.model_extra))
        raise ValidationError(
            f"{what} has fields the table does not store: {names}; keep them in metadata",
            field=what,
        )


def strip_system(row: Mapping[str, Any]) -> dict[str, Any]:
    """A stored row without Convex's system fields."""
    return {key: value for key, value in row.items() if key not in SYSTEM_FIELDS}


def check_direction(direction: str) -> bool:
    """``"ASC"`` or ``"DESC"`` (any case); True for descending."""
    if not isinstance(direction, str) or direction.upper() not in ("ASC", "DESC"):
        raise ValidationError(
            f"direction must be 'ASC' or 'DESC', not {direction!r}", field="direction"
        )
    return direction.upper() == "DESC"


def check_choice(value: Any, choices: Mapping[str, str], field: str) -> str:
    """``value`` looked up in ``choices`` (accepted spellings -> stored field name)."""
    if isinstance(value, str) and value in choices:
        return choices[value]
    accepted = ", ".join(repr(choice) for choice in choices)
    raise ValidationError(f"{field} must be one of {accepted}, not {value!r}", field=field)
