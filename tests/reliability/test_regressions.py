"""Bugs the reliability suite found, each pinned by a plain test (see docs/reliability.md).

The suite's scenarios and property tests found them among many inputs; these tests name the exact
input of each, so a regression says what broke without Hypothesis' help.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from convex_mastra import ConfigurationError, ConvexStore, RecordTooLargeError, ValidationError
from convex_mastra._codec import MAX_DOCUMENT_BYTES, document_size, json_arg
from convex_mastra._domains.messages import message_row
from convex_mastra._models import Message
from tests.reliability.conftest import SecretAudit, thread_record

T0 = datetime(2026, 7, 1, tzinfo=timezone.utc)


def _chain(levels: int) -> Any:
    value: Any = 1
    for level in range(levels):
        value = {f"l{level}": value}
    return value


@pytest.mark.parametrize(
    "metadata",
    [
        {"__proto__": {"x": 1}, "a": 1},
        {"__proto__": 5},
        {"a": {"__proto__": {"y": 2}}},
        {"list": [{"__proto__": 1}]},
    ],
    ids=["top", "scalar", "nested", "in-list"],
)
async def test_proto_keys_survive_save_and_update(
    rstore: ConvexStore, uid: str, metadata: dict[str, Any]
) -> None:
    # Sent as a plain object, "__proto__" went through `out[key] = value` in JavaScript (the
    # deployment's argument decoding, its replies) and vanished: {"__proto__": 5} came back {}.
    thread_id = f"proto-{uid}"
    await rstore.threads.save(thread_record(thread_id, "r", T0, metadata=metadata))
    assert (await rstore.threads.get(thread_id)).metadata == metadata  # type: ignore[union-attr]
    updated = await rstore.threads.update(thread_id, metadata={"__proto__": "again"})
    assert updated.metadata == {**metadata, "__proto__": "again"}
    resource = await rstore.resources.update(f"proto-{uid}", metadata=metadata)
    assert resource.metadata == metadata
    assert isinstance(json_arg(metadata, "metadata"), str)  # travels as JSON text


@pytest.mark.parametrize("levels", [14, 15, 16])
async def test_metadata_nested_at_the_document_limit(
    rstore: ConvexStore, uid: str, levels: int
) -> None:
    # Convex counts nesting from the document: a thread (1) holding metadata (2) holding 15
    # levels is 17 deep. Both sides counted from the metadata, sent it as an object, and the
    # insert failed ("Document is too nested") instead of storing JSON text.
    metadata = {"deep": _chain(levels)}
    thread_id = f"deep{levels}-{uid}"
    await rstore.threads.save(thread_record(thread_id, "r", T0, metadata=metadata))
    assert (await rstore.threads.get(thread_id)).metadata == metadata  # type: ignore[union-attr]
    assert (await rstore.resources.update(f"deep{levels}-{uid}", metadata=metadata)).metadata == (
        metadata
    )
    # Up to 16 levels in the document, the metadata still travels as an object.
    assert isinstance(json_arg(metadata, "metadata"), dict) == (levels <= 14)


async def test_null_fields_of_message_content_are_kept(rstore: ConvexStore, uid: str) -> None:
    # Content was dumped with exclude_none, so {"toolInvocations": None} came back without it.
    thread_id = f"nulls-{uid}"
    await rstore.threads.save(thread_record(thread_id, "r", T0))
    content = {"format": 2, "parts": [], "toolInvocations": None, "reasoning": None}
    await rstore.messages.save(
        [
            {
                "id": f"m-{uid}",
                "thread_id": thread_id,
                "resource_id": "r",
                "role": "user",
                "created_at": T0,
                "content": content,
            }
        ]
    )
    [stored] = await rstore.messages.get_many([f"m-{uid}"])
    assert stored.content.model_extra == {"toolInvocations": None, "reasoning": None}
    [updated] = await rstore.messages.update([{"id": f"m-{uid}", "content": {"content": "hi"}}])
    assert updated.content.model_extra == {"toolInvocations": None, "reasoning": None}


def test_message_size_is_counted_as_convex_counts_it() -> None:
    # The estimate left out 84 bytes (Convex's per-field and system-field overhead), so a message
    # just over 1 MiB passed the check; in a save of several calls the earlier calls were
    # already written when the handler refused it.
    row = message_row(
        Message.model_validate(
            {
                "id": "m",
                "thread_id": "t",
                "resource_id": "r",
                "role": "user",
                "created_at": T0,
                "content": {"format": 2, "parts": []},
            }
        ),
        0,
    )
    # getDocumentSize: 2 + per field (name + 1 + string 2 + bytes) + _id 38 + _creationTime 23.
    assert document_size(row) == 2 + sum(len(k) + 3 + len(v.encode()) for k, v in row.items()) + 61
    assert document_size({"n": 1, "b": True, "x": None, "l": [1, "é"]}) == (
        2 + (1 + 1 + 9) + (1 + 1 + 1) + (1 + 1 + 1) + (1 + 1 + 2 + 9 + 4) + 61
    )


@pytest.mark.parametrize("where", ["thread", "resource"])
async def test_records_too_big_to_send_are_refused_by_size(
    rstore: ConvexStore, uid: str, audit: SecretAudit, where: str
) -> None:
    # Over 16 MiB the request itself was refused (HTTP 400, FunctionError), not the record.
    huge = {"blob": "x" * (17 * MAX_DOCUMENT_BYTES)}
    with audit.raises(RecordTooLargeError) as info:
        if where == "thread":
            await rstore.threads.save(
                {
                    "id": f"huge-{uid}",
                    "resource_id": "r",
                    "created_at": T0,
                    "updated_at": T0 + timedelta(seconds=1),
                    "metadata": huge,
                }
            )
        else:
            await rstore.resources.update(f"huge-{uid}", metadata=huge)
    assert isinstance(info.value, RecordTooLargeError)
    assert info.value.record_id == f"huge-{uid}" and info.value.size > 17 * MAX_DOCUMENT_BYTES


@pytest.mark.parametrize("blank", [" ", "\t", "\u3000"])
async def test_blank_ids_are_refused_on_write_as_on_read(
    rstore: ConvexStore, audit: SecretAudit, blank: str
) -> None:
    # Reads refuse blank ids; writes took them, so the record could never be read or deleted.
    writes = [
        rstore.threads.save(thread_record(blank, "r", T0)),
        rstore.threads.save(thread_record("t", blank, T0)),
        rstore.resources.save({"id": blank, "created_at": T0, "updated_at": T0}),
        rstore.messages.save(
            [
                {
                    "id": blank,
                    "thread_id": "t",
                    "resource_id": "r",
                    "role": "user",
                    "created_at": T0,
                    "content": {"format": 2, "parts": []},
                }
            ]
        ),
    ]
    for write in writes:
        with audit.raises(ValidationError, match="non-empty"):
            await write


@pytest.mark.parametrize(
    ("key", "says"),
    [
        ("local|cl\u00e9", "non-ASCII"),
        ("\u043a\u043b\u044e\u0447", "non-ASCII"),
        ("   ", "blank"),
        ("x" * 100_000, "characters long"),
    ],
    ids=["accent", "cyrillic", "blank", "huge"],
)
def test_keys_that_cannot_be_keys_are_configuration_errors(key: str, says: str) -> None:
    # Non-ASCII broke inside http.client and surfaced as DeploymentUnavailable (reads retried);
    # blank was sent as no key at all; 100,000 characters drew an HTTP 431, read as a wrong URL.
    with pytest.raises(ConfigurationError, match=says) as info:
        ConvexStore("http://127.0.0.1:1", key)
    assert key.strip() not in str(info.value) or not key.strip()


async def test_big_doubles_survive_a_merge_on_the_server(rstore: ConvexStore, uid: str) -> None:
    # Metadata with "$" keys is JSON text; the handler merges it with JSON.parse/JSON.stringify,
    # which prints the double 2.637723827267237e16 as 26377238272672370. Read as an exact int,
    # that is another number (…370, not …368): Python must read it back as the double it was.
    big = 2.637723827267237e16
    thread_id = f"doubles-{uid}"
    await rstore.threads.save(thread_record(thread_id, "r", T0, metadata={"$k": big}))
    updated = await rstore.threads.update(thread_id, metadata={"$other": -big})
    assert updated.metadata == {"$k": big, "$other": -big}
    assert all(isinstance(v, float) for v in updated.metadata.values())
    await rstore.documents.insert("doubles", {"id": uid, "$v": big, "n": 3})
    assert await rstore.documents.get("doubles", id=uid) == {"id": uid, "$v": big, "n": 3}
