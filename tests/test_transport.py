"""The async facade and the dispatcher against real local deployments.

Nothing here mocks the deployment: timeouts run against a socket that accepts and never answers,
outages against a closed port and a stopped local deployment.
"""

from __future__ import annotations

import logging
import math
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from convex_mastra import (
    AuthenticationError,
    BatchLimitError,
    ConfigurationError,
    ConvexInt64,
    ConvexStore,
    DeploymentUnavailable,
    FunctionError,
    LocalDeployment,
    RequestTimeoutError,
    StorageOperationError,
    ValidationError,
)
from convex_mastra._dispatch import Dispatcher
from convex_mastra._transport import Transport
from convex_mastra.pytest_plugin import Deployment


class LoopProbe:
    """Measures event-loop lag: how late a 1 ms sleep wakes up, sampled continuously."""

    def __init__(self) -> None:
        self.lags: list[float] = []
        self._stop = anyio.Event()

    async def run(self) -> None:
        while not self._stop.is_set():
            start = time.perf_counter()
            await anyio.sleep(0.001)
            self.lags.append(time.perf_counter() - start - 0.001)

    def stop(self) -> None:
        self._stop.set()

    @property
    def worst_ms(self) -> float:
        return max(self.lags) * 1000 if self.lags else math.inf


class Blackhole(str):
    """The URL of a server that accepts connections and never answers, and its connections."""

    accepted: list[socket.socket]


@pytest.fixture
def blackhole() -> Iterator[Blackhole]:
    """A server that accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
                accepted.append(conn)
            except TimeoutError:
                continue
            except OSError:
                return

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    url = Blackhole(f"http://127.0.0.1:{listener.getsockname()[1]}")
    url.accepted = accepted
    yield url
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    listener.close()


def _closed_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


async def test_64_concurrent_calls_keep_the_loop_responsive(convex_deployment: Deployment) -> None:
    transport = Transport(convex_deployment.url, admin_key=convex_deployment.admin_key)
    probe = LoopProbe()
    results: list[object] = []

    async def one(n: int) -> None:
        results.append(
            await transport.mutation(
                "mastra/storage:handle",
                {"op": "load", "tableName": "mastra_threads", "keys": {"id": f"nope-{n}"}},
            )
        )

    async with anyio.create_task_group() as tg:
        tg.start_soon(probe.run)
        started = time.perf_counter()
        async with anyio.create_task_group() as calls:
            for n in range(64):
                calls.start_soon(one, n)
        elapsed = time.perf_counter() - started
        probe.stop()
    await transport.aclose()
    assert len(results) == 64 and all(r == {"ok": True, "result": None} for r in results)
    print(
        f"\n64 concurrent calls in {elapsed * 1000:.0f} ms; worst loop lag {probe.worst_ms:.1f} ms"
    )
    assert probe.worst_ms < 100  # generous: a blocking client would stall for the whole batch


async def test_timeout_bounds_the_wait_and_the_loop_stays_free(blackhole: str) -> None:
    transport = Transport(blackhole, admin_key="k", request_timeout=0.5)
    probe = LoopProbe()
    async with anyio.create_task_group() as tg:
        tg.start_soon(probe.run)
        started = time.perf_counter()
        with pytest.raises(RequestTimeoutError, match=r"within 0\.5 s"):
            await transport.query("mastra/storage:handle", {})
        elapsed = time.perf_counter() - started
        probe.stop()
    await transport.aclose()
    assert 0.45 <= elapsed < 1.5
    assert probe.worst_ms < 100
    assert len(probe.lags) > 50  # the loop kept ticking while the call waited


async def test_per_call_timeout_overrides_and_none_disables(blackhole: str) -> None:
    transport = Transport(blackhole, admin_key="k", request_timeout=30)
    with pytest.raises(RequestTimeoutError):
        await transport.query("f:g", {}, timeout=0.2)
    with anyio.move_on_after(0.3) as scope:  # no timeout of its own: only our scope ends it
        await transport.query("f:g", {}, timeout=None)
    assert scope.cancelled_caught
    await transport.aclose()


async def test_cancellation_returns_promptly(blackhole: str) -> None:
    transport = Transport(blackhole, admin_key="k", request_timeout=None)
    probe = LoopProbe()
    async with anyio.create_task_group() as tg:
        tg.start_soon(probe.run)
        started = time.perf_counter()
        with anyio.move_on_after(0.2):
            await transport.mutation("f:g", {})
        elapsed = time.perf_counter() - started
        probe.stop()
    await transport.aclose()
    assert elapsed < 0.5
    assert probe.worst_ms < 100


async def test_closed_port_fails_fast_with_deployment_unavailable() -> None:
    transport = Transport(_closed_port(), admin_key="k", request_timeout=5)
    started = time.perf_counter()
    with pytest.raises(DeploymentUnavailable, match="could not connect"):
        await transport.query("f:g", {})
    assert time.perf_counter() - started < 3  # a few jittered retries, not the whole timeout
    await transport.aclose()


async def test_store_recovers_after_the_deployment_restarts(tmp_path: Path) -> None:
    local = LocalDeployment(data_dir=tmp_path)
    await anyio.to_thread.run_sync(local.start)
    try:
        async with ConvexStore(local.url, local.admin_key, request_timeout=5) as store:
            assert (await store.handler_info()).name == "convex-mastra"
            await anyio.to_thread.run_sync(local.kill)
            with pytest.raises(DeploymentUnavailable):
                await store._dispatcher.call("load", "mastra_threads", keys={"id": "x"})
            await anyio.to_thread.run_sync(local.start)
            assert await store._dispatcher.call("load", "mastra_threads", keys={"id": "x"}) is None
    finally:
        await anyio.to_thread.run_sync(local.stop)


async def test_wrong_admin_key_is_an_authentication_error(convex_deployment: Deployment) -> None:
    async with ConvexStore(convex_deployment.url, "local|wrong") as store:
        with pytest.raises(AuthenticationError, match="rejected the credentials"):
            await store.handler_info()


async def test_admin_key_never_leaks(
    convex_deployment: Deployment, caplog: pytest.LogCaptureFixture, blackhole: str
) -> None:
    key = convex_deployment.admin_key
    texts: list[str] = []
    caplog.set_level(logging.DEBUG, logger="convex_mastra")
    for url in (convex_deployment.url, _closed_port(), blackhole):
        async with ConvexStore(url, key, request_timeout=0.3) as store:
            texts += [repr(store), str(store), repr(store._transport)]
            for call in (
                store._dispatcher.call("frobnicate", "mastra_threads"),
                store._dispatcher.call("load", "mastra_threads", keys={"id": "x"}),
            ):
                try:
                    await call
                except Exception as exc:
                    texts += [str(exc), repr(exc), repr(exc.__cause__), repr(exc.__context__)]
    texts += [record.getMessage() for record in caplog.records]
    assert len(texts) > 10
    assert not [t for t in texts if key in t]
    assert not [t for t in texts if key.split("|", 1)[-1] in t]


def test_configuration_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CONVEX_URL", raising=False)
    monkeypatch.delenv("CONVEX_ADMIN_KEY", raising=False)
    with pytest.raises(ConfigurationError, match=r"CONVEX_URL.*CONVEX_ADMIN_KEY"):
        ConvexStore()
    with pytest.raises(ConfigurationError, match="unencrypted"):
        ConvexStore("http://example.com", "k")
    with pytest.raises(ConfigurationError, match="not an http"):
        ConvexStore("ftp://x", "k")
    with pytest.raises(ConfigurationError, match="max_concurrency"):
        ConvexStore("http://127.0.0.1:1", "k", max_concurrency=0)
    with pytest.raises(ConfigurationError, match="either"):
        ConvexStore("http://127.0.0.1:1", "k", auth_token="jwt")
    monkeypatch.setenv("CONVEX_URL", "https://happy-otter-123.convex.cloud")
    monkeypatch.setenv("CONVEX_ADMIN_KEY", "secret")
    store = ConvexStore(allow_insecure_http=False)
    assert "secret" not in repr(store)
    anyio.run(store.close)
    opted_in = ConvexStore("http://10.0.0.5:3210", "k", allow_insecure_http=True)
    anyio.run(opted_in.close)


async def test_bad_values_are_validation_errors_before_sending(blackhole: str) -> None:
    # The black hole would time out any request that was sent; ValidationError comes first.
    transport = Transport(blackhole, admin_key="k", request_timeout=5)
    cases: list[tuple[object, str]] = [
        ({"meta": {"n": 2**70}}, "args.record.meta.n"),
        ({"meta": {"$schema": "x"}}, "args.record.meta.$schema"),
        ({"meta": {"ключ": 1}}, "args.record.meta.ключ"),
        ({"meta": [1, object()]}, "args.record.meta[1]"),
    ]
    for record, field in cases:
        started = time.perf_counter()
        with pytest.raises(ValidationError) as info:
            await transport.mutation("f:g", {"record": record})
        assert time.perf_counter() - started < 0.5
        assert info.value.field == field, str(info.value)
        assert field in str(info.value)
    await transport.aclose()


async def test_int64_values_round_trip(store: ConvexStore, uid: str) -> None:
    big = ConvexInt64(2**62 + 1)
    await store._dispatcher.call(
        "insert", f"ints_{uid}", record={"id": "a", "big": big, "inf": math.inf}
    )
    row = await store._dispatcher.call("load", f"ints_{uid}", keys={"id": "a"})
    assert row["big"] == big and row["inf"] == math.inf


async def test_dispatcher_detects_our_handler_and_the_stock_one(
    convex_deployment: Deployment, stock_deployment: Deployment
) -> None:
    async with ConvexStore(convex_deployment.url, convex_deployment.admin_key) as ours:
        info = await ours.handler_info()
        assert info.name == "convex-mastra" and not info.is_stock
        assert info.supports("pageByIndex")
        assert await ours.handler_info() is info  # asked once, then cached
    async with ConvexStore(stock_deployment.url, stock_deployment.admin_key) as stock:
        info = await stock.handler_info()
        assert info.is_stock and not info.supports("pageByIndex")


async def test_drain_loops_until_done_and_stops_at_its_bound(store: ConvexStore, uid: str) -> None:
    table = f"drain_{uid}"
    rows = [{"id": f"r{n}"} for n in range(80)]
    await store._dispatcher.call("batchInsert", table, records=rows)
    with pytest.raises(BatchLimitError, match="call the operation again"):
        await store._dispatcher.drain("clearTable", table, max_calls=2)
    results = await store._dispatcher.drain("clearTable", table)
    assert 1 <= len(results) <= 3
    assert await store._dispatcher.call("queryTable", table) == []


async def test_ok_false_is_a_storage_operation_error(store: ConvexStore) -> None:
    with pytest.raises(StorageOperationError, match="frobnicate"):
        await store._dispatcher.call("frobnicate", "mastra_threads")


async def test_closed_store_refuses_calls(convex_deployment: Deployment) -> None:
    store = ConvexStore(convex_deployment.url, convex_deployment.admin_key)
    await store.close()
    assert store.closed
    with pytest.raises(ConfigurationError, match="closed"):
        await store.handler_info()


def test_dispatcher_is_what_domains_use() -> None:
    # The store builds exactly one dispatcher on one transport: the layering the docs describe.
    store = ConvexStore("http://127.0.0.1:1", "k")
    assert isinstance(store._dispatcher, Dispatcher)
    anyio.run(store.close)


async def test_key_with_a_trailing_newline_is_cleaned_not_leaked(
    convex_deployment: Deployment,
) -> None:
    # Keys read from files or CRLF .env files end in whitespace; it must neither break the call
    # nor reach an error message.
    async with ConvexStore(convex_deployment.url, convex_deployment.admin_key + "\r\n") as store:
        assert (await store.handler_info()).name == "convex-mastra"
    with pytest.raises(ConfigurationError, match="control characters") as info:
        Transport(convex_deployment.url, admin_key="local|abc\ndef")
    assert "abc" not in str(info.value)


async def test_cancelled_calls_do_not_exceed_max_concurrency(blackhole: Blackhole) -> None:
    transport = Transport(blackhole, admin_key="k", request_timeout=30, max_concurrency=2)
    for _ in range(20):
        with anyio.move_on_after(0.05):
            await transport.query("f:g", {})
    await anyio.sleep(0.2)
    # Abandoned calls hold their slot (and their socket) until their connection is done, so
    # the 18 calls after the first two never got a token, nor opened a socket.
    assert transport._pool._limiter.borrowed_tokens == 2
    assert len(transport._pool._abandoned) == 2
    assert len(blackhole.accepted) == 2
    await transport.aclose()
    await anyio.sleep(0.05)  # connection_lost runs an iteration after the abort
    assert transport._pool._limiter.borrowed_tokens == 0


async def test_concurrent_first_callers_share_one_probe(blackhole: str) -> None:
    async with ConvexStore(blackhole, "k", request_timeout=0.5) as store:
        started = time.perf_counter()
        waits: list[float] = []

        async def one() -> None:
            with pytest.raises(RequestTimeoutError):
                await store.handler_info()
            waits.append(time.perf_counter() - started)

        async with anyio.create_task_group() as tg:
            for _ in range(6):
                tg.start_soon(one)
        assert max(waits) < 1.2  # one shared timeout, not six in a row


async def test_a_function_that_is_not_a_handler_is_not_taken_for_stock(tmp_path: Path) -> None:
    functions = tmp_path / "functions"
    functions.mkdir()
    (functions / "wrong.ts").write_text(
        'import { mutationGeneric } from "convex/server";\n'
        "export const handle = mutationGeneric({ handler: async () => null });\n"
    )
    async with (
        LocalDeployment(functions_dir=functions, data_dir=tmp_path / "data") as local,
        ConvexStore(local.url, local.admin_key, storage_function="wrong:handle") as store,
    ):
        with pytest.raises(FunctionError, match="not a response object"):
            await store.handler_info()


async def test_non_json_4xx_is_a_configuration_error_not_an_outage() -> None:
    import http.server

    class NotConvex(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.send_response(404)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(b"<html>not here</html>")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NotConvex)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        transport = Transport(f"http://127.0.0.1:{server.server_address[1]}/v1", admin_key="k")
        with pytest.raises(ConfigurationError, match="not a Convex API answer"):
            await transport.query("f:g", {})
        await transport.aclose()
    finally:
        server.shutdown()
        server.server_close()


async def test_aclose_with_a_call_in_flight(blackhole: str) -> None:
    transport = Transport(blackhole, admin_key="k", request_timeout=1)
    async with anyio.create_task_group() as tg:

        async def in_flight() -> None:
            with pytest.raises(RequestTimeoutError):
                await transport.query("f:g", {})

        tg.start_soon(in_flight)
        await anyio.sleep(0.1)
        await transport.aclose()
    with pytest.raises(ConfigurationError, match="closed"):
        await transport.query("f:g", {})
    await anyio.sleep(1.2)  # the abandoned worker ends and closes its connection
    assert transport._pool._idle == []
