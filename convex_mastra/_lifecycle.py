"""What the entry points (ConvexStore, ConvexVector, ConvexServerCache) share: finding the
deployment and its credentials, checking function paths, and the lifecycle (``async with``,
``close()`` and a ResourceWarning when never closed)."""

from __future__ import annotations

import os
import warnings
from types import TracebackType
from typing import Any, TypeVar

from ._dispatch import Dispatcher
from ._errors import ConfigurationError
from ._transport import AsyncTransport, HttpTransport, RetryPolicy

__all__ = [
    "Closable",
    "check_function_path",
    "open_storage",
    "open_transport",
    "resolve_deployment",
]

DEFAULT_MAX_CONCURRENCY = 16
"""Matches the 16 concurrent mutations of Convex's Free and Starter deployment classes."""

_C = TypeVar("_C", bound="Closable")


def resolve_deployment(
    owner: str, url: str | None, admin_key: str | None, *, auth_token: str | None = None
) -> tuple[str, str | None]:
    """The URL and admin key, from the arguments or ``CONVEX_URL`` / ``CONVEX_ADMIN_KEY``.

    With ``auth_token`` (a user JWT) no admin key is looked up. Only an argument left out (None)
    is looked up: an explicit blank one is refused rather than replaced by the environment's,
    which may belong to another deployment. Raises ConfigurationError naming what is missing.
    """
    if url is None:
        url = os.environ.get("CONVEX_URL")
    if admin_key is None and auth_token is None:
        admin_key = os.environ.get("CONVEX_ADMIN_KEY")
    key_name = "admin_auth_token (or CONVEX_ADMIN_KEY)"
    if owner in ("ConvexStore", "ConvexVector"):
        key_name += " or auth_token"
    missing = [
        name
        for name, value in (
            ("deployment_url (or CONVEX_URL)", url),
            (key_name, admin_key if auth_token is None else auth_token),
        )
        if value is None
    ]
    if missing or url is None:
        raise ConfigurationError(
            f"{owner} needs {' and '.join(missing)}. For a local dev deployment run "
            "`python -m convex_mastra dev` and export the two lines it prints."
        )
    return url, admin_key


def open_transport(
    owner: str,
    transport: AsyncTransport | None,
    *,
    deployment_url: str | None,
    admin_key: str | None,
    auth_token: str | None = None,
    request_timeout: float | None,
    max_concurrency: int,
    retry: RetryPolicy | None,
    allow_insecure_http: bool,
    defaults: dict[str, Any],
) -> AsyncTransport:
    """``transport`` when given, else an ``HttpTransport`` built from the connection arguments.

    The connection arguments configure the transport the client builds; passed alongside
    ``transport=`` they would be silently ignored, so that is refused. ``defaults`` holds the
    owner's default for each argument, which counts as not passed.
    """
    arguments: dict[str, Any] = {
        "deployment_url": deployment_url,
        "admin_auth_token": admin_key,
        "auth_token": auth_token,
        "request_timeout": request_timeout,
        "max_concurrency": max_concurrency,
        "retry": retry,
        "allow_insecure_http": allow_insecure_http,
    }
    if transport is not None:
        defaults = {"allow_insecure_http": False, **defaults}
        given = [name for name, value in arguments.items() if value != defaults.get(name)]
        if given:
            raise ConfigurationError(
                f"{owner} was given transport= and {', '.join(given)}: configure those on the "
                "transport (HttpTransport(url, admin_key=..., ...)) instead"
            )
        return transport
    url, admin_key = resolve_deployment(owner, deployment_url, admin_key, auth_token=auth_token)
    return HttpTransport(
        url,
        admin_key=admin_key,
        auth_token=auth_token,
        request_timeout=request_timeout,
        max_concurrency=max_concurrency,
        retry=retry,
        allow_insecure_http=allow_insecure_http,
    )


def open_storage(
    owner: str,
    transport: AsyncTransport | None,
    *,
    deployment_url: str | None,
    admin_auth_token: str | None,
    auth_token: str | None,
    storage_function: str | None,
    request_timeout: float | None,
    max_concurrency: int,
    retry: RetryPolicy | None,
    allow_insecure_http: bool,
    probe_table: str,
) -> tuple[AsyncTransport, Dispatcher]:
    """The transport and the storage handler's dispatcher of a storage client (``ConvexStore``,
    ``ConvexVector``): the admin key calls ``mastra/storage:handle``, a user token the
    authenticated ``mastra/public:storage``, unless ``storage_function`` names another."""
    if admin_auth_token is not None and auth_token is not None:
        raise ConfigurationError("pass either admin_auth_token or auth_token, not both")
    if storage_function is None:
        storage_function = "mastra/public:storage" if auth_token else "mastra/storage:handle"
    check_function_path("storage_function", storage_function)
    opened = open_transport(
        owner,
        transport,
        deployment_url=deployment_url,
        admin_key=admin_auth_token,
        auth_token=auth_token,
        request_timeout=request_timeout,
        max_concurrency=max_concurrency,
        retry=retry,
        allow_insecure_http=allow_insecure_http,
        defaults={"request_timeout": 30.0, "max_concurrency": DEFAULT_MAX_CONCURRENCY},
    )
    return opened, Dispatcher(opened, storage_function, probe_table=probe_table)


def check_function_path(name: str, value: object) -> str:
    """``value`` if it looks like a Convex function path (``module/path:function``)."""
    if not isinstance(value, str) or ":" not in value:
        raise ConfigurationError(f"{name} {value!r} must look like 'module/path:function'")
    return value


class Closable:
    """Owns a transport: ``async with obj:`` or ``await obj.close()`` releases its connections."""

    _transport: AsyncTransport
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
