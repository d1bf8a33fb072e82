"""What the integration tests share: a turn run in a new process, and the thread as a Mastra
TypeScript app lists it."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson

from convex_mastra.pytest_plugin import Deployment
from tests.local.test_ts_client import run_ts_client

ROOT = Path(__file__).parents[2]


async def turn_in_new_process(module: str, deployment: Deployment, *args: str) -> Any:
    """Run ``python -m tests.integrations.<module> URL ADMIN_KEY *args``; its JSON output."""
    done = await asyncio.to_thread(
        subprocess.run,
        [
            sys.executable,
            "-m",
            f"tests.integrations.{module}",
            deployment.url,
            deployment.admin_key,
            *args,
        ],
        cwd=ROOT,
        capture_output=True,
        timeout=120,
        check=True,
    )
    return orjson.loads(done.stdout)


async def listed_by_mastra(
    deployment: Deployment, thread_id: str
) -> tuple[list[str], list[str], list[dict[str, Any]]]:
    """The thread's messages as @mastra/convex's client lists them: their roles, their text
    parts' text, and their tool invocations, in order."""
    [listed] = await asyncio.to_thread(
        run_ts_client,
        deployment,
        [
            {
                "domain": "memory",
                "method": "listMessages",
                "args": {"threadId": thread_id, "perPage": False},
            }
        ],
    )
    messages = listed["result"]["messages"]
    parts = [p for m in messages for p in m["content"]["parts"]]
    return (
        [m["role"] for m in messages],
        [p["text"] for p in parts if p.get("type") == "text"],
        [p["toolInvocation"] for p in parts if p.get("type") == "tool-invocation"],
    )
