"""The lifecycle both entry points share: ``async with``, ``close()`` and a ResourceWarning."""

from __future__ import annotations

import warnings
from types import TracebackType
from typing import TypeVar

from ._transport import Transport

__all__ = ["Closable"]

_C = TypeVar("_C", bound="Closable")


class Closable:
    """Owns a Transport: ``async with obj:`` or ``await obj.close()`` releases its connections."""

    _transport: Transport
    _close_hint = "close()"

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._transport.closed

    async def close(self) -> None:
        """Release connections. Calls after close raise ConfigurationError."""
        await self._transport.aclose()

    async def aclose(self) -> None:
        """Same as :meth:`close` (the name contextlib.aclosing expects)."""
        await self.close()

    async def __aenter__(self: _C) -> _C:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def __del__(self) -> None:
        transport = getattr(self, "_transport", None)
        if transport is not None and not transport.closed:
            warnings.warn(
                f"{self!r} was never closed; use `async with` or `await {self._close_hint}`",
                ResourceWarning,
                stacklevel=2,
            )
