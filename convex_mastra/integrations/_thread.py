"""A Mastra thread as a framework's conversation log: what both adapters share.

The thread is created, owned by the given resource, on the first append, and a thread of
another resource is refused before anything is written. Appended messages get ``createdAt``
values after every message the log knows of, a millisecond apart, so Mastra's order (by
``createdAt``) is the order they were appended in. Reads of the newest messages go through the
thread's ``createdAt`` index and never read the whole thread.
"""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from .._errors import ValidationError
from .._models import Message, Thread, utc_now
from .._store import ConvexStore

__all__ = ["ThreadLog"]


class ThreadLog:
    """Append, read, pop and clear the messages of one Mastra thread."""

    def __init__(self, store: ConvexStore, thread_id: str, *, resource_id: str, title: str) -> None:
        for name, value in (("thread_id", thread_id), ("resource_id", resource_id)):
            if not isinstance(value, str) or not value:
                raise ValidationError(f"{name} must be a non-empty string", field=name)
        self.store = store
        self.thread_id = thread_id
        self.resource_id = resource_id
        self._title = title
        self._thread_ready = False
        self._last_created: datetime | None = None

    async def read(self, limit: int | None = None) -> builtins.list[Message]:
        """Every message, oldest first; with ``limit``, only the newest ``limit`` (read from
        the index's end)."""
        if limit is None:
            return [m async for m in self.store.messages.iter(self.thread_id)]
        if limit <= 0:
            return []
        page = await self.store.messages.list(
            self.thread_id, per_page=limit, direction="DESC", include_total=False
        )
        return page.items[::-1]

    async def append(self, messages: Sequence[tuple[str, dict[str, Any]]]) -> None:
        """Save ``(role, content)`` pairs after every message already in the thread, in one
        save (all or nothing)."""
        if not messages:
            return
        await self._ensure_thread()
        first = self._next_created(len(messages))
        await self.store.messages.save(
            {
                "id": f"{self.thread_id}-{uuid.uuid4().hex}",
                "threadId": self.thread_id,
                "resourceId": self.resource_id,
                "role": role,
                "type": "v2",
                "createdAt": first + timedelta(milliseconds=n),
                "content": content,
            }
            for n, (role, content) in enumerate(messages)
        )

    async def pop(self) -> Message | None:
        """Delete and return the newest message (one mutation on convex-mastra's handler)."""
        return await self.store.messages.pop(self.thread_id)

    async def clear(self) -> None:
        """Delete the thread and its messages; the next append creates it again."""
        await self.store.threads.delete(self.thread_id)
        self._thread_ready = False
        self._last_created = None

    async def _ensure_thread(self) -> None:
        if self._thread_ready:
            return
        thread = await self.store.threads.get(self.thread_id)
        if thread is None:
            now = utc_now()
            thread = await self.store.threads.save(
                Thread(
                    id=self.thread_id,
                    resource_id=self.resource_id,
                    title=self._title,
                    created_at=now,
                    updated_at=now,
                )
            )
        elif thread.resource_id != self.resource_id:
            raise ValidationError(
                f"thread {self.thread_id!r} belongs to resource {thread.resource_id!r}, "
                f"not {self.resource_id!r}",
                field="resource_id",
            )
        self._last_created = thread.last_message_at
        self._thread_ready = True

    def _next_created(self, count: int) -> datetime:
        first = utc_now()
        if self._last_created is not None and first <= self._last_created:
            first = self._last_created + timedelta(milliseconds=1)
        self._last_created = first + timedelta(milliseconds=count - 1)
        return first
