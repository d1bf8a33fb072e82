"""How values are stored: the encodings @mastra/convex uses, so both SDKs read each other's rows.

- Timestamps are JavaScript ISO strings with millisecond precision and ``Z``. Python datetimes are
  truncated to the millisecond on the way in, so a value read back equals the value written and
  sorts the same as rows written by TypeScript.
- Free-form JSON (metadata, message content, snapshots, score payloads) is JSON as JavaScript
  reads it: string keys, finite numbers, integers within +-(2**53 - 1). Anything else is refused
  with ValidationError before a call, because the TypeScript side would silently change it.
- Convex refuses some object keys (``$``-prefixed, non-ASCII, empty, too long) and deep nesting,
  in stored documents and in function arguments alike. Such values travel as JSON text, which the
  handler stores as text; readers accept both forms.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

import orjson
from convex import ConvexInt64

from ._errors import RecordTooLargeError, ValidationError

__all__ = [
    "MAX_DOCUMENT_BYTES",
    "check_document_size",
    "check_json",
    "convex_value_problem",
    "decode_json",
    "document_size",
    "js_numbers",
    "json_arg",
    "json_text",
    "parse_time",
    "plain_json",
    "to_iso",
    "truncate_ms",
]

MAX_DOCUMENT_BYTES = 1024 * 1024
"""Convex's limit on one stored document."""

MAX_SAFE_INTEGER = 2**53 - 1
"""Largest integer a JavaScript number (and a Convex float64) holds exactly."""

# Limits from Convex's documentation; a value beyond them is stored as JSON text instead.
_MAX_DEPTH = 16
# Nesting Convex allows in any value, function arguments included (documents: _MAX_DEPTH).
_MAX_VALUE_DEPTH = 64
_MAX_ARRAY = 8192
_MAX_FIELDS = 1024
_MAX_KEY = 1024
# Deeper than this is refused outright: orjson and JSON.parse both have recursion limits.
_MAX_JSON_DEPTH = 200


# Convex adds _id and _creationTime to every stored document and counts them in its size.
_SYSTEM_FIELDS_BYTES = 38 + 23


def document_size(fields: Mapping[str, Any]) -> int:
    """The size Convex gives a stored document with these fields, system fields included.

    The same count as Convex's ``getDocumentSize``, which the handler checks against
    MAX_DOCUMENT_BYTES: an estimate that is short of it lets the handler refuse a record that
    passed here, after earlier calls of the same batch were written.
    """
    return _value_size(fields) + _SYSTEM_FIELDS_BYTES


def _value_size(value: Any) -> int:
    kind = type(value)
    if kind is str:
        return 2 + _utf8_size(value)
    if kind is dict:  # the common case first: rows are plain dicts of plain values
        return 2 + sum(_utf8_size(key) + 1 + _value_size(item) for key, item in value.items())
    if value is None or isinstance(value, bool):
        return 1
    if isinstance(value, (int, float, ConvexInt64)):
        return 9
    if isinstance(value, str):
        return 2 + _utf8_size(value)
    if isinstance(value, (bytes, bytearray)):
        return 2 + len(value)
    if isinstance(value, Mapping):
        return 2 + sum(_utf8_size(str(key)) + 1 + _value_size(item) for key, item in value.items())
    if isinstance(value, (list, tuple)):
        return 2 + sum(_value_size(item) for item in value)
    return 0


def _utf8_size(text: Any) -> int:
    if type(text) is not str:
        text = str(text)
    # ASCII text, nearly all of it, is one byte a character: no need to encode it to count.
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def check_document_size(record_id: str, fields: Mapping[str, Any]) -> None:
    """Raise RecordTooLargeError when a document with ``fields`` would exceed Convex's limit."""
    size = document_size(fields)
    if size > MAX_DOCUMENT_BYTES:
        raise RecordTooLargeError(record_id, size, MAX_DOCUMENT_BYTES)


def truncate_ms(value: datetime) -> datetime:
    """``value`` in UTC, cut to whole milliseconds (what a JavaScript Date can hold)."""
    zone = value.tzinfo
    if zone is None:
        raise ValidationError(
            f"naive datetime {value.isoformat()} has no time zone; pass an aware datetime such "
            "as datetime.now(timezone.utc)"
        )
    if zone is not timezone.utc:
        value = value.astimezone(timezone.utc)
    micro = value.microsecond
    # Most values are already UTC and cut (model fields are): returned as they are.
    return value if not micro % 1000 else value.replace(microsecond=micro - micro % 1000)


def to_iso(value: datetime) -> str:
    """JavaScript's ``Date.prototype.toISOString()`` of ``value``: ``2026-01-02T03:04:05.678Z``
    (years below 1000 zero-padded to four digits, as JavaScript does)."""
    if value.tzinfo is not timezone.utc:
        value = truncate_ms(value)  # refuses a naive value, converts others to UTC
    # isoformat cuts to milliseconds as truncate_ms does (never rounds up), and a UTC value
    # ends in "+00:00", which becomes "Z" (cheaper than formatting a naive copy).
    return value.isoformat(timespec="milliseconds")[:-6] + "Z"


def parse_time(value: Any) -> datetime:
    """A stored timestamp (ISO text, epoch milliseconds or datetime) as an aware UTC datetime."""
    if isinstance(value, datetime):
        return truncate_ms(value if value.tzinfo else value.replace(tzinfo=timezone.utc))
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return datetime.fromtimestamp(value / 1000, tz=timezone.utc)
    if isinstance(value, str):
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return truncate_ms(parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc))
    raise ValueError(f"not a timestamp: {value!r}")


def check_json(value: Any, field: object) -> None:
    """Raise ValidationError unless ``value`` is JSON that JavaScript reads back unchanged.
    ``field`` names it in the error: any object whose ``str`` does, formatted only then."""
    if _json_ok(value, 0):
        return
    where = str(field)
    problem = _json_problem(value, where, 0)
    if problem:
        raise ValidationError(problem, field=where)


def plain_json(value: Any) -> bool:
    """Whether ``value`` is made only of dict, list, str, int, float, bool and None (those very
    types, no subclasses) and check_json takes it: JSON that orjson writes as it stands."""
    return _json_ok(value, 0, strict=True)


def _json_ok(value: Any, depth: int, strict: bool = False) -> bool:
    """``_json_problem(value) is None``, the common case fast: plain types are checked without
    building the path of every value (only a refusal needs the path, and is walked again).
    ``strict``: anything but the plain types is refused rather than checked in full."""
    kind = type(value)
    if kind is str:
        return value.isascii() or _valid_unicode(value)
    if value is None or kind is bool:
        return True
    if kind is float:
        return math.isfinite(value)
    if kind is int:
        return bool(-MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER)
    if depth >= _MAX_JSON_DEPTH:
        return False
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str or not (key.isascii() or _valid_unicode(key)):
                return False
            if not _json_ok(item, depth + 1, strict):
                return False
        return True
    if kind is list:
        return all(_json_ok(item, depth + 1, strict) for item in value)
    # Subclasses and other Mappings: the full rules (or, strict, no).
    return not strict and _json_problem(value, "", depth) is None


def _json_problem(value: Any, path: str, depth: int) -> str | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, str):
        return None if _valid_unicode(value) else f"{path}: text holds an unpaired surrogate"
    if isinstance(value, int):
        if -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            return None
        return (
            f"{path}: integer {value} is outside +-(2**53 - 1), which JavaScript cannot hold "
            "exactly; store it as a string"
        )
    if isinstance(value, float):
        return None if math.isfinite(value) else f"{path}: {value} is not a JSON number"
    if depth >= _MAX_JSON_DEPTH:
        return f"{path}: nested deeper than {_MAX_JSON_DEPTH} levels"
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"{path}: key {key!r} is not a string"
            if not _valid_unicode(key):
                return f"{path}: a key holds an unpaired surrogate"
            problem = _json_problem(item, f"{path}.{key}", depth + 1)
            if problem:
                return problem
        return None
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            problem = _json_problem(item, f"{path}[{i}]", depth + 1)
            if problem:
                return problem
        return None
    return (
        f"{path}: {type(value).__name__} is not JSON (use str, int, float, bool, None, list, dict)"
    )


def _valid_unicode(text: str) -> bool:
    # Convex, orjson and JavaScript's JSON all need valid Unicode: no unpaired surrogates.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def json_text(value: Any, field: object) -> str:
    """``value`` checked and serialized as compact JSON text."""
    check_json(value, field)
    return orjson.dumps(value).decode()


def _key_problem(key: str) -> str | None:
    if not key:
        return "Convex refuses empty field names"
    if len(key) > _MAX_KEY:
        return f"Convex refuses field names over {_MAX_KEY} characters"
    if key.startswith("$"):
        return "Convex reserves field names that start with '$'"
    if not all(32 <= ord(char) < 127 for char in key):
        return "Convex field names are printable ASCII only"
    if key == "__proto__":
        # Convex takes it, but JavaScript readers assign it with `out[key] = ...`, which sets
        # the prototype instead, and the key is lost. As JSON text it survives.
        return "JavaScript readers drop a '__proto__' key"
    return None


def _convex_problem(value: Any, path: str, depth: int, max_depth: int) -> str | None:
    if value is None or isinstance(value, (str, bool, int, float)):
        return None
    if depth >= max_depth:
        return f"{path}: nested deeper than the {max_depth} levels Convex allows"
    if isinstance(value, Mapping):
        if len(value) > _MAX_FIELDS:
            return f"{path}: {len(value):,} keys, more than the {_MAX_FIELDS:,} Convex allows"
        for key, item in value.items():
            problem = _key_problem(key)
            if problem:
                return f"{path}: key {key!r}: {problem}"
            problem = _convex_problem(item, f"{path}.{key}", depth + 1, max_depth)
            if problem:
                return problem
        return None
    if isinstance(value, (list, tuple)):
        if len(value) > _MAX_ARRAY:
            return f"{path}: {len(value):,} items, more than the {_MAX_ARRAY:,} Convex allows"
        for i, item in enumerate(value):
            problem = _convex_problem(item, f"{path}[{i}]", depth + 1, max_depth)
            if problem:
                return problem
        return None
    return f"{path}: {type(value).__name__} is not a Convex value"


def _convex_safe(value: Any, depth: int = 0) -> bool:
    return _convex_problem(value, "", depth, _MAX_DEPTH) is None


def convex_value_problem(value: Any, path: str) -> str | None:
    """Why Convex would refuse checked JSON ``value`` as a function argument, or None.

    Object keys are field names to Convex: a ``$``-prefixed, non-ASCII or empty key fails the
    whole call before the function runs.
    """
    return _convex_problem(value, path, 1, _MAX_VALUE_DEPTH)


def js_numbers(value: Any) -> Any:
    """A value that came back through JavaScript, with integral numbers as ints.

    JavaScript has one number type, so a stored ``2.0`` is read as ``2``, as ``json.loads``
    reads the same data written by JavaScript.
    """
    return _ints(value)


def json_arg(value: Any, field: str) -> Any:
    """Free-form JSON as a function argument: itself when Convex accepts it, else JSON text."""
    check_json(value, field)
    # Depth 1: the value becomes a field of a stored document, one level below its root.
    return value if _convex_safe(value, 1) else orjson.dumps(value).decode()


def decode_json(value: Any) -> Any:
    """A stored free-form JSON value (raw or JSON text) as Python JSON.

    Convex hands numbers back as floats; integral ones become ints, as ``json.loads`` would read
    the same data written by JavaScript. In JSON text, integers beyond +-(2**53 - 1) are read as
    the doubles JavaScript meant: it prints a double such as 2.637723827267237e16 as
    ``26377238272672370``, which as an exact int would be another number.
    """
    if isinstance(value, str):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            return value
        return _ints(value, from_text=True)
    return _ints(value)


def _ints(value: Any, *, from_text: bool = False) -> Any:
    if isinstance(value, float):
        if value.is_integer() and abs(value) <= MAX_SAFE_INTEGER:
            return int(value)
        return value
    if from_text and type(value) is int and abs(value) > MAX_SAFE_INTEGER:
        return float(value)
    if isinstance(value, dict):
        return {key: _ints(item, from_text=from_text) for key, item in value.items()}
    if isinstance(value, list):
        return [_ints(item, from_text=from_text) for item in value]
    return value
