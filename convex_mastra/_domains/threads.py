"""``store.threads``: conversation threads, listed by resource and by time."""

from __future__ import annotations

import inspect
import random
import uuid
import weakref
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import anyio
from pydantic import BaseModel, ConfigDict

from .._codec import check_document_size, decode_json, json_arg, parse_time, to_iso
from .._errors import (
    ConvexMastraError,
    NotFoundError,
    PartialWriteError,
    StorageOperationError,
    ValidationError,
)
from .._models import Message, Page, Thread, coerce
from .._paging import IndexQuery, Match, check_paging
from ._base import (
    CONFLICT,
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

__all__ = ["ThreadClone", "ThreadCopy", "Threads"]

TABLE = "mastra_threads"
STORED_BESIDE = {"lastMessageAt": "2000-01-01T00:00:00.000Z", "messageSeq": 0}
"""What convex-mastra's handler stores in a thread beside its row (convex/mastra/lib/writer.ts):
a thread is sized with it, so one that fits only without it is refused when it is saved, not
when its first message is."""

UPDATE_ATTEMPTS = 50
"""How often update_metadata runs ``update`` again after losing a race to another process."""

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


class ThreadCopy(BaseModel):
    """The result of :meth:`Threads.copy`: the new thread and source -> copy message ids
    (Mastra's ``StorageCopyThreadOutput``)."""

    model_config = ConfigDict(frozen=True)

    thread: Thread
    message_id_map: dict[str, str]


ThreadClone = ThreadCopy
"""The name :meth:`Threads.clone` results had before Mastra called the operation copy."""


def thread_from_row(row: Mapping[str, Any]) -> Thread:
    """A stored thread row as a Thread."""
    fields = strip_system(row)
    fields.pop("messageSeq", None)  # the server's write counter for live watchers
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
    check_document_size(thread.id, {**record, **STORED_BESIDE})
    return record


class Threads(Domain):
    """Threads: save, get, list, update, delete and clone."""

    def __init__(self, dispatcher: Any, handlers: HandlerChoice, messages: Messages) -> None:
        super().__init__(dispatcher, handlers)
        self._messages = messages
        self._locks: weakref.WeakValueDictionary[str, anyio.Lock] = weakref.WeakValueDictionary()

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

    patch = update
    """Mastra's ``patchThread``: :meth:`update` already leaves what it is not given alone."""

    async def update_metadata(
        self,
        thread_id: str,
        update: Callable[[Thread], Mapping[str, Any] | Awaitable[Mapping[str, Any] | None] | None],
        *,
        resource_id: str | None = None,
    ) -> Thread | None:
        """Replace the metadata with ``update(thread)``, never losing a concurrent update
        (Mastra's ``updateThreadMetadata``). ``update`` may be async; returning None leaves
        the thread as it is. None when the thread is missing (or owned by another resource).

        Callers in this store take turns per thread. The write is conditional: the handler
        stores the new metadata only if the metadata ``update`` saw is still there, in the same
        mutation, and otherwise ``update`` runs again on the fresh thread, so writers in other
        processes cannot lose each other's changes either. (On the stock handler the check is
        a separate read: there, only callers in this store are serialized.)
        """
        check_id(thread_id, "thread_id")
        if not callable(update):
            raise ValidationError("update must be a function of the thread", field="update")
        async with self._turn(thread_id):
            for attempt in range(UPDATE_ATTEMPTS):
                current = await self.get(thread_id, resource_id=resource_id)
                if current is None:
                    return None
                new = update(current)
                if inspect.isawaitable(new):
                    new = await new
                if new is None:
                    return current
                if not isinstance(new, Mapping):
                    raise ValidationError(
                        f"update must return the new metadata as a dict (or None), not "
                        f"{type(new).__name__}",
                        field="update",
                    )
                encoded = json_arg(dict(new), "metadata")
                check_document_size(thread_id, {"title": current.title, "metadata": encoded})
                handler = await self._handler()
                row = await handler.replace_thread_metadata(
                    thread_id, current.metadata or {}, new, encoded
                )
                if row is None:
                    return None
                if row is not CONFLICT:
                    return thread_from_row(row)
                # Another process wrote first: back off a little, more each time, and retry.
                await anyio.sleep(random.uniform(0, 0.002 * (attempt + 1)))
        raise StorageOperationError(
            f"thread {thread_id!r}: metadata changed under update_metadata {UPDATE_ATTEMPTS} "
            "times in a row; nothing was written by this call",
            op="updateThreadMetadata",
            table=TABLE,
            code="CONFLICT",
        )

    def _turn(self, thread_id: str) -> anyio.Lock:
        """The lock callers of this store take per thread (dropped when nobody holds it)."""
        lock = self._locks.get(thread_id)
        if lock is None:
            lock = self._locks[thread_id] = anyio.Lock()
        return lock

    async def move(self, thread_id: str, resource_id: str) -> Thread:
        """Give the thread and every one of its messages to ``resource_id`` (Mastra's
        ``updateThreadResourceId``); ``createdAt`` is kept, ``updatedAt`` moves. Moving to the
        resource it has is a no-op. Raises NotFoundError for a missing thread.

        All or nothing, at any size: one Convex transaction holds at most 16,000 writes, so a
        long thread moves in batches of 500 messages, each a transaction, with the thread row
        in the last one. Until then the thread still names its old resource; if a batch fails,
        the messages already moved are moved back before the error is raised. Listings by
        resource see the messages move batch by batch meanwhile. Should the move back fail as
        well (the deployment gone, say), PartialWriteError says so; calling ``move`` again
        finishes the move.
        """
        check_id(thread_id, "thread_id")
        check_id(resource_id, "resource_id")
        thread = await self.get(thread_id)
        if thread is None:
            raise NotFoundError(f"thread {thread_id!r} not found", op="move", table=TABLE)
        if thread.resource_id == resource_id:
            return thread
        handler = await self._handler()
        try:
            found = await handler.move_thread(thread_id, resource_id)
        except ConvexMastraError as exc:
            try:
                await handler.move_thread(thread_id, thread.resource_id)
            except ConvexMastraError as undo:
                raise PartialWriteError(
                    f"moving thread {thread_id!r} to {resource_id!r} failed "
                    f"({type(exc).__name__}: {exc}), and moving its messages back failed too "
                    f"({type(undo).__name__}: {undo}). Some messages may name the new resource; "
                    "calling move again finishes the move.",
                    done=[],
                    not_done=[thread_id],
                ) from exc
            raise
        moved = await self.get(thread_id) if found else None
        if moved is None:
            raise NotFoundError(f"thread {thread_id!r} not found", op="move", table=TABLE)
        return moved

    async def delete(self, thread_id: str) -> None:
        """Delete the thread and all its messages (in bounded batches for huge threads).

        Messages go first and the thread row last, so no message outlives its thread. An
        interrupted delete leaves a consistent, smaller thread; calling again finishes it.
        """
        check_id(thread_id, "thread_id")
        await (await self._handler()).delete_thread(thread_id)

    async def copy(
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
    ) -> ThreadCopy:
        """Copy a thread and (some of) its messages into a new, independent thread
        (Mastra's ``copyThread``); :meth:`clone` is the same operation under its older name.

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
            raise NotFoundError(f"thread {thread_id!r} not found", op="copy", table=TABLE)
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
        return ThreadCopy(thread=stored or thread, message_id_map=id_map)

    clone = copy
