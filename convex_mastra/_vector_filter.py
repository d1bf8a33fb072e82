"""Mastra's vector metadata filters: checked once, then matched against each row's metadata.

The language is upstream's (@mastra/convex ``ConvexVector``): ``{field: value}`` for equality,
``{field: {"$op": value}}`` with ``$eq $ne $in $nin $gt $gte $lt $lte``, ``$and`` / ``$or`` over
lists of filters, and the whole filter optionally wrapped as ``{"metadata": {...}}``. Where
upstream is loose, this is strict, and says so in docs/vectors.md:

- every operator of a field applies (upstream reads only the first), and ``$eq`` is equality
  (upstream ignores it and compares the operator object);
- an unknown ``$`` operator, a non-list ``$in``/``$nin``/``$and``/``$or`` or a field condition
  mixing operators and plain keys is refused before any call, naming where;
- equality of lists and objects compares their contents (upstream compares JavaScript object
  identity, which never holds); booleans never equal numbers;
- ``$gt``-style comparisons hold only between two numbers or two strings.

As upstream, a row without metadata matches no filter but the empty one, and a field missing
from the metadata is unequal to every value (so ``$ne`` and ``$nin`` match it).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from ._errors import ValidationError

__all__ = ["Predicate", "compile_filter"]

Predicate = Callable[[Any], bool]
"""Whether a row's metadata (a dict, or None for a row without) matches."""

_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "$gt": lambda a, b: a > b,
    "$gte": lambda a, b: a >= b,
    "$lt": lambda a, b: a < b,
    "$lte": lambda a, b: a <= b,
}
OPERATORS = frozenset({"$eq", "$ne", "$in", "$nin", *_COMPARE})
_MISSING = object()


def compile_filter(value: Mapping[str, Any] | None, field: str = "filter") -> Predicate | None:
    """``value`` checked and turned into a predicate; None when it matches every row (no filter,
    or an empty one). Raises ValidationError naming the first problem."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ValidationError(f"{field} must be a dict, not {type(value).__name__}", field=field)
    if len(value) == 1 and isinstance(value.get("metadata"), Mapping):
        value, field = value["metadata"], f"{field}.metadata"
    if not value:
        return None
    match = _conditions(value, field)
    return lambda metadata: isinstance(metadata, Mapping) and match(metadata)


def _conditions(value: Mapping[str, Any], where: str) -> Callable[[Mapping[str, Any]], bool]:
    tests = [_condition(key, item, f"{where}.{key}") for key, item in value.items()]
    if len(tests) == 1:
        return tests[0]
    return lambda metadata: all(test(metadata) for test in tests)


def _condition(key: Any, value: Any, where: str) -> Callable[[Mapping[str, Any]], bool]:
    if not isinstance(key, str):
        raise ValidationError(f"{where}: filter keys must be strings", field=where)
    if key in ("$and", "$or"):
        if not isinstance(value, list) or not all(isinstance(item, Mapping) for item in value):
            raise ValidationError(f"{where} must be a list of filters", field=where)
        parts = [_conditions(item, f"{where}[{i}]") for i, item in enumerate(value)]
        if key == "$and":
            return lambda metadata: all(part(metadata) for part in parts)
        return lambda metadata: any(part(metadata) for part in parts)
    if key.startswith("$"):
        raise ValidationError(
            f"{where}: unknown operator {key!r} at the top of a filter (use $and or $or)",
            field=where,
        )
    if isinstance(value, Mapping) and any(isinstance(k, str) and k.startswith("$") for k in value):
        tests = [_operator(key, op, operand, f"{where}.{op}") for op, operand in value.items()]
        return lambda metadata: all(test(metadata) for test in tests)
    _check_operand(value, where)
    return lambda metadata: same(metadata.get(key, _MISSING), value)


def _operator(key: str, op: Any, operand: Any, where: str) -> Callable[[Mapping[str, Any]], bool]:
    if op not in OPERATORS:
        raise ValidationError(
            f"{where}: unknown operator {op!r} (known: {', '.join(sorted(OPERATORS))})",
            field=where,
        )
    if op in ("$in", "$nin"):
        if not isinstance(operand, list):
            raise ValidationError(f"{where} must be a list", field=where)
        for i, item in enumerate(operand):
            _check_operand(item, f"{where}[{i}]")
        if op == "$in":
            return lambda metadata: _member(metadata.get(key, _MISSING), operand)
        return lambda metadata: not _member(metadata.get(key, _MISSING), operand)
    _check_operand(operand, where)
    if op == "$eq":
        return lambda metadata: same(metadata.get(key, _MISSING), operand)
    if op == "$ne":
        return lambda metadata: not same(metadata.get(key, _MISSING), operand)
    compare = _COMPARE[op]
    return lambda metadata: _ordered(metadata.get(key, _MISSING), operand, compare)


def _check_operand(value: Any, where: str) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise ValidationError(f"{where}: {value} cannot be stored, so matches nothing", field=where)
    if not isinstance(value, str | int | float | bool | list | Mapping) and value is not None:
        raise ValidationError(
            f"{where}: {type(value).__name__} is not a JSON value to compare with", field=where
        )


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def same(a: Any, b: Any) -> bool:
    """JSON equality: booleans are not numbers, 1 equals 1.0, lists and objects by content."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if _number(a) and _number(b):
        return bool(a == b)
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and bool(a == b)


def _member(value: Any, options: list[Any]) -> bool:
    return any(same(value, option) for option in options)


def _ordered(value: Any, operand: Any, compare: Callable[[Any, Any], bool]) -> bool:
    if _number(value) and _number(operand):
        return compare(value, operand)
    if isinstance(value, str) and isinstance(operand, str):
        return compare(value, operand)
    return False
