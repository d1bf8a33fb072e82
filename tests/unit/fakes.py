"""In-process stand-ins for a deployment, for tests of pure client logic only.

What a handler does with rows is tested against the local deployment (tests/ outside unit/);
these fakes answer just enough of the handler protocol to drive the client's own decisions:
retries, loops and their bounds, paging arithmetic, windows, what is sent and when.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import anyio

from convex_mastra._errors import ConfigurationError
from convex_mastra._transport import DEFAULT, Kind, Timeout

OUR_STORAGE_INFO: dict[str, Any] = {
    "name": "convex-mastra",
    "version": "0.1.0",
    "protocol": 2,
    "ops": ["info", "load", "loadMany", "queryTable", "insert", "batchInsert"],
    "readOps": ["info", "load", "loadMany", "queryTable"],
    "limits": {"loadManyIds": 100, "batchItems": 1000, "batchBytes": 8 * 1024 * 1024},
    "counted": {},
}

OUR_CACHE_INFO: dict[str, Any] = {
    "name": "convex-mastra",
    "version": "0.1.0",
    "protocol": 2,
    "ops": [
        *("get", "set", "delete", "increment", "clear", "info"),
        *("listPush", "listPushMany", "listFromTo", "listLength"),
    ],
    "readOps": ["info", "get", "listLength", "listFromTo"],
    "limits": {"listItemsPerCall": 25, "itemBytesPerCall": 4 * 1024 * 1024},
}


@dataclass
class Call:
    """One call the client made."""

    kind: str
    path: str
    args: dict[str, Any]
    idempotent: bool

    @property
    def op(self) -> str:
        return str(self.args.get("op"))


Op = Callable[[dict[str, Any]], Mapping[str, Any]]


@dataclass
class FakeHandler:
    """A handler function: ``info`` answers ``info`` (or, given None, upstream's refusal of it),
    each other op answers from ``ops``; an op not there is refused as upstream refuses it."""

    info: dict[str, Any] | None = field(default_factory=lambda: dict(OUR_STORAGE_INFO))
    ops: dict[str, Op] = field(default_factory=dict)

    def __call__(self, request: dict[str, Any]) -> Mapping[str, Any]:
        op = request["op"]
        if op == "info" and self.info is not None:
            return {"ok": True, "result": self.info}
        if op in self.ops:
            return self.ops[op](request)
        return {"ok": False, "error": f"Unsupported operation {op}"}


class FakeTransport:
    """An ``AsyncTransport`` answering in-process with ``handler(args)``; records each call."""

    url = "https://fake.convex.cloud"

    def __init__(self, handler: Callable[[dict[str, Any]], Any]) -> None:
        self.handler = handler
        self.calls: list[Call] = []
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    async def call(
        self,
        kind: Kind,
        path: str,
        args: Mapping[str, Any],
        *,
        timeout: Timeout = DEFAULT,
        idempotent: bool = False,
    ) -> Any:
        if self._closed:
            raise ConfigurationError("closed")
        request = dict(args)
        self.calls.append(Call(kind, path, request, idempotent))
        await anyio.lowlevel.checkpoint()  # the answer comes later, as over a network
        return self.handler(request)

    async def aclose(self) -> None:
        self._closed = True

    def ops(self) -> list[str]:
        """The ops sent, in order."""
        return [call.op for call in self.calls]
