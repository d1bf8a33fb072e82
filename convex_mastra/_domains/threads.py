"""``store.threads``: conversation threads, listed by resource and by time."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from .._codec import check_document_size, decode_json, json_arg, parse_time, to_iso
from .._errors import NotFoundError, ValidationError
from .._models import Message, Page, Thread, coerce
from .._paging import IndexQuery, Match, check_paging
from ._base import (
    Domain,
    check_choice,
    check_direction,
    check_id,
    check_ids,
    check_scalar_filter,
    no_extras,
    now_iso,
    strip_system,
)

if TYPE_CHECKING:
    from .._handlers import HandlerChoice
    from .messages import Messages

__all__ = ["ThreadClone", "Threads"]

TABLE = "mastra_threads"

ORDER_FIELDS = {
    "createdAt": "createdAt",
    "created_at": "createdAt",
    "updatedAt": "updatedAt",
    "updated_at": "updatedAt",
    "lastMessageAt": "lastMessageAt",
    "last_message_at": "lastMessageAt",
}
# Stored sort field -> (index without a resource, index within one resource).
INDEXES = {
    "createdAt": ("by_created", "by_resource_created"),
    "updatedAt": ("by_updated", "by_resource_updated"),
    "lastMessageAt": ("by_last_message", "by_resource_last_message"),
}


class ThreadClone(BaseModel):
    """The result of :meth:`Threads.clone`: the new thread and source -> copy message ids."""

    model_config = ConfigDict(frozen=True)

    thread: Thread
    message_id_map: dict[str, str]


def thread_from_row(row: Mapping[str, Any]) -> Thread:
    """A stored thread row as a Thread."""
    fields = strip_system(row)
    metadata = decode_json(fields.pop("metadata", None))
    return Thread.model_validate(
        {**fields, "metadata": metadata if isinstance(metadata, dict) else None}
    )


def thread_record(thread: Thread) -> dict[str, Any]:
    """A Thread as the stored row @mastra/convex writes (lastMessageAt is the server's)."""
    no_extras(thread, "thread")
    record = thread.to_mastra()
    record.pop("lastMessageAt", None)
    record["metadata"] = json_arg(thread.metadata or {}, "thread.metadata")
    record["createdAt"] = to_iso(thread.created_at)
    record["updatedAt"] = to_iso(thread.updated_at)
    # The handler checks the size too, but a record far over it could not even be sent.
    check_document_size(thread.id, record)
    return record


class Threads(Domain):
    """Threads: save, get, list, update, delete and clone."""

    def __init__(self, dispatcher: Any, handlers: HandlerChoice, messages: Messages) -> None:
        super().__init__(dispatcher, handlers)
        self._messages = messages

    async def save(self, thread: Thread | Mapping[str, Any]) -> Thread:
        """Insert or replace the thread with this id; returns it as stored."""
        model = coerce(Thread, thread, "thread")
        # Blank ids are refused on reads, so a thread saved under one could never be read.
        check_id(model.id, "thread.id")
        check_id(model.resource_id, "thread.resource_id")
        if model.metadata is None:
            model = model.model_copy(update={"metadata": {}})  # stored as {}, as upstream does
        await self._dispatcher.call("insert", TABLE, record=thread_record(model))
        return model

    async def get(self, thread_id: str, *, resource_id: str | None = None) -> Thread | None:
        """The thread, or None when it is missing or (with ``resource_id``) owned by another."""
        check_id(thread_id, "thread_id")
        row = await self._dispatcher.call("load", TABLE, keys={"id": thread_id})
        if not row or (resource_id is not None and row.get("resourceId") != resource_id):
            return None
        return thread_from_row(row)

    async def list(
        self,
        *,
        resource_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        page: int = 0,
        per_page: int | None = 100,
        order_by: str = "createdAt",
        direction: str = "DESC",
    ) -> Page[Thread]:
        """One page of threads, newest first by default; ``per_page=None`` lists all.

        ``metadata`` keeps threads whose metadata has every given key with an equal scalar
        value. ``order_by="lastMessageAt"`` puts threads without messages last (DESC) or first
        (ASC).
        """
        check_paging(page, per_page)
        field = check_choice(order_by, ORDER_FIELDS, "order_by")
        descending = check_direction(direction)
        equals = check_scalar_filter(metadata, "metadata")
        if resource_id is not None:
            check_id(resource_id, "resource_id")
        query = IndexQuery(
            table=TABLE,
            index=INDEXES[field][resource_id is not None],
            sort_field=field,
            eq=(("resourceId", resource_id),) if resource_id is not None else (),
            match=Match("metadata", equals) if equals else None,
        )
        return await (await self._rows()).page(
            query, thread_from_row, page=page, per_page=per_page, descending=descending
        )

    async def update(
        self,
        thread_id: str,
        *,
        title: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Thread:
        """Change the title and/or merge ``metadata`` into the stored metadata, key by key.

        The merge happens inside one mutation, so concurrent updates never lose each other's
        keys. ``updatedAt`` always moves forward. Raises NotFoundError for a missing thread.
        """
        check_id(thread_id, "thread_id")
        if title is not None and not isinstance(title, str):
            raise ValidationError(f"title must be a string, not {title!r}", field="title")
        if metadata is not None and not isinstance(metadata, Mapping):
            raise ValidationError("metadata must be a dict", field="metadata")
        update = json_arg(dict(metadata), "metadata") if metadata is not None else None
        # What is sent alone may be too large already (the merge can only add to it).
        check_document_size(thread_id, {"title": title or "", "metadata": update})
        handler = await self._handler()
        row = await handler.update_thread(thread_id, title, metadata, update)
        if not row:
            raise NotFoundError(f"thread {thread_id!r} not found", op="updateThread", table=TABLE)
        return thread_from_row(row)

    async def delete(self, thread_id: str) -> None:
        """Delete the thread and all its messages (in bounded batches for huge threads).

        Messages go first and the thread row last, so no message outlives its thread. An
        interrupted delete leaves a consistent, smaller thread; calling again finishes it.
        """
        check_id(thread_id, "thread_id")
        await (await self._handler()).delete_thread(thread_id)

    async def clone(
        self,
        thread_id: str,
        *,
        new_thread_id: str | None = None,
        title: str | None = None,
        resource_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        message_limit: int | None = None,
        start_date: datetime | None = None,
        end_date: datetime | None = None,
        message_ids: Sequence[str] | None = None,
    ) -> ThreadClone:
        """Copy a thread and (some of) its messages into a new, independent thread.

        Messages may be limited to a date range (inclusive), to given ids, and to the newest
        ``message_limit``. Copies get new ids; the new thread's metadata records the source
        under ``clone``, as Mastra does. The copy is written in batches: if it fails part way,
        the new thread holds a prefix of the copied messages and can be deleted.
        """
        check_id(thread_id, "thread_id")
        if message_limit is not None and (
            isinstance(message_limit, bool) or not isinstance(message_limit, int)
        ):
            raise ValidationError("message_limit must be an integer", field="message_limit")
        wanted = set(check_ids(message_ids, "message_ids")) if message_ids is not None else None
        source = await self.get(thread_id)
        if source is None:
            raise NotFoundError(f"thread {thread_id!r} not found", op="clone", table=TABLE)
        new_id = new_thread_id or str(uuid.uuid4())
        check_id(new_id, "new_thread_id")
        if await self.get(new_id) is not None:
            raise ValidationError(f"thread {new_id!r} already exists", field="new_thread_id")

        selected: list[Message] = []
        async for message in self._messages.iter(
            thread_id, start_date=start_date, end_date=end_date
        ):
            if wanted is None or message.id in wanted:
                selected.append(message)
        if message_limit is not None and message_limit > 0:
            selected = selected[-message_limit:]

        now = parse_time(now_iso())
        clone_info: dict[str, Any] = {"sourceThreadId": thread_id, "clonedAt": to_iso(now)}
        if selected:
            clone_info["lastMessageId"] = selected[-1].id
        thread = await self.save(
            Thread(
                id=new_id,
                resource_id=resource_id or source.resource_id,
                title=title or (f"Clone of {source.title}" if source.title else ""),
                metadata={**(metadata or {}), "clone": clone_info},
                created_at=now,
                updated_at=now,
            )
        )
        id_map = {message.id: str(uuid.uuid4()) for message in selected}
        copies = [
            message.model_copy(
                update={
                    "id": id_map[message.id],
                    "thread_id": new_id,
                    "resource_id": resource_id or message.resource_id or source.resource_id,
                }
            )
            for message in selected
        ]
        await self._messages.save(copies)
        stored = await self.get(new_id)
        return ThreadClone(thread=stored or thread, message_id_map=id_map)
