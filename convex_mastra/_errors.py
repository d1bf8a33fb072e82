"""The exception hierarchy of convex-mastra.

Every error the SDK raises derives from :class:`ConvexMastraError`::

    ConvexMastraError
    ├── ConfigurationError        bad settings, a URL that is not a Convex API, use after close
    │   └── AuthenticationError   the deployment rejected the admin key or auth token
    ├── ValidationError           bad input, caught before anything is sent (also a ValueError)
    │   └── RecordTooLargeError   a record over Convex's 1 MiB document limit
    ├── DeploymentUnavailable     connection refused or lost, DNS failure, HTTP 5xx or 429
    ├── RequestTimeoutError       no answer within ``request_timeout`` (also a TimeoutError)
    ├── FunctionError             the Convex function threw; ``error_data`` keeps Convex's errorData
    │   └── StorageOperationError the storage/cache handler answered ``ok: false``
    │       └── NotFoundError     the record the operation needs does not exist
    ├── BatchLimitError           a paged or batched operation hit its hard bound on calls
    ├── PartialWriteError         a write of several calls failed after some of them were applied
    └── LocalDeploymentError      the local dev deployment could not be installed or started

Messages never contain the admin key: values that may hold it are redacted where errors are built.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AuthenticationError",
    "BatchLimitError",
    "ConfigurationError",
    "ConvexMastraError",
    "DeploymentUnavailable",
    "FunctionError",
    "LocalDeploymentError",
    "NotFoundError",
    "PartialWriteError",
    "RecordTooLargeError",
    "RequestTimeoutError",
    "StorageOperationError",
    "ValidationError",
]


class ConvexMastraError(Exception):
    """Base class of every error raised by convex-mastra."""


class ConfigurationError(ConvexMastraError):
    """A setting is missing or invalid (deployment URL, admin key, limits)."""


class AuthenticationError(ConfigurationError):
    """The deployment rejected the credentials (admin key or auth token)."""


_AUTH_CODES = frozenset({"UNAUTHENTICATED", "FORBIDDEN"})


def refused_caller(what: str, error_data: Any) -> AuthenticationError | None:
    """The AuthenticationError for a function's ConvexError that refused its caller, else None.

    convex/mastra/public.ts raises ``{code: "UNAUTHENTICATED" | "FORBIDDEN", message}`` for a
    missing or non-allow-listed identity; the HTTP and the live transport both read it here.
    """
    if isinstance(error_data, dict) and error_data.get("code") in _AUTH_CODES:
        code, reason = str(error_data["code"]), str(error_data.get("message", ""))
        return AuthenticationError(f"{what} refused the caller ({code}): {reason}")
    return None


class ValidationError(ConvexMastraError, ValueError):
    """Input was rejected before anything was sent to the deployment."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class RecordTooLargeError(ValidationError):
    """A record exceeds Convex's 1 MiB document limit; nothing of its batch was written."""

    def __init__(self, record_id: str, size: int, limit: int) -> None:
        super().__init__(
            f"record {record_id!r} encodes to {size:,} bytes, over Convex's {limit:,}-byte "
            "document limit; nothing of this batch was written. Store large payloads elsewhere "
            "(for example Convex file storage) and keep a reference in the record.",
            field=record_id,
        )
        self.record_id = record_id
        self.size = size
        self.limit = limit


class DeploymentUnavailable(ConvexMastraError):
    """The deployment could not be reached or answered with a server error."""


class RequestTimeoutError(ConvexMastraError, TimeoutError):
    """The deployment did not answer within the request timeout."""


class FunctionError(ConvexMastraError):
    """A Convex function threw an error.

    ``error_data`` is the ``errorData`` of a ``ConvexError`` thrown by the function, or None.
    """

    def __init__(self, message: str, *, path: str | None = None, error_data: Any = None) -> None:
        super().__init__(message)
        self.path = path
        self.error_data = error_data


class StorageOperationError(FunctionError):
    """The storage or cache handler answered ``ok: false`` for an operation.

    ``code`` is the handler's reason (``"NOT_FOUND"``, ``"TYPE_MISMATCH"``... see
    docs/errors.md), None from the stock @mastra/convex handler, which sends none; ``details``
    holds its structured fields (table, id, key, limit...).
    """

    def __init__(
        self,
        message: str,
        *,
        op: str | None = None,
        table: str | None = None,
        code: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.op = op
        self.table = table
        self.code = code
        self.details = details or {}


class NotFoundError(StorageOperationError):
    """The record an operation needs does not exist."""


class BatchLimitError(ConvexMastraError):
    """A batched operation needed more calls than its hard bound allows.

    The data is left consistent; calling the operation again continues where it stopped.
    """


class PartialWriteError(ConvexMastraError):
    """A write split into several calls failed after some of its calls were applied.

    ``done`` lists the ids whose calls were applied; ``not_done`` the rest, including those of
    the call that failed, which may or may not have been applied. ``__cause__`` is the error
    of the failed call.
    """

    def __init__(self, message: str, *, done: list[str], not_done: list[str]) -> None:
        super().__init__(message)
        self.done = done
        self.not_done = not_done


class LocalDeploymentError(ConvexMastraError):
    """The local dev deployment could not be installed, started or reached."""
