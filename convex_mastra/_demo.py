"""``python -m convex_mastra demo``: a scripted agent conversation on a local deployment.

No LLM: the "agent" echoes. The point is to show every domain and the cache working, with what
each step cost in time, on a deployment the user can look at and delete.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TypeVar

import anyio

from ._cache import ConvexServerCache
from ._models import WorkflowSnapshot
from ._store import ConvexStore
from .local import LocalDeployment

__all__ = ["run_demo"]

T = TypeVar("T")

MESSAGES = 200
PAGE = 40


def _steps(snapshot: WorkflowSnapshot | None) -> list[str]:
    return sorted(snapshot.context) if snapshot else []


class _Steps:
    """Runs the demo's steps, timing each and collecting one summary line per step."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    async def step(
        self, label: str, action: Callable[[], Awaitable[T]], detail: Callable[[T], str]
    ) -> T:
        started = time.perf_counter()
        result = await action()
        elapsed = (time.perf_counter() - started) * 1000
        line = f"  {label:<34} {elapsed:8.1f} ms  {detail(result)}"
        print(line, flush=True)
        self.lines.append(line)
        return result


async def run_demo(data_dir: Path) -> None:
    """Start a local deployment in ``data_dir`` and run the scripted conversation on it."""
    where = await anyio.Path(data_dir).absolute()
    print(f"convex-mastra demo: local deployment with data in {where}")
    print("  (an emulator on convex-test; delete the folder to start over)\n", flush=True)
    async with (
        LocalDeployment(data_dir=data_dir) as local,
        ConvexStore(local.url, local.admin_key) as store,
        ConvexServerCache(local.url, local.admin_key, key_prefix="demo:") as cache,
    ):
        await _conversation(store, cache)


async def _conversation(store: ConvexStore, cache: ConvexServerCache) -> None:
    run = uuid.uuid4().hex[:8]  # fresh ids, so running the demo again adds a new conversation
    user = f"user-{run}"
    now = datetime.now(timezone.utc).replace(microsecond=0)
    s = _Steps()

    await s.step(
        "resource + working memory",
        lambda: store.resources.update(user, working_memory="# User\n- name: Ada\n- likes: tea"),
        lambda r: f"{len(r.working_memory or '')} chars of working memory",
    )
    threads = [f"chat-{run}", f"billing-{run}"]
    for n, thread_id in enumerate(threads):
        await store.threads.save(
            {
                "id": thread_id,
                "resourceId": user,
                "title": thread_id.split("-")[0],
                "createdAt": now + timedelta(seconds=n),
                "updatedAt": now + timedelta(seconds=n),
            }
        )
    messages = [
        {
            "id": f"{run}-m{n:03d}",
            "threadId": threads[n % 2],
            "resourceId": user,
            "role": "user" if n % 4 < 2 else "assistant",
            "createdAt": now + timedelta(seconds=10 + n),
            "content": {"format": 2, "parts": [{"type": "text", "text": f"turn {n // 2}"}]},
        }
        for n in range(MESSAGES)
    ]
    await s.step(
        f"save {MESSAGES} messages in 2 threads",
        lambda: store.messages.save(messages),
        lambda saved: f"{len(saved)} saved in one transaction",
    )

    async def page_through() -> int:
        pages, page = 0, 0
        while True:
            listed = await store.messages.list(threads[0], page=page, per_page=PAGE)
            pages += 1
            if not listed.has_more:
                return pages
            page += 1

    await s.step(
        f"page through a thread ({PAGE}/page)",
        page_through,
        lambda pages: f"{pages} pages, {MESSAGES // 2} messages",
    )
    recent = await s.step(
        "load the 10 newest messages",
        lambda: store.messages.list(threads[0], per_page=10, direction="DESC"),
        lambda page: f"total {page.total}, newest {page.items[0].id}",
    )
    await s.step(
        "update a message's content",
        lambda: store.messages.update(
            [{"id": recent.items[0].id, "content": {"metadata": {"edited": True}}}]
        ),
        lambda updated: f"metadata {updated[0].content.metadata}",
    )
    await s.step(
        "move a message to the other thread",
        lambda: store.messages.update([{"id": recent.items[1].id, "threadId": threads[1]}]),
        lambda moved: f"now in {moved[0].thread_id}",
    )

    async def live_reply() -> str:
        # A watcher on the thread, after its newest message: the reply saved next arrives.
        newest = (await store.messages.list(threads[0], per_page=1, direction="DESC")).items[0]
        async with store.messages.watch(threads[0], after=newest.id) as watch:
            reply = {**messages[0], "id": f"{run}-live", "role": "assistant"}
            await store.messages.save([{**reply, "createdAt": now + timedelta(minutes=10)}])
            return (await anext(watch)).id

    await s.step(
        "watch a thread: a new reply arrives",
        live_reply,
        lambda got: f"{got} pushed over the WebSocket",
    )
    counts = [(await store.messages.list(t, per_page=1)).total for t in threads]
    print(f"  {'':<34} {'':>11}  threads now hold {counts[0]} and {counts[1]} messages")

    workflow, wf_run = "support-triage", f"run-{run}"
    await s.step(
        "persist a suspended workflow run",
        lambda: store.workflows.persist_snapshot(
            workflow,
            wf_run,
            {
                "runId": wf_run,
                "status": "suspended",
                "context": {"input": {"ticket": 42}},
                "suspendedPaths": {"approve": [1]},
                "value": {},
                "activePaths": [],
                "serializedStepGraph": [],
                "timestamp": int(now.timestamp() * 1000),
            },
            resource_id=user,
        ),
        lambda _: f"{workflow}/{wf_run}",
    )
    claimed = await s.step(
        "claim it to resume (status guard)",
        lambda: store.workflows.update_state(
            workflow, wf_run, expected_status="suspended", status="running"
        ),
        lambda snap: f"claimed: {snap is not None}",
    )
    assert claimed is not None
    await store.workflows.update_results(
        workflow, wf_run, "approve", {"status": "success", "output": {"ok": True}}
    )
    snapshot = await s.step(
        "load the snapshot back",
        lambda: store.workflows.load_snapshot(workflow, wf_run),
        lambda snap: f"status {snap.status if snap else None}, steps {_steps(snap)}",
    )
    assert snapshot is not None

    for n, value in enumerate((0.9, 0.7, 1.0)):
        await store.scorers.save(
            {
                "scorerId": "helpfulness",
                "runId": wf_run,
                "score": value,
                "source": "LIVE",
                "scorer": {"name": "helpfulness"},
                "entityId": "support-agent",
                "entityType": "AGENT",
                "input": [{"turn": n}],
                "output": {"text": f"answer {n}"},
            }
        )
    scores = await s.step(
        "list the run's 3 eval scores",
        lambda: store.scorers.list_by_run(wf_run),
        lambda page: (
            f"mean {sum(x.score for x in page.items) / max(1, page.total):.2f} over {page.total}"
        ),
    )
    assert scores.total == 3

    stream = f"stream:{run}"
    chunks = [{"type": "text-delta", "delta": f"token{n} "} for n in range(120)]
    await s.step(
        "push a 120-chunk replay stream",
        lambda: cache.list_push_many(stream, chunks),
        lambda _: "pushed in batches of 25",
    )
    replay = await s.step(
        "replay it from the cache",
        lambda: cache.list_range(stream, 0),
        lambda items: f"{len(items)} chunks, in order: {items == chunks}",
    )
    assert replay == chunks

    print("\nSummary")
    print(f"  resource {user}: working memory and 2 threads")
    print(f"  messages: {MESSAGES} saved, paged, updated and moved")
    print(f"  workflow {workflow}/{wf_run}: suspended, resumed, status {snapshot.status}")
    print(f"  scores: {scores.total} recorded for {wf_run}")
    print(f"  cache: {len(replay)} stream chunks replayed")
    print("Demo finished.")
