"""pydantic-ai message history on Mastra threads: ``ConvexMessageHistory``.

    pip install 'convex-mastra[pydantic-ai]'     # Python 3.11 or later, as pydantic-ai

``await history.load()`` gives the thread as ``list[ModelMessage]`` for
``agent.run(..., message_history=...)``; ``await history.save(result.new_messages())`` appends a
run's messages. Each ``ModelMessage`` is one Mastra message, so a Mastra TypeScript app or
Mastra Studio shows the conversation:

- a request with a user prompt is a ``user`` message, its text as text parts (system prompts and
  retry prompts are kept but not shown); a request of tool returns is an ``assistant`` message
  with a ``tool-invocation`` part in state ``result`` for each;
- a response is an ``assistant`` message: text parts, a ``tool-invocation`` part in state
  ``call`` for each tool call, a ``reasoning`` part for thinking.

The message itself, as pydantic-ai serializes it (``ModelMessagesTypeAdapter``, JSON mode), is
kept in ``content.metadata["pydanticAiMessage"]``, and that is what ``load`` returns: a message
reads back equal to the one saved. Messages written by others (a Mastra app) are read as what
their parts show.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from .._models import Message
from .._store import ConvexStore
from ._thread import ThreadLog

try:
    from pydantic_ai.messages import ModelMessage, ModelMessagesTypeAdapter
except ImportError as exc:  # pragma: no cover - the extra is what installs it
    raise ImportError(
        "convex_mastra.integrations.pydantic_ai needs pydantic-ai: "
        "pip install 'convex-mastra[pydantic-ai]'"
    ) from exc

__all__ = ["MESSAGE_KEY", "ConvexMessageHistory", "message_content", "model_messages"]

MESSAGE_KEY = "pydanticAiMessage"
"""Key of ``content.metadata`` holding the pydantic-ai message a Mastra message was saved from."""


class ConvexMessageHistory:
    """A pydantic-ai conversation kept in the Mastra thread ``thread_id``.

    The thread is created (owned by ``resource_id``) on the first save; a thread of another
    resource is refused before anything is written.
    """

    def __init__(
        self, store: ConvexStore, thread_id: str, *, resource_id: str, title: str = ""
    ) -> None:
        self._log = ThreadLog(store, thread_id, resource_id=resource_id, title=title)
        self.thread_id = thread_id

    def __repr__(self) -> str:
        return f"<ConvexMessageHistory {self.thread_id!r} resource={self._log.resource_id!r}>"

    async def load(self, *, limit: int | None = None) -> builtins.list[ModelMessage]:
        """The thread's messages, oldest first, for ``message_history=``.

        With ``limit``, at most the newest ``limit`` Mastra messages are read (by index), and
        the history starts at its first request with a user prompt, so that a model never gets
        a tool return without its call.
        """
        messages = [m for message in await self._log.read(limit) for m in model_messages(message)]
        if limit is None:
            return messages
        for start, message in enumerate(messages):
            if message.kind == "request" and any(
                part.part_kind == "user-prompt" for part in message.parts
            ):
                return messages[start:]
        return []

    async def save(self, messages: Sequence[ModelMessage]) -> None:
        """Append messages (``result.new_messages()``), in order, in one save."""
        await self._log.append([message_content(message) for message in messages])

    async def clear(self) -> None:
        """Delete the thread and its messages."""
        await self._log.clear()


def message_content(message: ModelMessage) -> tuple[str, dict[str, Any]]:
    """A pydantic-ai message as a Mastra message's role and content."""
    [dumped] = ModelMessagesTypeAdapter.dump_python([message], mode="json")
    parts: list[dict[str, Any]] = []
    for part in dumped["parts"]:
        parts.extend(_shown(part))
    if dumped["kind"] == "response":
        role = "assistant"
    elif any(part["part_kind"] == "user-prompt" for part in dumped["parts"]):
        role = "user"
    elif any(part["part_kind"] in ("tool-return", "retry-prompt") for part in dumped["parts"]):
        role = "assistant"  # tool results: Mastra shows them beside their calls
    else:
        role = "system"
    content: dict[str, Any] = {"format": 2, "parts": parts, "metadata": {MESSAGE_KEY: dumped}}
    text = "".join(part["text"] for part in parts if part["type"] == "text")
    if text:
        content["content"] = text
    return role, content


def model_messages(message: Message) -> list[ModelMessage]:
    """The pydantic-ai messages a Mastra message holds: the one it was saved from, or, for a
    message written by others, what its parts show."""
    kept = (message.content.metadata or {}).get(MESSAGE_KEY)
    if isinstance(kept, dict):
        return list(ModelMessagesTypeAdapter.validate_python([kept]))
    when = message.created_at.isoformat()
    dumped: list[dict[str, Any]] = []
    if message.role == "assistant":
        response: list[dict[str, Any]] = []
        returns: list[dict[str, Any]] = []
        for part in _parts(message):
            if part.get("type") == "text":
                response.append({"part_kind": "text", "content": part.get("text", "")})
            elif part.get("type") == "reasoning":
                response.append({"part_kind": "thinking", "content": part.get("reasoning", "")})
            elif part.get("type") == "tool-invocation":
                call = part.get("toolInvocation") or {}
                ids = {
                    "tool_name": str(call.get("toolName", "")),
                    "tool_call_id": str(call.get("toolCallId", "")),
                }
                response.append({"part_kind": "tool-call", "args": call.get("args") or {}, **ids})
                if call.get("state") == "result":
                    returns.append(
                        {
                            "part_kind": "tool-return",
                            "content": call.get("result"),
                            "timestamp": when,
                            **ids,
                        }
                    )
        if response:
            dumped.append({"kind": "response", "parts": response, "timestamp": when})
        if returns:
            dumped.append({"kind": "request", "parts": returns, "timestamp": when})
    else:
        kind = "system-prompt" if message.role == "system" else "user-prompt"
        texts = [
            str(part.get("text", "")) for part in _parts(message) if part.get("type") == "text"
        ]
        if not texts and message.content.content:
            texts = [message.content.content]
        if texts:
            part = {"part_kind": kind, "content": "".join(texts)}
            if kind == "user-prompt":
                part["timestamp"] = when
            dumped.append({"kind": "request", "parts": [part], "timestamp": when})
    return list(ModelMessagesTypeAdapter.validate_python(dumped))


def _parts(message: Message) -> list[Mapping[str, Any]]:
    return [part for part in message.content.parts if isinstance(part, Mapping)]


def _shown(part: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The Mastra parts a reader shows for one serialized pydantic-ai part."""
    kind = part.get("part_kind")
    if kind == "user-prompt":
        content = part.get("content")
        texts = (
            [content]
            if isinstance(content, str)
            else [c for c in content or () if isinstance(c, str)]
        )
        return [{"type": "text", "text": text} for text in texts if text]
    if kind == "text":
        return [{"type": "text", "text": part["content"]}] if part.get("content") else []
    if kind == "thinking":
        text = str(part.get("content") or "")
        return [
            {"type": "reasoning", "reasoning": text, "details": [{"type": "text", "text": text}]}
        ]
    if kind == "tool-call":
        args = part.get("args")
        if isinstance(args, str):
            try:
                args = orjson.loads(args)
            except orjson.JSONDecodeError:
                args = {"args": args}
        invocation = {
            "state": "call",
            "toolCallId": part.get("tool_call_id", ""),
            "toolName": part.get("tool_name", ""),
            "args": args if args is not None else {},
        }
        return [{"type": "tool-invocation", "toolInvocation": invocation}]
    if kind == "tool-return":
        invocation = {
            "state": "result",
            "toolCallId": part.get("tool_call_id", ""),
            "toolName": part.get("tool_name", ""),
            "args": {},
            "result": part.get("content"),
        }
        return [{"type": "tool-invocation", "toolInvocation": invocation}]
    return []
