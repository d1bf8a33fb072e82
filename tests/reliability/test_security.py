"""Security: only the admin key (or an allow-listed identity) reaches Mastra data, and the key
never shows up in a log record, an exception or a repr.

- The deployment's own function list: every function is internal except the two authenticated
  entry points of convex/mastra/public.ts; the sources agree (no public constructor elsewhere).
- Anonymous callers, callers with a token that is not allow-listed, and callers presenting the
  admin key the wrong way try every function with reads, writes and clears: all refused, and
  nothing changed.
- Wrong admin keys (fixed variants and Hypothesis-generated text) are refused with
  AuthenticationError or, for text that cannot be a key, ConfigurationError; never "unavailable".
- Plain http:// to any host that is not loopback is refused unless allow_insecure_http=True.
- test_no_secret_in_the_whole_run runs last and checks everything the run's secret audit
  collected (tests/reliability/conftest.py).
"""

from __future__ import annotations

import base64
import ipaddress
import re
import secrets
import socket
from pathlib import Path
from typing import Any

import anyio
import orjson
import requests
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from convex_mastra import (
    AuthenticationError,
    ConfigurationError,
    ConvexMastraError,
    ConvexStore,
    DeploymentUnavailable,
    FunctionError,
    LocalDeployment,
    RequestTimeoutError,
    StorageOperationError,
    ValidationError,
)
from convex_mastra._transport import Transport
from convex_mastra.pytest_plugin import Deployment
from tests.reliability.conftest import ROOT, Results, SecretAudit, scaled

PUBLIC_ENTRY_POINTS = {
    "mastra/public:storage",
    "mastra/public:cache",
    "mastra/public:liveMessages",
    "mastra/public:liveWorkflowRun",
    "mastra/public:liveCacheList",
}
PUBLIC_CONSTRUCTORS = re.compile(r"\b(queryGeneric|mutationGeneric|actionGeneric|httpAction\w*)\(")
EXAMPLES = scaled(100, 1000)
QUICK = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _functions(deployment: LocalDeployment) -> list[dict[str, str]]:
    reply = requests.get(
        f"{deployment.url}/_local/functions",
        headers={"Authorization": f"Convex {deployment.admin_key}"},
        timeout=30,
    )
    reply.raise_for_status()
    functions: list[dict[str, str]] = reply.json()
    return functions


def test_every_function_on_mastra_data_is_internal(
    deployment: LocalDeployment, results: Results
) -> None:
    functions = _functions(deployment)
    public = {f["path"] for f in functions if f["visibility"] == "public"}
    internal = {f["path"] for f in functions if f["visibility"] == "internal"}
    assert {"mastra/storage:handle", "mastra/cache:handle"} <= internal
    assert public == PUBLIC_ENTRY_POINTS, f"public functions beyond the entry points: {public}"
    # The sources say the same: public constructors appear in public.ts only.
    sources = [
        path
        for path in (ROOT / "convex").rglob("*.ts")
        if "node_modules" not in path.parts and "_generated" not in path.parts
    ]
    constructing = sorted(
        str(path.relative_to(ROOT))
        for path in sources
        if PUBLIC_CONSTRUCTORS.search(path.read_text(encoding="utf-8"))
    )
    assert constructing == ["convex/mastra/public.ts"], constructing
    # No listing leaks an internal function's existence to someone without the key.
    anonymous = requests.get(f"{deployment.url}/_local/functions", timeout=30)
    assert anonymous.status_code == 401
    results.record(
        "security",
        functions_listed=len(functions),
        internal_functions=len(internal),
        public_functions=sorted(public),
        source_files_checked=len(sources),
    )


def _raw_attempts(deployment: LocalDeployment, functions: list[str]) -> int:
    bodies = [
        orjson.dumps({"path": f, "args": r, "format": "json"})
        for f in functions
        for r in requests_for(f)[:4]
    ]
    key = deployment.admin_key
    headers: list[dict[str, str]] = [
        {},
        {"Authorization": "Convex "},
        {"Authorization": f"Convex {key}x"},
        {"Authorization": f"Convex {key[:-1]}"},
        {"Authorization": f"Basic {key}"},
        {"Authorization": f"Bearer {key}"},
        {"Authorization": "Convex local|" + "0" * 64},
    ]
    sent = 0
    with requests.Session() as session:
        for header in headers:
            for body in bodies:
                for path in ("/api/mutation", "/api/function"):
                    reply = session.post(
                        f"{deployment.url}{path}",
                        data=body,
                        headers={"Content-Type": "application/json", **header},
                        timeout=30,
                    )
                    sent += 1
                    refused = reply.status_code in (400, 401, 403) or (
                        reply.status_code == 200 and reply.json().get("status") == "error"
                    )
                    assert refused, (list(header), body[:80], reply.status_code, reply.text)
                    assert key not in reply.text
    return sent


def _jwt(subject: str, issuer: str = "https://issuer.example") -> str:
    def part(value: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(orjson.dumps(value)).rstrip(b"=").decode()

    claims = {"sub": subject, "iss": issuer, "aud": "convex", "exp": 4102444800}
    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(claims)}.c2lnbmF0dXJl"


STORAGE_REQUESTS: list[dict[str, Any]] = [
    {"op": "info", "tableName": "mastra_threads"},
    {"op": "load", "tableName": "mastra_threads", "keys": {"id": "canary"}},
    {"op": "queryTable", "tableName": "mastra_threads"},
    {"op": "queryTable", "tableName": "mastra_messages"},
    {
        "op": "insert",
        "tableName": "mastra_threads",
        "record": {
            "id": "intruder",
            "resourceId": "x",
            "title": "",
            "createdAt": "x",
            "updatedAt": "x",
        },
    },
    {"op": "insert", "tableName": "intruder_table", "record": {"id": "intruder"}},
    {"op": "updateThread", "tableName": "mastra_threads", "id": "canary", "title": "pwned"},
    {
        "op": "updateResource",
        "tableName": "mastra_resources",
        "resourceId": "canary",
        "workingMemory": "pwned",
        "createdAt": "x",
        "updatedAt": "x",
    },
    {"op": "deleteMany", "tableName": "mastra_threads", "ids": ["canary"]},
    {"op": "clearTable", "tableName": "mastra_threads"},
    {"op": "dropTable", "tableName": "mastra_resources"},
    {"op": "deleteThread", "threadId": "canary"},
]
CACHE_REQUESTS: list[dict[str, Any]] = [
    {"op": "get", "key": "sec:canary"},
    {"op": "set", "key": "sec:canary", "keyPrefix": "sec:", "value": "pwned"},
    {"op": "delete", "key": "sec:canary"},
    {"op": "clear", "keyPrefix": ""},
]
# Well-formed arguments of the live queries (convex/mastra/live.ts and their public twins), so
# a refusal comes from the key or the allow-list, not from argument validation.
LIVE_REQUESTS: dict[str, list[dict[str, Any]]] = {
    "messages": [{"threadId": "canary"}, {"threadId": "canary", "after": 0.0}],
    "workflowrun": [{"workflowName": "canary", "runId": "canary"}],
    "cachelist": [{"key": "sec:canary", "start": 0}],
}


def requests_for(function: str) -> list[dict[str, Any]]:
    """What to send ``function``: live-query arguments, or handler requests."""
    name = function.rsplit(":", 1)[-1].lower().removeprefix("live")
    if "live" in function:
        return LIVE_REQUESTS[name]
    return CACHE_REQUESTS if "cache" in function else STORAGE_REQUESTS


async def _plant(store: ConvexStore, deployment: LocalDeployment) -> Transport:
    await store.threads.save(
        {
            "id": "canary",
            "resource_id": "canary",
            "title": "canary",
            "created_at": "2026-09-01T00:00:00Z",
            "updated_at": "2026-09-01T00:00:00Z",
        }
    )
    await store.resources.update("canary", working_memory="canary")
    admin = Transport(deployment.url, admin_key=deployment.admin_key)
    await admin.mutation(
        "mastra/cache:handle",
        {"op": "set", "key": "sec:canary", "keyPrefix": "sec:", "value": "canary"},
    )
    return admin


async def _unchanged(store: ConvexStore, admin: Transport) -> None:
    thread = await store.threads.get("canary")
    assert thread is not None and thread.title == "canary"
    resource = await store.resources.get("canary")
    assert resource is not None and resource.working_memory == "canary"
    assert await store.threads.get("intruder") is None
    assert await store._dispatcher.call("queryTable", "intruder_table") == []
    cached = await admin.mutation("mastra/cache:handle", {"op": "get", "key": "sec:canary"})
    assert cached["ok"] and "canary" in str(cached["result"]), cached


async def test_callers_without_the_admin_key_reach_nothing(
    rstore: ConvexStore, deployment: LocalDeployment, results: Results, audit: SecretAudit
) -> None:
    admin = await _plant(rstore, deployment)
    functions = [f["path"] for f in _functions(deployment)]
    callers = {
        "anonymous": Transport(deployment.url),
        "unlisted token": Transport(deployment.url, auth_token=_jwt("intruder")),
        "admin key as a token": Transport(deployment.url, auth_token=deployment.admin_key),
    }
    refused: dict[str, int] = dict.fromkeys(callers, 0)
    attempts = 0
    for caller, transport in callers.items():
        audit.repr_of(transport)
        for function in functions:
            for request in requests_for(function):
                for kind in ("query", "mutation", "action"):
                    attempts += 1
                    try:
                        answer = await transport.call(kind, function, request)  # type: ignore[arg-type]
                    except (AuthenticationError, FunctionError) as exc:
                        audit.exception(exc)
                        if function not in PUBLIC_ENTRY_POINTS:
                            # The same answer as for a missing function: no name leaks.
                            assert "Could not find public function" in str(exc) or isinstance(
                                exc, AuthenticationError
                            ), str(exc)
                        refused[caller] += 1
                        continue
                    raise AssertionError(f"{caller} ran {kind} {function} {request}: {answer}")
        await transport.aclose()
    await _unchanged(rstore, admin)

    # The same over raw HTTP, with headers no client library would send.
    raw = await anyio.to_thread.run_sync(_raw_attempts, deployment, functions)
    await _unchanged(rstore, admin)
    await admin.aclose()
    results.record(
        "security",
        unauthorized_sdk_calls=attempts,
        unauthorized_sdk_calls_refused=sum(refused.values()),
        unauthorized_raw_requests=raw,
        unauthorized_raw_requests_refused=raw,
        canaries_changed=0,
    )


async def _refused(url: str, key: str, audit: SecretAudit) -> str:
    """How ``key`` was refused: by the deployment, or locally as something that is no key."""
    try:
        async with ConvexStore(url, key, request_timeout=10) as store:
            await store.handler_info()
    except AuthenticationError as exc:
        audit.exception(exc)
        return "refused_by_deployment"
    except ConfigurationError as exc:
        audit.exception(exc)
        assert "blank" in str(exc) or "characters" in str(exc), str(exc)
        return "refused_locally"
    raise AssertionError(f"a wrong admin key was accepted: {key!r:.40}")


async def test_wrong_admin_key_variants_are_refused(
    deployed: Deployment, audit: SecretAudit, results: Results
) -> None:
    key = deployed.admin_key
    variants = [
        key[:-1],
        key + "0",
        key[:-1] + ("1" if key.endswith("0") else "0"),
        key.upper(),
        key.split("|", 1)[-1],
        "local|",
        f"Convex {key}",
        f"local|{secrets.token_hex(32)}",  # a well-formed key of another deployment
        key.replace("|", ":"),
    ]
    outcomes = [await _refused(deployed.url, variant, audit) for variant in variants]
    assert outcomes == ["refused_by_deployment"] * len(variants)
    results.add("security", wrong_keys_refused_by_deployment=len(variants))


@QUICK
@example(key="local|" + "0" * 64)
@example(key="prod:happy-otter-123|" + "A" * 40)
@example(key="\u043a\u043b\u044e\u0447")
@example(key="key\u00e9")
@example(key="tab\tkey")
@example(key="   ")
@example(key="")
@example(key="x" * 100_000)
@example(key="Convex local|abc")
@given(
    key=st.one_of(
        st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=120),
        st.text(max_size=120),
    )
)
async def test_arbitrary_text_as_admin_key_is_refused(
    deployed: Deployment, audit: SecretAudit, results: Results, key: str
) -> None:
    if key.strip() == deployed.admin_key:
        return
    outcome = await _refused(deployed.url, key, audit)
    results.add("security", **{f"wrong_keys_{outcome}": 1})


def _loopback(host: str) -> bool:
    bare = host.strip("[]").lower()
    if bare == "localhost":
        return True
    try:
        return ipaddress.ip_address(bare).is_loopback
    except ValueError:
        return False


hosts = st.one_of(
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(lambda address: f"[{address}]"),
    st.from_regex(r"\A[a-z][a-z0-9-]{0,15}(\.[a-z][a-z0-9-]{0,10}){0,3}\Z"),
    st.sampled_from(
        [
            "localhost",
            "LOCALHOST",
            "localhost.evil.example",
            "127.0.0.1.nip.io",
            "0.0.0.0",
            "127.1",
            "2130706433",
            "0x7f000001",
            "[::1]",
            "[::ffff:127.0.0.1]",
            "127.255.255.254",
            "10.0.0.5",
            "happy-otter-123.convex.cloud",
        ]
    ),
)


@QUICK
@given(host=hosts, port=st.integers(1, 65535), secret=st.sampled_from(["admin", "token"]))
def test_plain_http_to_remote_hosts_is_refused(
    host: str, port: int, secret: str, results: Results
) -> None:
    url = f"http://{host}:{port}"
    credentials: dict[str, Any] = (
        {"admin_auth_token": "local|k"} if secret == "admin" else {"auth_token": "a.b.c"}
    )
    store: ConvexStore | None = None
    try:
        store = ConvexStore(url, **credentials)
    except ConfigurationError as exc:
        assert not _loopback(host), f"{url} is loopback but was refused"
        assert "allow_insecure_http" in str(exc)
        outcome = "refused"
    else:
        assert _loopback(host), f"{url} is not loopback but was accepted"
        outcome = "accepted_loopback"
    finally:
        if store is not None:
            _close(store)
    # Opting in, or https, is always accepted.
    _close(ConvexStore(url, allow_insecure_http=True, **credentials))
    _close(ConvexStore(f"https://{host}:{port}", **credentials))
    results.add("security", **{f"http_urls_{outcome}": 1})


def _close(store: ConvexStore) -> None:
    anyio.run(store.close)


# -- the audit: last test of the session -----------------------------------------------------


def _closed_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


async def test_no_secret_in_the_whole_run(
    deployment: LocalDeployment, audit: SecretAudit, results: Results, tmp_path: Path
) -> None:
    # Walk the error paths once more with the real key, so the audit has them even when this
    # test runs alone: an outage, a timeout, a server refusal, bad input, a wrong function.
    key = deployment.admin_key
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    blackhole = f"http://127.0.0.1:{listener.getsockname()[1]}"
    try:
        for url, timeout in ((_closed_port(), 5.0), (blackhole, 0.3), (deployment.url, 10.0)):
            async with ConvexStore(url, key, request_timeout=timeout) as store:
                audit.repr_of(store, store._transport, store._dispatcher)
                for attempt in (
                    store.handler_info(),
                    store._dispatcher.call("frobnicate", "mastra_threads"),
                    store.threads.update("no-such-thread", metadata={"n": 2**60}),
                    store.resources.update("secret-check", metadata={"big": "x" * 1_100_000}),
                ):
                    try:
                        await attempt
                    except (
                        DeploymentUnavailable,
                        RequestTimeoutError,
                        StorageOperationError,
                        FunctionError,
                        ValidationError,
                    ) as exc:
                        audit.exception(exc)
        async with ConvexStore(deployment.url, key, storage_function="mastra/nope:handle") as store:
            with audit.raises(FunctionError):
                await store.handler_info()
    finally:
        listener.close()
    audit.repr_of(deployment, Deployment(url=deployment.url, admin_key=key, local=deployment))

    leaks = audit.leaks()
    assert audit.secrets, "no secrets were registered"
    assert leaks == [], f"admin keys found in {len(leaks)} texts: {leaks[:3]}"
    assert issubclass(AuthenticationError, ConvexMastraError)
    results.record(
        "security",
        secrets_tracked=len(audit.secrets),
        log_records_checked=audit.log_records,
        exception_texts_checked=audit.exceptions,
        reprs_checked=audit.reprs,
        server_logs_checked=len(audit.server_logs),
        texts_checked=len(audit.texts),
        secrets_found=len(leaks),
    )
