"""The operations measured, each done three ways against the same deployment and function.

- ours: this SDK (``ConvexStore``, ``ConvexServerCache``);
- ts: @mastra/convex 1.5.x's own TypeScript client (``node/bench.mjs``), which speaks upstream's
  protocol: lists fetch every matching row (``queryTable``, at most 10,000) and page in memory;
- raw: the ``convex`` package's ``ConvexHttpClient`` sending, by hand, the same requests the SDK
  sends. It is the floor: ours / raw shows what the SDK adds on top of the wire protocol.
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import orjson
from convex.http_client import ConvexHttpClient

from convex_mastra import ConvexServerCache, ConvexStore

STORAGE = "mastra/storage:handle"
CACHE = "mastra/cache:handle"
T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)

RESOURCE = "bench-resource"
THREAD = "bench-thread"
"""The small thread that saves go to and reads and updates touch."""
BIG_THREAD = "big-thread"
BIG_THREAD_RESOURCE = "big-thread-owner"
BIG_RESOURCE = "resource-with-5000-threads"
THREADS_OF_BIG_RESOURCE = 5_000
CACHE_KEYS = 10_000

_ids = itertools.count()
CONTENT = {"format": 2, "parts": [{"type": "text", "text": "hello from the benchmark"}]}


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def message_row(message_id: str, thread: str, resource: str, created: datetime) -> dict[str, Any]:
    """A message as @mastra/convex stores it (what the raw client and bulk imports send)."""
    return {
        "id": message_id,
        "thread_id": thread,
        "content": orjson.dumps(CONTENT).decode(),
        "role": "user",
        "type": "v2",
        "createdAt": iso(created),
        "resourceId": resource,
    }


def thread_row(thread: str, resource: str, created: datetime) -> dict[str, Any]:
    return {
        "id": thread,
        "resourceId": resource,
        "title": "benchmark",
        "metadata": {},
        "createdAt": iso(created),
        "updatedAt": iso(created),
    }


def big_messages(start: int, stop: int) -> list[dict[str, Any]]:
    """Messages ``start..stop`` of the big thread, one millisecond apart: m00000 is the oldest."""
    return [
        message_row(f"m{n:05d}", BIG_THREAD, BIG_THREAD_RESOURCE, T0 + timedelta(milliseconds=n))
        for n in range(start, stop)
    ]


def big_resource_threads() -> list[dict[str, Any]]:
    """5,000 threads of one resource, one second apart: th0000 is the oldest."""
    return [
        thread_row(f"th{n:04d}", BIG_RESOURCE, T0 + timedelta(seconds=n))
        for n in range(THREADS_OF_BIG_RESOURCE)
    ]


def cache_rows(prefix: str) -> list[dict[str, Any]]:
    return [
        {
            "key": f"{prefix}{n}",
            "keyPrefix": prefix,
            "kind": "value",
            "value": "1",
            "expiresAt": None,
        }
        for n in range(CACHE_KEYS)
    ]


class Raw:
    """``ConvexHttpClient`` calling the handlers with the SDK's requests and nothing around it."""

    def __init__(self, url: str, admin_key: str) -> None:
        self.client = ConvexHttpClient(url)
        self.client.set_admin_auth(admin_key)

    def call(self, request: dict[str, Any], function: str = STORAGE) -> dict[str, Any]:
        answer: dict[str, Any] = self.client.mutation(function, request)
        if not answer.get("ok"):
            raise RuntimeError(f"{request['op']}: {answer.get('error')}")
        return answer

    def save(self, count: int) -> None:
        rows = [message_row(f"raw-{next(_ids)}", THREAD, RESOURCE, T0) for _ in range(count)]
        self.call({"op": "saveMessages", "messages": rows, "threadUpdatedAt": iso(_now())})

    def get_thread(self) -> Any:
        request = {"op": "load", "tableName": "mastra_threads", "keys": {"id": THREAD}}
        return self.call(request)["result"]

    def update_thread(self) -> Any:
        request = {
            "op": "updateThread",
            "tableName": "mastra_threads",
            "id": THREAD,
            "title": "benchmark",
            "metadata": {"step": str(next(_ids))},
            "updatedAt": iso(_now()),
        }
        return self.call(request)["result"]

    def window(
        self, table: str, index: str, eq: list[dict[str, Any]], offset: int, limit: int, desc: bool
    ) -> tuple[list[str], int]:
        """A page as the SDK reads it: total and window from the rank tree in one call; where
        the handler keeps none, the total from counters, then the window from the nearer end of
        the index, skipping at most 4,000 rows per call (the handler's scan bound)."""
        ranked = self.call(
            {
                "op": "pageByRank",
                "tableName": table,
                "index": index,
                "eq": eq,
                "order": "desc" if desc else "asc",
                "offset": offset,
                "numItems": limit,
            }
        )["result"]
        if ranked["ranked"] and (ranked["isDone"] or len(ranked["page"]) == limit):
            return [row["id"] for row in ranked["page"]], int(ranked["total"])
        total = int(self.call({"op": "count", "tableName": table, "eq": eq})["result"])
        end = min(total, offset + limit)
        limit = end - offset
        far = total - end < offset
        if far:  # the same rows, counted from the other end of the index
            offset, desc = total - end, not desc
        rows: list[dict[str, Any]] = []
        skip, cursor = offset, None
        while True:
            want = limit - len(rows)
            step, want = (min(skip, 4000), 0) if skip > 4000 - want else (skip, want)
            request = {
                "op": "pageByIndex",
                "tableName": table,
                "index": index,
                "eq": eq,
                "order": "desc" if desc else "asc",
                "skip": step,
                "numItems": want,
                **({"cursor": cursor} if cursor else {}),
            }
            reply = self.call(request)["result"]
            skip -= int(reply["skipped"])
            rows += reply["page"]
            if reply["isDone"] or len(rows) >= limit:
                break
            cursor = reply["continueCursor"]
        if far:
            rows.reverse()
        return [row["id"] for row in rows], total

    def rebuild_counters(self) -> None:
        """Recount every counted table, forced.

        ``store.rebuild_counters()`` leaves a table alone once its counters are ready, and here
        they are: the SDK wrote to these tables before the bulk import, which bypasses counting.
        """
        for table in self.call({"op": "info"})["result"]["counted"]:
            request = {"op": "rebuildCounters", "tableName": table, "batchSize": 1000}
            while self.call({**request, "force": True}).get("hasMore"):
                pass

    def clear_cache(self, prefix: str) -> None:
        while self.call({"op": "clear", "keyPrefix": prefix}, CACHE).get("hasMore"):
            pass


def answer_samples() -> dict[str, dict[str, Any]]:
    """One request per op the throughput runs send, to record answers for the instant backend."""
    row = message_row(f"sample-{next(_ids)}", THREAD, RESOURCE, T0)
    return {
        "info": {"op": "info", "tableName": "mastra_threads"},
        "load": {"op": "load", "tableName": "mastra_threads", "keys": {"id": THREAD}},
        "saveMessages": {"op": "saveMessages", "messages": [row]},
        # @mastra/convex saves with batchInsert, then patches the thread's updatedAt.
        "batchInsert": {"op": "batchInsert", "tableName": "mastra_messages", "records": [row]},
        "patch": {
            "op": "patch",
            "tableName": "mastra_threads",
            "id": THREAD,
            "record": {"updatedAt": iso(T0)},
        },
    }


def _now() -> datetime:
    return datetime.now(timezone.utc)


def ours_message(thread: str = THREAD) -> dict[str, Any]:
    return {
        "id": f"ours-{next(_ids)}",
        "threadId": thread,
        "resourceId": RESOURCE,
        "role": "user",
        "type": "v2",
        "content": CONTENT,
        "createdAt": T0,
    }


def ts_messages(count: int) -> list[dict[str, Any]]:
    return [
        {
            "id": f"ts-%n-{i}",
            "threadId": THREAD,
            "resourceId": RESOURCE,
            "role": "user",
            "type": "v2",
            "content": CONTENT,
            "createdAt": {"$date": iso(T0)},
        }
        for i in range(count)
    ]


@dataclass
class Op:
    """One logical operation, three ways; ``expected`` is the page it must return, if a listing."""

    name: str
    ours: Callable[[], Awaitable[Any]]
    raw: Callable[[], Any]
    ts: dict[str, Any]
    expected: tuple[list[str], int] | None = None


def small_ops(store: ConvexStore, raw: Raw) -> list[Op]:
    """Operations on a small thread: the per-call costs, the CPU and the throughput runs."""

    def save(count: int) -> Op:
        async def ours() -> Any:
            return await store.messages.save([ours_message() for _ in range(count)])

        return Op(
            f"save {count} message{'s' if count > 1 else ''}",
            ours,
            lambda: raw.save(count),
            {
                "domain": "memory",
                "method": "saveMessages",
                "args": {"messages": ts_messages(count)},
            },
        )

    async def get() -> Any:
        return await store.threads.get(THREAD)

    async def update() -> Any:
        return await store.threads.update(
            THREAD, title="benchmark", metadata={"step": str(next(_ids))}
        )

    return [
        save(1),
        save(25),
        save(100),
        Op(
            "get thread",
            get,
            raw.get_thread,
            {"domain": "memory", "method": "getThreadById", "args": {"threadId": THREAD}},
        ),
        Op(
            "update thread metadata",
            update,
            raw.update_thread,
            {
                "domain": "memory",
                "method": "updateThread",
                "args": {"id": THREAD, "title": "benchmark", "metadata": {"step": "%n"}},
            },
        ),
    ]


def listing_ops(store: ConvexStore, raw: Raw) -> list[Op]:
    """Pages of the 20,000-message thread and of the resource with 5,000 threads."""
    n = 20_000
    messages = [f"m{i:05d}" for i in range(n)]
    threads_newest_first = [f"th{i:04d}" for i in reversed(range(THREADS_OF_BIG_RESOURCE))]
    msg_eq = [{"field": "thread_id", "value": BIG_THREAD}]
    thread_eq = [{"field": "resourceId", "value": BIG_RESOURCE}]

    def message_page(name: str, page: int, desc: bool) -> Op:
        async def ours() -> tuple[list[str], int]:
            got = await store.messages.list(
                BIG_THREAD, page=page, per_page=40, direction="DESC" if desc else "ASC"
            )
            return [m.id for m in got.items], got.total

        order = messages[::-1] if desc else messages
        args: dict[str, Any] = {"threadId": BIG_THREAD, "page": page, "perPage": 40}
        if desc:
            args["orderBy"] = {"field": "createdAt", "direction": "DESC"}
        return Op(
            name,
            ours,
            lambda: raw.window("mastra_messages", "by_thread_created", msg_eq, page * 40, 40, desc),
            {"domain": "memory", "method": "listMessages", "args": args},
            expected=(order[page * 40 : page * 40 + 40], n),
        )

    def thread_page(name: str, page: int) -> Op:
        async def ours() -> tuple[list[str], int]:
            got = await store.threads.list(resource_id=BIG_RESOURCE, page=page, per_page=20)
            return [t.id for t in got.items], got.total

        return Op(
            name,
            ours,
            lambda: raw.window(
                "mastra_threads", "by_resource_created", thread_eq, page * 20, 20, True
            ),
            {
                "domain": "memory",
                "method": "listThreads",
                "args": {"filter": {"resourceId": BIG_RESOURCE}, "page": page, "perPage": 20},
            },
            expected=(threads_newest_first[page * 20 : page * 20 + 20], THREADS_OF_BIG_RESOURCE),
        )

    return [
        message_page("last page (40) of a 20,000-message thread", 499, desc=False),
        message_page("newest 40 of that thread (DESC)", 0, desc=True),
        message_page("middle page (page 250) of that thread", 250, desc=False),
        thread_page("page 3 (20 per page) of 5,000 threads of a resource", 3),
        thread_page("middle page (page 125) of those threads", 125),
    ]


def clear_op(cache: ConvexServerCache, raw: Raw) -> Op:
    """Clearing a cache prefix of 10,000 keys; each client clears its own, freshly seeded.

    ``cache`` is open and has made a call already: its one-time handler check is not counted.
    """
    return Op(
        "clear a 10,000-key cache prefix",
        cache.clear,
        lambda: raw.clear_cache("bench:raw:"),
        {"cache": {"keyPrefix": "bench:ts:"}, "method": "clear", "args": []},
    )
