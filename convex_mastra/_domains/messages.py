"""``store.messages``: messages of threads, paged by time on the server."""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, NoReturn

import orjson
from pydantic import BaseModel, ConfigDict, Field

from .._codec import (
    MAX_DOCUMENT_BYTES,
    check_document_size,
    decode_json,
    json_text,
    plain_json,
    to_iso,
)
from .._dispatch import HandlerInfo, batches
from .._errors import ValidationError
from .._models import Message, MessageContent, Page, coerce
from .._paging import IndexQuery, Match, check_paging, sort_key
from ._base import (
    Domain,
    check_direction,
    check_id,
    check_ids,
    check_scalar_filter,
)
from ._watch import MessageWatch

__all__ = ["DateRange", "Include", "Messages"]

TABLE = "mastra_messages"
STORED_BESIDE = {"writeSeq": 0}
"""What convex-mastra's handler stores in every message beside its row (the write order of
live watches, convex/mastra/lib/writer.ts): a message is sized with it, so one that fits only
without it is refused before anything is sent."""

ORDER_FIELDS = ("createdAt", "created_at")


class DateRange(BaseModel):
    """Bounds on ``createdAt``: inclusive unless the matching ``*_exclusive`` flag is set."""

    model_config = ConfigDict(populate_by_name=True, alias_generator=None)

    start: datetime | None = None
    end: datetime | None = None
    start_exclusive: bool = Field(default=False, alias="startExclusive")
    end_exclusive: bool = Field(default=False, alias="endExclusive")

    def bounds(self) -> dict[str, str] | None:
        out = {}
        if self.start is not None:
            out["gt" if self.start_exclusive else "gte"] = to_iso(self.start)
        if self.end is not None:
            out["lt" if self.end_exclusive else "lte"] = to_iso(self.end)
        return out or None


class Include(BaseModel):
    """A message to add to a listing with its neighbours in its own thread."""

    model_config = ConfigDict(populate_by_name=True)

    id: str = Field(min_length=1)
    thread_id: str | None = Field(default=None, alias="threadId")
    with_previous_messages: int = Field(default=0, ge=0, le=1000, alias="withPreviousMessages")
    with_next_messages: int = Field(default=0, ge=0, le=1000, alias="withNextMessages")


def message_from_row(row: Mapping[str, Any]) -> Message:
    """A stored message row as a Message."""
    return Message.model_validate(
        {
            "id": row["id"],
            "role": row["role"],
            "type": row.get("type") or "v2",
            "created_at": row["createdAt"],
            "thread_id": row.get("thread_id"),
            "resource_id": row.get("resourceId") or None,
            "content": decode_json(row.get("content")),
        }
    )


def content_dict(content: MessageContent) -> dict[str, Any]:
    """Message content as stored: declared fields left unset are omitted, as Mastra omits
    them, but a key the caller set to null (``"toolInvocations": None``) is data and kept."""
    extra = content.model_extra or {}
    return {
        key: value
        for key, value in content.model_dump(by_alias=True).items()
        if value is not None or key in extra
    }


def content_json(content: MessageContent, where: object) -> str:
    """``content_dict(content)`` as checked JSON text (``where`` names it in an error).

    Content that is plain JSON already, nearly all of it, is written as the model holds it:
    dumping the model would only copy it. Anything else (models, dataclasses, tuples in it)
    goes through ``model_dump`` as before."""
    fields = {key: value for key, value in content.__dict__.items() if value is not None}
    if content.__pydantic_extra__:
        fields.update(content.__pydantic_extra__)  # None kept: the caller set it
    if plain_json(fields):
        return orjson.dumps(fields).decode()
    return json_text(content_dict(content), where)


# content_json writes declared fields under their Python names, which must be their aliases.
assert all(info.alias in (None, name) for name, info in MessageContent.model_fields.items()), (
    "MessageContent field names and aliases differ"
)


def message_row(message: Message, position: int) -> dict[str, Any]:
    """A Message as the stored row @mastra/convex writes; checks ids and size first."""
    mid, thread_id, resource_id = message.id, message.thread_id, message.resource_id
    # Reads refuse blank ids, so a message saved under one could never be read or deleted.
    # One test for the usual case; the message naming what is wrong is only built on failure.
    if (
        not thread_id
        or not resource_id
        or not (mid.strip() and thread_id.strip() and resource_id.strip())
    ):
        _refuse_ids(message, position)
    content = content_json(message.content, _Where(position, mid, "content"))
    row = {
        "id": mid,
        "thread_id": thread_id,
        "content": content,
        "role": message.role,
        "type": message.type,
        "createdAt": to_iso(message.created_at),
        "resourceId": resource_id,
    }
    # A code point is at most 4 bytes of UTF-8, and the field names, Convex's system fields and
    # writeSeq take far less than 1 KiB: a row this short cannot reach the limit, and is not
    # measured.
    chars = sum(map(len, (content, mid, thread_id, resource_id, message.role, message.type)))
    if 4 * chars + 1024 > MAX_DOCUMENT_BYTES:
        check_document_size(mid, {**row, **STORED_BESIDE})
    return row


class _Where:
    """``messages[i] ('id').field``, formatted only when an error names it."""

    __slots__ = ("field", "id", "position")

    def __init__(self, position: int, mid: str, field: str) -> None:
        self.position, self.id, self.field = position, mid, field

    def __str__(self) -> str:
        return f"messages[{self.position}] ({self.id!r}).{self.field}"


def _refuse_ids(message: Message, position: int) -> NoReturn:
    where = f"messages[{position}] ({message.id!r})"
    if not message.thread_id:
        raise ValidationError(f"{where} has no thread_id", field="thread_id")
    if not message.resource_id:
        raise ValidationError(f"{where} has no resource_id", field="resource_id")
    check_id(message.id, f"{where}.id")
    check_id(message.thread_id, f"{where}.thread_id")
    check_id(message.resource_id, f"{where}.resource_id")
    raise AssertionError("message_row found a blank id that check_id took")


def thread_query(thread_id: str, bounds: Mapping[str, Any] | None = None) -> IndexQuery:
    """A thread's messages in Mastra's order (``createdAt``, equal ones by insertion)."""
    return IndexQuery(
        table=TABLE,
        index="by_thread_created",
        sort_field="createdAt",
        eq=(("thread_id", thread_id),),
        range=bounds,
    )


def chunks(rows: Sequence[dict[str, Any]], info: HandlerInfo) -> Iterable[list[dict[str, Any]]]:
    """Consecutive runs of rows, each as large as one call may carry (``batchItems`` rows
    and ``batchBytes`` of arguments, as the handler declares them)."""
    return batches(
        rows,
        max_items=info.limit("batchItems"),
        max_bytes=info.limit("batchBytes"),
        size=lambda row: len(row["content"]) + 256,
    )


class Messages(Domain):
    """Messages: save, list, get, update, delete and iterate."""

    async def save(self, messages: Iterable[Message | Mapping[str, Any]]) -> builtins.list[Message]:
        """Insert or replace messages by id; returns them in input order.

        Every message needs a thread id and a resource id, and its thread must exist. A known id
        with a new thread id moves the message. Touched threads get a new ``updatedAt``. One call
        is all-or-nothing up to Convex's per-transaction limits and takes the fewest calls beyond.
        """
        models = [coerce(Message, message, f"messages[{i}]") for i, message in enumerate(messages)]
        await self._save(models, moved_from=())
        return models

    async def _save(self, models: builtins.list[Message], moved_from: Iterable[str]) -> None:
        """Save ``models``; ``moved_from`` are the threads that messages left."""
        rows = [message_row(message, i) for i, message in enumerate(models)]
        if rows:
            await (await self._handler()).save_messages(rows, list(moved_from))

    async def list(
        self,
        thread_id: str | Sequence[str],
        *,
        resource_id: str | None = None,
        include: Sequence[Include | Mapping[str, Any]] | None = None,
        date_range: DateRange | Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
        page: int = 0,
        per_page: int | None = 40,
        order_by: str = "createdAt",
        direction: str = "ASC",
        include_total: bool = True,
    ) -> Page[Message]:
        """One page of the messages of one or more threads, oldest first by default.

        ``include`` adds messages (from any thread) with context windows around them;
        ``per_page=0`` returns only those (total 0) and ``per_page=None`` returns everything.
        ``metadata`` keeps messages whose ``content.metadata`` has every given scalar value.
        With ``resource_id``, messages of other resources are left out, included ones too.
        Equal timestamps keep insertion order.

        ``include_total=False`` skips counting (Mastra's ``includeTotal: false``): ``has_more``
        comes from reading one row past the page, and ``total`` is only a lower bound (the
        rows up to the page's end, plus one when more follow). Counting is what a filtered
        listing (``date_range``, ``metadata``) pays for most, and a last-N read never needs it.
        """
        ids = [thread_id] if isinstance(thread_id, str) else list(thread_id)
        if not ids:
            raise ValidationError("thread_id must name at least one thread", field="thread_id")
        threads = check_ids(ids, "thread_id")
        eq: builtins.list[tuple[tuple[str, Any], ...]] = [
            (("thread_id", tid), ("resourceId", resource_id))
            if resource_id is not None
            else (("thread_id", tid),)
            for tid in threads
        ]
        index = "by_thread_resource_created" if resource_id is not None else "by_thread_created"
        return await self._list(
            eq,
            index,
            resource_id,
            include,
            date_range,
            metadata,
            page,
            per_page,
            order_by,
            direction,
            include_total,
        )

    async def list_by_resource(
        self,
        resource_id: str,
        *,
        include: Sequence[Include | Mapping[str, Any]] | None = None,
        date_range: DateRange | Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
        page: int = 0,
        per_page: int | None = 40,
        order_by: str = "createdAt",
        direction: str = "ASC",
        include_total: bool = True,
    ) -> Page[Message]:
        """One page of a resource's messages across all its threads (as :meth:`list`)."""
        check_id(resource_id, "resource_id")
        return await self._list(
            [(("resourceId", resource_id),)],
            "by_resource_created",
            resource_id,
            include,
            date_range,
            metadata,
            page,
            per_page,
            order_by,
            direction,
            include_total,
        )

    async def _list(
        self,
        eqs: builtins.list[tuple[tuple[str, Any], ...]],
        index: str,
        resource_id: str | None,
        include: Sequence[Include | Mapping[str, Any]] | None,
        date_range: DateRange | Mapping[str, Any] | None,
        metadata: Mapping[str, Any] | None,
        page: int,
        per_page: int | None,
        order_by: str,
        direction: str,
        include_total: bool,
    ) -> Page[Message]:
        check_paging(page, per_page)
        if order_by not in ORDER_FIELDS:
            raise ValidationError(
                f"order_by must be 'createdAt', not {order_by!r}", field="order_by"
            )
        descending = check_direction(direction)
        if resource_id is not None:
            check_id(resource_id, "resource_id")
        includes = [coerce(Include, item, f"include[{i}]") for i, item in enumerate(include or ())]
        dates = coerce(DateRange, date_range, "date_range") if date_range is not None else None
        equals = check_scalar_filter(metadata, "metadata")
        queries = [
            IndexQuery(
                table=TABLE,
                index=index,
                sort_field="createdAt",
                eq=eq,
                range=dates.bounds() if dates else None,
                match=Match("content", equals, ("metadata",)) if equals else None,
            )
            for eq in eqs
        ]

        rows: builtins.list[dict[str, Any]] = []
        total, more = 0, False
        offset = page * per_page if per_page is not None else 0
        if per_page != 0:
            rows, total, more = await self._window(
                queries, offset, per_page, descending, include_total
            )
        seen = {row["id"] for row in rows}
        for row in await self._included(includes, resource_id):
            if row["id"] not in seen:
                seen.add(row["id"])
                rows.append(row)
        rows.sort(key=sort_key("createdAt"), reverse=descending)
        return Page[Message](
            items=[message_from_row(row) for row in rows],
            total=total,
            page=page,
            per_page=per_page,
            has_more=more,
        )

    async def _window(
        self,
        queries: builtins.list[IndexQuery],
        offset: int,
        limit: int | None,
        descending: bool,
        count: bool,
    ) -> tuple[builtins.list[dict[str, Any]], int, bool]:
        """The window, the total (a lower bound when not ``count``) and whether more follow."""
        listings = await self._rows()
        if count:
            rows, total = await listings.slice_all(
                queries, offset=offset, limit=limit, descending=descending
            )
            return rows, total, limit is not None and offset + limit < total
        rows, more = await listings.peek_all(
            queries, offset=offset, limit=limit, descending=descending
        )
        return rows, _lower_bound(offset, rows, more), more

    async def _included(
        self, includes: builtins.list[Include], resource_id: str | None
    ) -> builtins.list[dict[str, Any]]:
        if not includes:
            return []
        return await (await self._handler()).message_windows(includes, resource_id)

    async def get_many(self, ids: Iterable[str]) -> builtins.list[Message]:
        """The messages with these ids that exist, in the order asked for."""
        wanted = check_ids(ids, "ids")
        step = (await self._dispatcher.info()).load_many
        found: dict[str, Message] = {}
        for start in range(0, len(wanted), step):
            rows = await self._dispatcher.call("loadMany", TABLE, ids=wanted[start : start + step])
            for row in rows or ():
                found[row["id"]] = message_from_row(row)
        return [found[message_id] for message_id in wanted if message_id in found]

    async def update(self, updates: Iterable[Mapping[str, Any]]) -> builtins.list[Message]:
        """Apply partial updates ``{id, content?, role?, type?, thread_id?, resource_id?}``.

        ``content`` is merged into the stored content and its ``metadata`` one level deeper.
        A new ``thread_id`` moves the message; both threads' ``updatedAt`` move forward.
        Unknown ids are skipped. Returns the updated messages.
        """
        changes = [dict(update) for update in updates]
        for i, change in enumerate(changes):
            check_id(change.get("id"), f"updates[{i}].id")
            if "content" in change and not isinstance(change["content"], Mapping):
                raise ValidationError(f"updates[{i}].content must be a dict", field="content")
        current = {message.id: message for message in await self.get_many(c["id"] for c in changes)}
        merged: builtins.list[Message] = []
        moved_from: builtins.list[str] = []
        for change in changes:
            message = current.get(change["id"])
            if message is None:
                continue
            updated = _apply(message, change)
            if updated.thread_id != message.thread_id and message.thread_id:
                moved_from.append(message.thread_id)
            current[message.id] = updated
            merged.append(updated)
        await self._save(merged, moved_from)
        return merged

    async def delete(self, ids: Iterable[str]) -> None:
        """Delete these messages (missing ids are ignored); their threads' ``updatedAt`` moves.

        Many ids take several calls; should one fail after others were applied,
        PartialWriteError lists the ids deleted and those not.
        """
        wanted = check_ids(ids, "ids")
        await (await self._handler()).delete_messages(wanted)

    async def pop(self, thread_id: str) -> Message | None:
        """Delete the thread's newest message (by ``createdAt``; equal ones by insertion) and
        return it; None when the thread has none. The thread's ``updatedAt`` moves.

        One mutation on convex-mastra's handler, so concurrent pops never return the same
        message (capability ``atomic_message_pop``). On the stock handler it is a read, then a
        delete.
        """
        check_id(thread_id, "thread_id")
        row = await (await self._handler()).pop_message(thread_id)
        return None if row is None else message_from_row(row)

    def watch(self, thread_id: str, *, after: str | None = None) -> MessageWatch:
        """The thread's messages as they are written, live: ``async for message in ...``.

        Oldest first, in commit order: each message once, and again once after it changes or
        moves into the thread. Starts at the thread's first message, or after ``after``: a
        message id of the thread, or the ``cursor`` of an earlier watch. Over the store's
        one WebSocket (opened on first use, reconnecting by itself); leaving the loop or
        ``await watch.aclose()`` ends the subscription. Needs convex/mastra/live.ts deployed
        (see docs/live.md).
        """
        check_id(thread_id, "thread_id")
        if after is not None:
            check_id(after, "after")
        return MessageWatch(self._dispatcher, thread_id, after)

    async def iter(
        self,
        thread_id: str,
        *,
        direction: str = "ASC",
        page_size: int = 100,
        start_date: datetime | None = None,
        end_date: datetime | None = None,
    ) -> AsyncIterator[Message]:
        """Every message of a thread, one page in memory at a time."""
        check_id(thread_id, "thread_id")
        if isinstance(page_size, bool) or not isinstance(page_size, int) or page_size < 1:
            raise ValidationError("page_size must be a positive integer", field="page_size")
        dates = DateRange(start=start_date, end=end_date)
        query = thread_query(thread_id, dates.bounds())
        async for rows in (await self._rows()).iterate(
            query, descending=check_direction(direction), page_size=page_size
        ):
            for row in rows:
                yield message_from_row(row)


def _lower_bound(offset: int, window: list[dict[str, Any]], more: bool) -> int:
    """What an uncounted listing can say of its total: the rows up to the window's end."""
    return offset + len(window) + more if window else 0


def _apply(message: Message, change: Mapping[str, Any]) -> Message:
    """``message`` with a partial update applied, Mastra's merge rules for content."""
    fields = message.model_dump()
    for key, name in (
        ("role", "role"),
        ("type", "type"),
        ("thread_id", "thread_id"),
        ("threadId", "thread_id"),
        ("resource_id", "resource_id"),
        ("resourceId", "resource_id"),
        ("created_at", "created_at"),
        ("createdAt", "created_at"),
    ):
        if change.get(key) is not None:
            fields[name] = change[key]
    if "content" in change:
        old = content_dict(message.content)
        new = dict(change["content"])
        content = {**old, **new}
        if isinstance(old.get("metadata"), Mapping) and isinstance(new.get("metadata"), Mapping):
            content["metadata"] = {**old["metadata"], **new["metadata"]}
        fields["content"] = MessageContent.model_validate(content)
    return coerce(Message, fields, f"update of message {message.id!r}")
