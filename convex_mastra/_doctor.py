"""``python -m convex_mastra doctor``: check a deployment and say what to fix."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ._dispatch import PROTOCOL, Dispatcher, HandlerInfo
from ._errors import (
    AuthenticationError,
    ConvexMastraError,
    DeploymentUnavailable,
    FunctionError,
    RequestTimeoutError,
)
from ._transport import HttpTransport
from ._version import __version__

__all__ = ["Check", "diagnose"]


DEPLOY_HINT = (
    "copy convex/mastra/ into your Convex project, add mastraTables to convex/schema.ts and run "
    "`npx convex deploy` (see convex/README.md)"
)

# One index per typed table that only our schema defines, or that every Mastra schema defines:
# a one-item page on it fails on a deployment whose schema lacks the table or the index.
SCHEMA_PROBES = (
    ("mastra_threads", "by_resource_created"),
    ("mastra_messages", "by_thread_created"),
    ("mastra_resources", "by_record_id"),
    ("mastra_workflow_snapshot", "by_workflow_created"),
    ("mastra_scorers", "by_scorer_created"),
)

Status = Literal["ok", "warn", "fail"]


@dataclass(frozen=True)
class Check:
    """One line of the doctor's report."""

    name: str
    status: Status
    detail: str
    fix: str | None = None


async def diagnose(
    url: str,
    admin_key: str,
    *,
    storage_function: str = "mastra/storage:handle",
    cache_function: str = "mastra/cache:handle",
    timeout: float = 15.0,
    allow_insecure_http: bool = False,
) -> list[Check]:
    """Check reachability, the admin key, our functions and their version, and the schema."""
    # Like the store: the admin key never goes over plain http to a non-loopback host unless
    # the caller opts in (a ConfigurationError saying so is raised before any call).
    transport = HttpTransport(
        url, admin_key=admin_key, request_timeout=timeout, allow_insecure_http=allow_insecure_http
    )
    checks: list[Check] = []
    try:
        storage = Dispatcher(transport, storage_function, probe_table="mastra_threads")
        try:
            info = await storage.info()
        except (DeploymentUnavailable, RequestTimeoutError) as exc:
            return [Check("reachable", "fail", str(exc), "check CONVEX_URL and that it is up")]
        except AuthenticationError as exc:
            checks.append(Check("reachable", "ok", url))
            checks.append(Check("admin key", "fail", str(exc), "use the deployment's admin key"))
            return checks
        except FunctionError as exc:
            checks.append(Check("reachable", "ok", url))
            checks.append(Check("admin key", "ok", "accepted"))
            checks.append(Check("storage function", "fail", _reason(exc), DEPLOY_HINT))
            return checks
        checks.append(Check("reachable", "ok", url))
        checks.append(Check("admin key", "ok", "accepted"))
        checks.append(_handler_check(storage_function, info))
        if not info.is_stock:
            checks.append(await _schema_check(storage))
        checks.append(await _cache_check(Dispatcher(transport, cache_function, probe_table=None)))
        return checks
    finally:
        await transport.aclose()


def _handler_check(function: str, info: HandlerInfo) -> Check:
    if info.is_stock:
        return Check(
            "storage function",
            "warn",
            f"{function} is the stock @mastra/convex handler: a public mutation (anyone with the "
            "URL can read or wipe data) that reads at most 10,000 rows per list",
            DEPLOY_HINT,
        )
    if info.protocol != PROTOCOL:
        return Check(
            "storage function",
            "fail",
            f"{function} is {info.name} {info.version} speaking protocol {info.protocol}; "
            f"convex-mastra {__version__} speaks protocol {PROTOCOL}",
            "redeploy the convex/ functions from this convex-mastra version",
        )
    return Check("storage function", "ok", f"{function}: {info.name} {info.version}")


async def _schema_check(storage: Dispatcher) -> Check:
    missing: list[str] = []
    for table, index in SCHEMA_PROBES:
        try:
            await storage.call("pageByIndex", table, index=index, numItems=1, cursor=None)
        except ConvexMastraError as exc:
            missing.append(f"{table}.{index} ({str(exc)[:120]})")
    if missing:
        return Check("schema", "fail", "missing: " + "; ".join(missing), DEPLOY_HINT)
    return Check("schema", "ok", f"{len(SCHEMA_PROBES)} tables and their indexes answer")


async def _cache_check(cache: Dispatcher) -> Check:
    try:
        info = await cache.info()  # the same probe that tells the storage handlers apart
    except ConvexMastraError as exc:
        return Check("cache function", "fail", _reason(exc), DEPLOY_HINT)
    if info.is_stock:
        return Check(
            "cache function",
            "warn",
            f"{cache.function} is the stock @mastra/convex cache (a public mutation)",
            DEPLOY_HINT,
        )
    return Check("cache function", "ok", f"{cache.function}: {info.name} {info.version}")


def _reason(exc: BaseException) -> str:
    """The original failure, without the "run doctor" hint the dispatcher adds for users."""
    return str(exc.__cause__ or exc)
