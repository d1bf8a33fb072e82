"""Hypothesis strategies for sloppy and hostile JSON, with an independent oracle.

``values()`` draws free-form JSON as users hand it over: keys starting with ``$`` or ``_``,
non-ASCII, empty, prototype names (``__proto__``), control characters and very long keys;
integers beyond 2**53, NaN and infinities, bytes and other non-JSON objects, unpaired surrogates,
long strings, deep nesting and objects with thousands of keys.

``expected(value)`` says what the SDK must do with it, from the documented rules (docs/limits.md),
not from the SDK's code: ``"store"`` (round-trips exactly), ``"refuse"`` (ValidationError before
anything is written) or ``"too_large"`` (RecordTooLargeError). ``same(a, b)`` compares as JSON
does: numbers by value (``3`` and ``3.0`` are one JSON number), but never a bool for a number.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import orjson
from hypothesis import strategies as st

MAX_SAFE = 2**53 - 1
MAX_DEPTH = 200
"""Containers nested this deep are refused (docs/limits.md: deeper than 200 levels)."""
ONE_MIB = 1024 * 1024

SPECIAL_KEYS = [
    "",
    " ",
    "$",
    "$schema",
    "$bytes",
    "$integer",
    "$float",
    "$id",
    "_",
    "_id",
    "_creationTime",
    "__proto__",
    "constructor",
    "prototype",
    "toString",
    "hasOwnProperty",
    "a.b",
    "a/b",
    "../x",
    'quo"te',
    "back\\slash",
    "tab\there",
    "nul\x00",
    "\x7f",
    "ключ",
    "鍵",
    "🔑",
    "e\u0301",
    "\u202eevil",
    "zero\u200bwidth",
    "k" * 1025,
    "\ud800",
    "lone\udfff",
]

_chars = st.characters(codec="utf-8")
_surrogates = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)
keys = st.one_of(
    st.sampled_from(SPECIAL_KEYS),
    st.text(_chars, max_size=12),
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=12),
)
_text = st.one_of(
    st.text(_chars, max_size=40),
    st.text(st.one_of(_chars, _surrogates), min_size=1, max_size=4),
)
_numbers = st.one_of(
    st.integers(min_value=-MAX_SAFE, max_value=MAX_SAFE),
    st.sampled_from([MAX_SAFE, -MAX_SAFE, 2**53, -(2**53), 2**63, 2**64 + 1, -(2**70)]),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 1e308, -1e-308, 5e-324, 0.1, math.nan, math.inf, -math.inf]),
)
_not_json = st.one_of(
    st.binary(max_size=8),
    st.sampled_from([object(), {1, 2}, frozenset(), complex(1, 2), range(3)]),
)
scalars = st.one_of(st.none(), st.booleans(), _numbers, _text)


def _nested(depth: int, leaf: Any, use_dict: bool) -> Any:
    value = leaf
    for level in range(depth):
        value = {f"l{level}": value} if use_dict else [value]
    return value


deep = st.builds(_nested, st.integers(min_value=1, max_value=260), scalars, st.booleans())
"""A chain of objects or arrays, from 1 to 260 levels: Convex takes 16, the SDK refuses 200."""
wide = st.builds(
    lambda n, value: {f"key{i}": value for i in range(n)},
    st.integers(min_value=900, max_value=6000),
    st.one_of(st.integers(-5, 5), st.just("v")),
)
"""Objects with thousands of keys (Convex takes 1,024 fields per object)."""
long_text = st.builds(
    lambda n, ch: ch * n,
    st.one_of(st.integers(10_000, 300_000), st.integers(900_000, 1_200_000)),
    st.sampled_from(["a", "é", "€", "🔑"]),
)
"""Long strings, some around the 1 MiB record limit (in bytes: 1 to 4 per character)."""


def values(*, allow_bad: bool = True) -> st.SearchStrategy[Any]:
    """Any free-form JSON value a user might pass."""
    leaves = st.one_of(scalars, _not_json) if allow_bad else scalars
    tree = st.recursive(
        leaves,
        lambda children: st.one_of(
            st.lists(children, max_size=5),
            st.dictionaries(keys, children, max_size=5),
        ),
        max_leaves=25,
    )
    return st.one_of(tree, tree, tree, deep, wide, long_text)


def objects(*, allow_bad: bool = True) -> st.SearchStrategy[dict[Any, Any]]:
    """A dict for metadata: odd keys (non-strings too, when ``allow_bad``) to odd values."""
    odd_keys = st.one_of(keys, st.integers(), st.none()) if allow_bad else keys
    return st.one_of(
        st.dictionaries(odd_keys, values(allow_bad=allow_bad), max_size=5),
        wide,
    )


# -- the oracle ----------------------------------------------------------------------------


def _valid_text(text: str) -> bool:
    return not any(0xD800 <= ord(ch) <= 0xDFFF for ch in text)


def json_problem(value: Any, depth: int = 0) -> str | None:
    """Why ``value`` is not JSON that JavaScript reads back unchanged (None if it is)."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return None if abs(value) <= MAX_SAFE else "unsafe integer"
    if isinstance(value, float):
        return None if math.isfinite(value) else "non-finite float"
    if isinstance(value, str):
        return None if _valid_text(value) else "unpaired surrogate"
    if isinstance(value, (list, tuple, dict)) and depth >= MAX_DEPTH:
        return "too deep"
    if isinstance(value, (list, tuple)):
        for item in value:
            problem = json_problem(item, depth + 1)
            if problem:
                return problem
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return "non-string key"
            if not _valid_text(key):
                return "unpaired surrogate in a key"
            problem = json_problem(item, depth + 1)
            if problem:
                return problem
        return None
    return f"{type(value).__name__} is not JSON"


def json_size(value: Any) -> int:
    """Bytes of ``value`` as compact JSON (valid values only)."""
    return len(orjson.dumps(value))


def expected(value: Any, *, overhead: int = 0) -> str:
    """``store``, ``refuse``, ``too_large`` or ``either`` (near the size limit)."""
    if json_problem(value) is not None:
        return "refuse"
    size = json_size(value) + overhead
    if size > ONE_MIB * 1.02:
        return "too_large"
    if size < ONE_MIB * 0.98:
        return "store"
    return "either"


def same(a: Any, b: Any) -> bool:
    """Equal as JSON: numbers by value, lists and tuples alike, no bool/number confusion."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, (list, tuple)):
        return (
            isinstance(b, (list, tuple))
            and len(a) == len(b)
            and all(same(x, y) for x, y in zip(a, b, strict=True))
        )
    if isinstance(a, Mapping):
        return (
            isinstance(b, Mapping) and set(a) == set(b) and all(same(a[key], b[key]) for key in a)
        )
    return type(a) is type(b) and a == b
