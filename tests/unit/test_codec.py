"""The stored encodings' rules, as pure functions: what is refused, and how values come back.

Needs no deployment and no Node.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from convex.values import convex_to_json
from hypothesis import example, given, settings
from hypothesis import strategies as st

from convex_mastra import ConvexInt64, ValidationError
from convex_mastra._codec import (
    MAX_SAFE_INTEGER,
    _json_ok,
    _json_problem,
    check_json,
    convex_value_problem,
    decode_json,
    document_size,
    js_numbers,
    json_arg,
    parse_time,
    to_iso,
    truncate_ms,
)
from convex_mastra._transport import _to_json


@pytest.mark.parametrize(
    "value",
    [
        math.nan,
        math.inf,
        -math.inf,
        2**53,
        -(2**53),
        {1: "x"},
        {"s": {1}},
        b"x",
        object(),
        "\ud800",
    ],
)
def test_values_javascript_would_change_are_refused(value: object) -> None:
    with pytest.raises(ValidationError):
        check_json({"v": [value]}, "field")


@pytest.mark.parametrize(
    "value", [None, True, 0, -0.5, MAX_SAFE_INTEGER, -MAX_SAFE_INTEGER, "ü", [1, [2]], {"$k": {}}]
)
def test_json_javascript_reads_back_unchanged_is_accepted(value: object) -> None:
    check_json(value, "field")


def test_the_refusal_names_the_path() -> None:
    with pytest.raises(ValidationError, match=r"meta\.a\[1\]"):
        check_json({"a": [0, math.nan]}, "meta")


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ({"$ref": 1}, "start with '$'"),
        ({"café": 1}, "printable ASCII"),
        ({"": 1}, "empty field names"),
        ({"__proto__": 1}, "'__proto__'"),
        ({"k" * 1025: 1}, "over 1024 characters"),
        ([0] * 8193, "8,193 items"),
        ({f"k{n}": n for n in range(1025)}, "1,025 keys"),
    ],
)
def test_convex_argument_problems_say_why(value: object, reason: str) -> None:
    problem = convex_value_problem(value, "value")
    assert problem is not None and reason in problem


def test_convex_argument_nesting_stops_at_64_levels() -> None:
    nested: object = []
    for _ in range(62):
        nested = [nested]
    assert convex_value_problem(nested, "v") is None
    assert "nested deeper" in (convex_value_problem([[nested]], "v") or "")


def test_json_arg_sends_what_convex_takes_and_text_otherwise() -> None:
    assert json_arg({"a": [1, {"b": None}]}, "m") == {"a": [1, {"b": None}]}
    assert json_arg({"$schema": "s"}, "m") == '{"$schema":"s"}'
    deep: object = 1
    for _ in range(16):
        deep = [deep]
    assert isinstance(json_arg({"d": deep}, "m"), str)  # past Convex's document nesting


def test_decode_json_reads_text_and_makes_integral_floats_ints() -> None:
    assert decode_json('{"a": 1.0, "b": [2.5]}') == {"a": 1, "b": [2.5]}
    assert decode_json({"a": 3.0}) == {"a": 3} and type(decode_json({"a": 3.0})["a"]) is int
    assert decode_json("not json") == "not json"
    # Beyond 2**53 a JavaScript double printed as digits is read as the double it was.
    assert decode_json("26377238272672370") == 2.637723827267237e16
    assert js_numbers([1.0, 1.5, {"x": 2.0}]) == [1, 1.5, {"x": 2}]


def test_timestamps_are_javascript_iso_with_milliseconds() -> None:
    when = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=timezone(timedelta(hours=2)))
    assert to_iso(when) == "2026-01-02T01:04:05.678Z"
    assert truncate_ms(when).microsecond == 678000
    assert parse_time("2026-01-02T01:04:05.678Z") == truncate_ms(when)
    assert parse_time(1_767_315_845_678) == truncate_ms(when)  # epoch ms
    with pytest.raises(ValidationError, match="naive datetime"):
        to_iso(datetime(2026, 1, 2))


@pytest.mark.parametrize(
    ("when", "text"),
    [
        (datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc), "2026-01-02T03:04:05.000Z"),
        (datetime(2026, 1, 2, 3, 4, 5, 999999, tzinfo=timezone.utc), "2026-01-02T03:04:05.999Z"),
        (datetime(999, 12, 31, 23, 59, 59, 1000, tzinfo=timezone.utc), "0999-12-31T23:59:59.001Z"),
        (
            datetime(2026, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=1))),
            "2025-12-31T23:30:00.000Z",
        ),
    ],
)
def test_iso_text_is_what_javascripts_to_iso_string_makes(when: datetime, text: str) -> None:
    assert to_iso(when) == text
    assert truncate_ms(when).tzinfo is timezone.utc


def test_document_size_counts_as_convex_does() -> None:
    empty = document_size({})
    assert document_size({"a": "xyz"}) == empty + 2 + len("a") + 1 + 3
    assert document_size({"n": 1}) == document_size({"n": 1.5}) == empty + 2 + 9
    assert document_size({"l": [None, True]}) == empty + 2 + 2 + 1 + 1


# -- the request encoder: convex.values' rules, on a shorter path ------------------------------

_keys = st.one_of(
    st.sampled_from(["id", "op", "content", "$ref", "", "é", "a\x01", "x" * 1025, "_id"]),
    st.text(max_size=8),
)
_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(2**60), max_value=2**60),
    st.text(max_size=10),
    st.binary(max_size=6),
    st.builds(ConvexInt64, st.integers(min_value=-(2**63), max_value=2**63 - 1)),
)
_values = st.recursive(
    _leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=3).map(tuple),
        st.dictionaries(_keys, inner, max_size=4),
        st.dictionaries(st.integers(0, 3), inner, min_size=1, max_size=2),
    ),
    max_leaves=12,
)


def _outcome(encode: Any, value: Any) -> Any:
    try:
        return orjson.dumps(encode(value))
    except (ValueError, TypeError) as exc:
        return type(exc)


@settings(max_examples=400, deadline=None)
@given(_values)
@example(float("nan"))
@example({"a": [-0.0, math.inf]})
@example({"ok": {"$ref": "x"}})
@example({"é": 1})
@example({1: "x"})
@example((1, 2**60))
def test_requests_encode_exactly_as_convex_values_does(value: Any) -> None:
    assert _outcome(_to_json, value) == _outcome(convex_to_json, value)


def _nested(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = [value]
    return {"deep": value}


_json_like = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.floats(allow_nan=True, allow_infinity=True),
        st.integers(min_value=-(2**60), max_value=2**60),
        st.text(max_size=6),
        st.sampled_from(["\ud800", "é", b"bytes", datetime(2026, 1, 1), {1, 2}]),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=3).map(tuple),
        st.dictionaries(st.one_of(st.text(max_size=4), st.sampled_from(["\udc00", 7])), inner),
    ),
    max_leaves=10,
)


@settings(max_examples=400, deadline=None)
@given(_json_like)
@example({"a": [float("nan")]})
@example({"\udc00": 1})
@example([[[2**53]]])
@example(
    {
        "deep": [
            [
                [
                    [
                        [
                            [
                                [
                                    [
                                        [
                                            [
                                                [
                                                    [
                                                        [
                                                            [
                                                                [
                                                                    [
                                                                        [
                                                                            [
                                                                                [
                                                                                    [
                                                                                        [
                                                                                            [
                                                                                                [
                                                                                                    [
                                                                                                        [
                                                                                                            [
                                                                                                                [
                                                                                                                    [
                                                                                                                        [
                                                                                                                            [
                                                                                                                                [
                                                                                                                                    [
                                                                                                                                        [
                                                                                                                                            [
                                                                                                                                                [
                                                                                                                                                    [
                                                                                                                                                        [
                                                                                                                                                            [
                                                                                                                                                                [
                                                                                                                                                                    [
                                                                                                                                                                        [
                                                                                                                                                                            [
                                                                                                                                                                                [
                                                                                                                                                                                    [
                                                                                                                                                                                        [
                                                                                                                                                                                            [
                                                                                                                                                                                                [
                                                                                                                                                                                                    [
                                                                                                                                                                                                        [
                                                                                                                                                                                                            [
                                                                                                                                                                                                                [
                                                                                                                                                                                                                    [
                                                                                                                                                                                                                        [
                                                                                                                                                                                                                            [
                                                                                                                                                                                                                                [
                                                                                                                                                                                                                                    [
                                                                                                                                                                                                                                        [
                                                                                                                                                                                                                                            [
                                                                                                                                                                                                                                                [
                                                                                                                                                                                                                                                    [
                                                                                                                                                                                                                                                        [
                                                                                                                                                                                                                                                            [
                                                                                                                                                                                                                                                                [
                                                                                                                                                                                                                                                                    [
                                                                                                                                                                                                                                                                        1
                                                                                                                                                                                                                                                                    ]
                                                                                                                                                                                                                                                                ]
                                                                                                                                                                                                                                                            ]
                                                                                                                                                                                                                                                        ]
                                                                                                                                                                                                                                                    ]
                                                                                                                                                                                                                                                ]
                                                                                                                                                                                                                                            ]
                                                                                                                                                                                                                                        ]
                                                                                                                                                                                                                                    ]
                                                                                                                                                                                                                                ]
                                                                                                                                                                                                                            ]
                                                                                                                                                                                                                        ]
                                                                                                                                                                                                                    ]
                                                                                                                                                                                                                ]
                                                                                                                                                                                                            ]
                                                                                                                                                                                                        ]
                                                                                                                                                                                                    ]
                                                                                                                                                                                                ]
                                                                                                                                                                                            ]
                                                                                                                                                                                        ]
                                                                                                                                                                                    ]
                                                                                                                                                                                ]
                                                                                                                                                                            ]
                                                                                                                                                                        ]
                                                                                                                                                                    ]
                                                                                                                                                                ]
                                                                                                                                                            ]
                                                                                                                                                        ]
                                                                                                                                                    ]
                                                                                                                                                ]
                                                                                                                                            ]
                                                                                                                                        ]
                                                                                                                                    ]
                                                                                                                                ]
                                                                                                                            ]
                                                                                                                        ]
                                                                                                                    ]
                                                                                                                ]
                                                                                                            ]
                                                                                                        ]
                                                                                                    ]
                                                                                                ]
                                                                                            ]
                                                                                        ]
                                                                                    ]
                                                                                ]
                                                                            ]
                                                                        ]
                                                                    ]
                                                                ]
                                                            ]
                                                        ]
                                                    ]
                                                ]
                                            ]
                                        ]
                                    ]
                                ]
                            ]
                        ]
                    ]
                ]
            ]
        ]
    }
)
def test_the_quick_json_check_agrees_with_the_one_that_explains(value: Any) -> None:
    assert _json_ok(value, 0) == (_json_problem(value, "x", 0) is None)
