"""OpenAI Agents SDK sessions on Mastra threads: ``ConvexSession``.

    pip install 'convex-mastra[openai-agents]'

A session is a Mastra thread (its id is the session id); each item is one Mastra message, so a
Mastra TypeScript app or Mastra Studio shows the conversation the Agents SDK ran:

- a message item (``{"role": ..., "content": ...}``) becomes a ``user``, ``assistant`` or
  ``system`` message (``developer`` counts as ``system``) with its text as text parts;
- ``function_call`` and ``function_call_output`` become ``assistant`` messages with a
  ``tool-invocation`` part (state ``call``, then ``result``, under the call's id and name);
- ``reasoning`` becomes a ``reasoning`` part; any other item an ``assistant`` message with no
  parts.

The item itself is kept in the message's ``content.metadata["openaiAgentsItem"]``, and that is
what ``get_items`` returns: an item reads back equal, as JSON, to the item written. Messages
written by others (a Mastra app) have no such key and are read as the items they show: their
text as a message item, their tool invocations as a call and, with a result, its output.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

import orjson

from .._errors import ValidationError
from .._models import Message
from .._store import ConvexStore
from ._thread import ThreadLog

try:
    from agents.memory.session_settings import SessionSettings, resolve_session_limit
except ImportError as exc:  # pragma: no cover - the extra is what installs it
    raise ImportError(
        "convex_mastra.integrations.openai_agents needs the OpenAI Agents SDK: "
        "pip install 'convex-mastra[openai-agents]'"
    ) from exc

if TYPE_CHECKING:
    from agents.items import TResponseInputItem
else:
    TResponseInputItem = dict

__all__ = ["ITEM_KEY", "ConvexSession", "item_content", "message_items"]

ITEM_KEY = "openaiAgentsItem"
"""Key of ``content.metadata`` that holds the Agents SDK item a message was written from."""

_ROLES = {"user": "user", "assistant": "assistant", "system": "system", "developer": "system"}
_TEXT_PARTS = {"input_text": "text", "output_text": "text", "refusal": "refusal"}


class ConvexSession:
    """The Agents SDK's ``Session`` protocol on the Mastra thread ``session_id``.

    ``Runner.run(agent, input, session=ConvexSession("chat-42", store, resource_id="user-7"))``
    keeps the conversation in Convex. The thread is created (owned by ``resource_id``) on the
    first write; ``get_items(limit)`` reads only the newest messages, through the thread's
    ``createdAt`` index, never the whole thread; ``pop_item`` deletes and returns the newest item
    in one mutation; ``clear_session`` deletes the thread and its messages.

    ``session_settings`` (``SessionSettings(limit=...)``) bounds what the Runner reads when it
    passes no limit, as for the SDK's own sessions.
    """

    def __init__(
        self,
        session_id: str,
        store: ConvexStore,
        *,
        resource_id: str,
        title: str = "",
        session_settings: SessionSettings | None = None,
    ) -> None:
        self._log = ThreadLog(store, session_id, resource_id=resource_id, title=title)
        self.session_id = session_id
        self.session_settings = session_settings
        self._tool_names: dict[str, str] = {}  # call id -> tool name, for results

    def __repr__(self) -> str:
        return f"<ConvexSession {self.session_id!r} resource={self._log.resource_id!r}>"

    async def get_items(self, limit: int | None = None) -> builtins.list[TResponseInputItem]:
        """The session's items, oldest first; with ``limit``, the newest ``limit`` of them."""
        limit = resolve_session_limit(limit, self.session_settings)
        if limit is not None and limit <= 0:
            return []
        items = [item for message in await self._log.read(limit) for item in self._items(message)]
        return items if limit is None else items[-limit:]

    async def add_items(self, items: Sequence[TResponseInputItem]) -> None:
        """Append items, in order, as one save (all or nothing)."""
        entries: builtins.list[Mapping[str, Any]] = []
        for i, item in enumerate(items):
            if not isinstance(item, Mapping):
                raise ValidationError(f"items[{i}] must be a dict, not {type(item).__name__}")
            entries.append(item)
        self._learn_tool_names(entries)
        await self._log.append([item_content(item, self._tool_names) for item in entries])

    async def pop_item(self) -> TResponseInputItem | None:
        """Delete the newest message and return its item (the last one it shows, for a message
        written by others); None when the session is empty."""
        message = await self._log.pop()
        if message is None:
            return None
        items = self._items(message)
        return items[-1] if items else None

    async def clear_session(self) -> None:
        """Delete the thread and every message in it."""
        await self._log.clear()

    def _items(self, message: Message) -> builtins.list[TResponseInputItem]:
        items = message_items(message)
        self._learn_tool_names(items)
        return cast("builtins.list[TResponseInputItem]", items)

    def _learn_tool_names(self, items: Sequence[Mapping[str, Any]]) -> None:
        """Remember calls' tool names: a result is shown under its call's name."""
        for item in items:
            call_id = item.get("call_id")
            if item.get("type") == "function_call" and isinstance(call_id, str):
                self._tool_names[call_id] = str(item.get("name", ""))


def item_content(
    item: Mapping[str, Any], tool_names: Mapping[str, str] | None = None
) -> tuple[str, dict[str, Any]]:
    """One Agents SDK item as a Mastra message's role and content. ``tool_names`` (call id ->
    tool name) names the tool of a ``function_call_output``."""
    role, parts = _shown(item, tool_names or {})
    content: dict[str, Any] = {"format": 2, "parts": parts, "metadata": {ITEM_KEY: dict(item)}}
    text = "".join(part["text"] for part in parts if part["type"] == "text")
    if text:
        content["content"] = text
    return role, content


def message_items(message: Message) -> list[dict[str, Any]]:
    """The Agents SDK items a Mastra message holds: the item it was written from, or, for a
    message written by others, what its parts show."""
    metadata = message.content.metadata or {}
    kept = metadata.get(ITEM_KEY)
    if isinstance(kept, dict):
        return [kept]
    items: list[dict[str, Any]] = []
    texts: list[str] = []
    role = "assistant" if message.role not in ("user", "system") else message.role

    def flush() -> None:
        if texts:
            items.append({"role": role, "content": "".join(texts)})
            texts.clear()

    for part in message.content.parts:
        if not isinstance(part, Mapping):
            continue
        if part.get("type") == "text" and isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif part.get("type") == "tool-invocation" and isinstance(part.get("toolInvocation"), dict):
            flush()
            items.extend(_tool_items(part["toolInvocation"]))
    if not texts and not items and message.content.content:
        texts.append(message.content.content)
    flush()
    return items


def _shown(item: Mapping[str, Any], tool_names: Mapping[str, str]) -> tuple[str, list[Any]]:
    """The role and the parts a Mastra reader shows for ``item``."""
    kind = item.get("type")
    if kind in (None, "message") and item.get("role") in _ROLES:
        return _ROLES[item["role"]], [
            {"type": "text", "text": text} for text in _texts(item.get("content"))
        ]
    if kind == "function_call":
        invocation = {
            "state": "call",
            "toolCallId": item.get("call_id", ""),
            "toolName": item.get("name", ""),
            "args": _arguments(item.get("arguments")),
        }
        return "assistant", [{"type": "tool-invocation", "toolInvocation": invocation}]
    if kind == "function_call_output":
        call_id = item.get("call_id", "")
        invocation = {
            "state": "result",
            "toolCallId": call_id,
            "toolName": tool_names.get(call_id, ""),
            "args": {},
            "result": item.get("output"),
        }
        return "assistant", [{"type": "tool-invocation", "toolInvocation": invocation}]
    if kind == "reasoning":
        texts = [
            s["text"]
            for s in item.get("summary") or ()
            if isinstance(s, Mapping) and isinstance(s.get("text"), str)
        ]
        details = [{"type": "text", "text": text} for text in texts]
        return "assistant", [
            {"type": "reasoning", "reasoning": "\n".join(texts), "details": details}
        ]
    return "assistant", []


def _texts(content: Any) -> list[str]:
    if isinstance(content, str):
        return [content] if content else []
    texts = []
    for part in content or ():
        if isinstance(part, Mapping) and part.get("type") in _TEXT_PARTS:
            text = part.get(_TEXT_PARTS[part["type"]])
            if isinstance(text, str) and text:
                texts.append(text)
    return texts


def _arguments(arguments: Any) -> Any:
    """A call's JSON arguments as the object Mastra shows; text that is not JSON as it is."""
    if not isinstance(arguments, str):
        return arguments if arguments is not None else {}
    try:
        return orjson.loads(arguments)
    except orjson.JSONDecodeError:
        return {"arguments": arguments}


def _tool_items(invocation: Mapping[str, Any]) -> list[dict[str, Any]]:
    call_id = str(invocation.get("toolCallId", ""))
    args = invocation.get("args", {})
    items: list[dict[str, Any]] = [
        {
            "type": "function_call",
            "call_id": call_id,
            "name": str(invocation.get("toolName", "")),
            "arguments": args if isinstance(args, str) else orjson.dumps(args).decode(),
        }
    ]
    if invocation.get("state") == "result":
        result = invocation.get("result")
        output = result if isinstance(result, str) else orjson.dumps(result).decode()
        items.append({"type": "function_call_output", "call_id": call_id, "output": output})
    return items
