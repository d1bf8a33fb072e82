"""Threads, messages and resources cross between @mastra/convex's TypeScript client and ours.

Both directions, on our handler (where a Mastra TypeScript app keeps working unchanged) and on
the stock handler (a Python service joining an existing Mastra deployment).
"""

from __future__ import annotations

from datetime import datetime, timezone

from convex_mastra import ConvexStore
from convex_mastra.pytest_plugin import Deployment
from tests.domains.conftest import date
from tests.local.test_ts_client import run_ts_client


async def test_what_typescript_writes_python_reads(any_deployment: Deployment, uid: str) -> None:
    thread_id, resource_id = f"ts-{uid}", f"r-{uid}"
    content = {"format": 2, "parts": [{"type": "text", "text": "hi from TS"}], "metadata": {"k": 1}}
    results = run_ts_client(
        any_deployment,
        [
            {
                "domain": "memory",
                "method": "saveThread",
                "args": {
                    "thread": {
                        "id": thread_id,
                        "resourceId": resource_id,
                        "title": "from TypeScript",
                        "metadata": {"lang": "ts", "n": 2},
                        "createdAt": date("2026-11-23T09:00:00.000Z"),
                        "updatedAt": date("2026-11-23T09:00:00.000Z"),
                    }
                },
            },
            {
                "domain": "memory",
                "method": "saveMessages",
                "args": {
                    "messages": [
                        {
                            "id": f"ts-m{n}-{uid}",
                            "threadId": thread_id,
                            "resourceId": resource_id,
                            "role": "user" if n % 2 else "assistant",
                            "type": "v2",
                            "createdAt": date(f"2026-11-23T09:00:0{n}.123Z"),
                            "content": content,
                        }
                        for n in range(3)
                    ]
                },
            },
            {
                "domain": "memory",
                "method": "updateResource",
                "args": {"resourceId": resource_id, "workingMemory": "# wm", "metadata": {"a": 1}},
            },
        ],
    )
    assert all("error" not in r for r in results), results
    async with ConvexStore(any_deployment.url, any_deployment.admin_key) as store:
        thread = await store.threads.get(thread_id, resource_id=resource_id)
        assert thread is not None and thread.title == "from TypeScript"
        assert thread.metadata == {"lang": "ts", "n": 2}
        assert thread.created_at == datetime(2026, 11, 23, 9, tzinfo=timezone.utc)
        page = await store.messages.list(thread_id)
        assert [m.id for m in page.items] == [f"ts-m{n}-{uid}" for n in range(3)]
        assert page.items[0].content.model_dump(exclude_none=True) == content
        assert page.items[1].role == "user" and page.items[1].resource_id == resource_id
        assert page.items[2].created_at == datetime(
            2026, 11, 23, 9, 0, 2, 123000, tzinfo=timezone.utc
        )
        resource = await store.resources.get(resource_id)
        assert resource is not None and resource.working_memory == "# wm"
        assert resource.metadata == {"a": 1}

        # Python writes next to TypeScript's rows: microseconds must not break the ordering.
        await store.messages.save(
            [
                {
                    "id": f"py-{uid}",
                    "threadId": thread_id,
                    "resourceId": resource_id,
                    "role": "assistant",
                    "createdAt": datetime(2026, 11, 23, 9, 0, 1, 123999, tzinfo=timezone.utc),
                    "content": {"parts": [{"type": "text", "text": "from Python"}]},
                }
            ]
        )
        page = await store.messages.list(thread_id)
        assert [m.id for m in page.items] == [
            f"ts-m0-{uid}",
            f"ts-m1-{uid}",
            f"py-{uid}",
            f"ts-m2-{uid}",
        ]


async def test_what_python_writes_typescript_reads(any_deployment: Deployment, uid: str) -> None:
    thread_id, resource_id = f"py-{uid}", f"r-{uid}"
    async with ConvexStore(any_deployment.url, any_deployment.admin_key) as store:
        when = datetime(2026, 11, 23, 10, 0, 0, 456789, tzinfo=timezone.utc)
        await store.threads.save(
            {
                "id": thread_id,
                "resource_id": resource_id,
                "title": "from Python",
                "metadata": {"$schema": "x", "lang": "py"},
                "created_at": when,
                "updated_at": when,
            }
        )
        await store.messages.save(
            [
                {
                    "id": f"py-m{n}-{uid}",
                    "thread_id": thread_id,
                    "resource_id": resource_id,
                    "role": "user",
                    "created_at": when.replace(second=n),
                    "content": {
                        "parts": [{"type": "text", "text": f"python {n}"}],
                        "metadata": {"n": n},
                    },
                }
                for n in range(3)
            ]
        )
        await store.resources.update(resource_id, working_memory="py wm", metadata={"$k": "v"})

    results = run_ts_client(
        any_deployment,
        [
            {"domain": "memory", "method": "getThreadById", "args": {"threadId": thread_id}},
            {
                "domain": "memory",
                "method": "listMessages",
                "args": {"threadId": thread_id, "perPage": 2, "page": 1},
            },
            {"domain": "memory", "method": "getResourceById", "args": {"resourceId": resource_id}},
            {
                "domain": "memory",
                "method": "listThreads",
                "args": {"filter": {"resourceId": resource_id}},
            },
        ],
    )
    assert all("error" not in r for r in results), results
    thread, listed, resource, threads = (r["result"] for r in results)
    assert thread["title"] == "from Python"
    assert thread["metadata"] == {"$schema": "x", "lang": "py"}
    assert thread["createdAt"] == {"$date": "2026-11-23T10:00:00.456Z"}
    assert listed["total"] == 3 and [m["id"] for m in listed["messages"]] == [f"py-m2-{uid}"]
    message = listed["messages"][0]
    assert message["threadId"] == thread_id and message["resourceId"] == resource_id
    assert message["content"]["parts"] == [{"type": "text", "text": "python 2"}]
    assert message["content"]["metadata"] == {"n": 2}
    assert resource["workingMemory"] == "py wm" and resource["metadata"] == {"$k": "v"}
    assert [t["id"] for t in threads["threads"]] == [thread_id]
