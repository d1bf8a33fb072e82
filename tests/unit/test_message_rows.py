"""A Message as the row the handler stores: the fast paths write what the general ones would.

``message_row`` skips dumping plain content through pydantic and skips measuring rows far
under 1 MiB; these tests hold it to the slow paths' results and refusals.
"""

from __future__ import annotations

import dataclasses
import re
from datetime import datetime, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from convex_mastra import RecordTooLargeError, ValidationError
from convex_mastra._codec import MAX_DOCUMENT_BYTES, document_size, json_text
from convex_mastra._domains.messages import content_dict, content_json, message_row
from convex_mastra._models import Message, MessageContent

T0 = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=timezone.utc)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**60), 2**60)
    | st.floats()
    | st.text(st.characters(codec="utf-8"), max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(st.characters(codec="utf-8"), max_size=5), inner, max_size=3)
    ),
    max_leaves=12,
)


def slow_path(content: MessageContent) -> str:
    """What the general path writes, or the text of its refusal."""
    try:
        return json_text(content_dict(content), "content")
    except ValidationError as exc:
        return f"refused: {exc}"


def fast_path(content: MessageContent) -> str:
    try:
        return content_json(content, "content")
    except ValidationError as exc:
        return f"refused: {exc}"


@settings(max_examples=300, deadline=None)
@given(
    parts=st.lists(json_values, max_size=3),
    text=st.none() | st.text(max_size=5),
    metadata=st.none() | st.dictionaries(st.text(max_size=4), json_values, max_size=3),
    extra=st.dictionaries(st.sampled_from(["toolInvocations", "reasoning", "x"]), json_values),
)
def test_plain_content_is_written_as_the_model_dump_would_be(
    parts: list[Any], text: str | None, metadata: dict[str, Any] | None, extra: dict[str, Any]
) -> None:
    content = MessageContent.model_validate(
        {"parts": parts, "content": text, "metadata": metadata, **extra}
    )
    assert fast_path(content) == slow_path(content)


class Part(BaseModel):
    type: str
    text: str


@dataclasses.dataclass
class DataPart:
    type: str


@pytest.mark.parametrize(
    "parts",
    [
        [Part(type="text", text="a model in the parts")],
        [("a", "tuple")],
        [DataPart(type="a dataclass")],
        [{"at": T0}],  # refused by both: a datetime is not JSON
        [2**53],  # refused by both: JavaScript cannot hold it
        [float("nan")],
    ],
)
def test_content_that_is_not_plain_json_takes_the_general_path(parts: list[Any]) -> None:
    content = MessageContent(parts=parts)
    assert fast_path(content) == slow_path(content)


def test_declared_fields_set_to_none_are_left_out_and_extra_ones_kept() -> None:
    content = MessageContent.model_validate({"parts": [], "content": None, "toolInvocations": None})
    assert content_json(content, "content") == '{"format":2,"parts":[],"toolInvocations":null}'


def message(**fields: Any) -> Message:
    base: dict[str, Any] = {
        "id": "m1",
        "threadId": "t1",
        "resourceId": "r1",
        "role": "user",
        "createdAt": T0,
        "content": {"parts": []},
    }
    return Message.model_validate({**base, **fields})


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"threadId": None}, "messages[3] ('m1') has no thread_id"),
        ({"resourceId": ""}, "messages[3] ('m1') has no resource_id"),
        ({"id": "  "}, "messages[3] ('  ').id"),
        ({"threadId": " "}, "messages[3] ('m1').thread_id"),
        ({"resourceId": "\t"}, "messages[3] ('m1').resource_id"),
    ],
)
def test_blank_ids_are_refused_naming_the_message(fields: dict[str, Any], error: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(error)):
        message_row(message(**fields), 3)


def test_bad_content_is_refused_naming_the_message() -> None:
    with pytest.raises(ValidationError, match=r"messages\[3\] \('m1'\)\.content"):
        message_row(message(content={"parts": [{"n": 2**60}]}), 3)


def test_a_row_is_measured_unless_it_cannot_reach_the_limit() -> None:
    # The largest row the size check skips: every character four bytes of UTF-8.
    ids = len("m1t1r1usertextv2")
    overhead = len('{"format":2,"parts":[],"content":""}')
    longest = (MAX_DOCUMENT_BYTES - 1024) // 4 - ids - overhead
    row = message_row(message(content={"parts": [], "content": "😀" * longest}), 0)
    assert document_size(row) <= MAX_DOCUMENT_BYTES
    with pytest.raises(RecordTooLargeError):
        message_row(message(content={"parts": [], "content": "😀" * (MAX_DOCUMENT_BYTES // 4)}), 0)
