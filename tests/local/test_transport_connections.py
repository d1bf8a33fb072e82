"""The transport's connections against scripted HTTP servers: the keep-alive pool, answers cut
short, cancellation, the concurrency bound on sockets, TLS verification, and the size
thresholds above which encoding and decoding leave the event loop.

The servers are ``http.server`` handlers speaking HTTP/1.1 with keep-alive; each records its
connections and the requests it read, so a test can tell a reused connection from a new one
and a request sent once from one sent twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import http.server
import logging
import shutil
import socket
import ssl
import subprocess
import threading
import time
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import orjson
import pytest

import convex_mastra._transport as transport_module
from convex_mastra import DeploymentUnavailable, FunctionError, RequestTimeoutError
from convex_mastra._http import Broken, Connection, Waker
from convex_mastra._transport import Transport


class Script:
    """What the server does, and what it saw."""

    def __init__(self) -> None:
        self.mode = "ok"
        self.modes: list[str] = []  # for the next requests, before ``mode``
        self.release = threading.Event()  # ends the "early" mode's wait
        self.answer: Any = {"ok": True}
        self.delay = 0.0
        self.lock = threading.Lock()
        self.opened = 0
        self.closed = 0
        self.open_now = 0
        self.most_open = 0
        self.requests: list[tuple[int, bytes]] = []

    def connected(self) -> int:
        with self.lock:
            self.opened += 1
            self.open_now += 1
            self.most_open = max(self.most_open, self.open_now)
            return self.opened

    def next_mode(self) -> str:
        with self.lock:
            return self.modes.pop(0) if self.modes else self.mode

    def disconnected(self) -> None:
        with self.lock:
            self.closed += 1
            self.open_now -= 1


def _handler(script: Script) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive unless told otherwise

        def setup(self) -> None:
            super().setup()
            self.connection_id = script.connected()

        def finish(self) -> None:
            super().finish()
            # Counted once the socket is closed (the server closes it after finish()), so a
            # test that waits for the count knows the client can see the hang-up.
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            self.connection.close()
            script.disconnected()

        def do_POST(self) -> None:
            mode = script.next_mode()
            if mode == "early":  # a proxy refusing a big body: answers, reads none of it
                with script.lock:
                    script.requests.append((self.connection_id, b""))
                refusal = b'{"code":"PayloadTooLarge","message":"too big"}'
                self.send_response(413)
                self.send_header("Content-Length", str(len(refusal)))
                self.end_headers()
                self.wfile.write(refusal)
                self.wfile.flush()
                script.release.wait(10)  # keeps the connection open, never reading
                self.close_connection = True
                return
            body = self.rfile.read(int(self.headers["Content-Length"]))
            with script.lock:
                script.requests.append((self.connection_id, body))
            if script.delay:
                time.sleep(script.delay)
            payload = orjson.dumps({"status": "success", "value": script.answer, "logLines": []})
            if mode == "drop":  # hangs up before any byte of the answer
                self.close_connection = True
                return
            if mode == "garbage":
                self.wfile.write(b"SMTP ready " + b"\x00\xff" * 40 + b"\r\n\r\n")
                self.close_connection = True
                return
            if mode == "chunked":
                self.send_response(200)
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for start in range(0, len(payload), 7):
                    piece = payload[start : start + 7]
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                self.wfile.write(b"0\r\n\r\n")
                return
            self.send_response(200)
            if mode == "connection-close":
                self.send_header("Connection", "close")  # also sets close_connection
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if mode == "cut":  # half the answer, then the server hangs up
                self.wfile.write(payload[: len(payload) // 2])
                self.close_connection = True
                return
            if mode == "stall":  # half the answer, then nothing until the client hangs up
                self.wfile.write(payload[: len(payload) // 2])
                self.wfile.flush()
                self.connection.settimeout(10)
                with contextlib.suppress(OSError):
                    self.connection.recv(1)
                self.close_connection = True
                return
            self.wfile.write(payload)
            if mode == "stray":  # bytes after the answer that nobody asked for
                self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
            if mode == "close":  # keep-alive answer, then the server hangs up
                self.close_connection = True

        def log_message(self, *args: object) -> None:
            pass

    return Handler


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # failed TLS handshakes and clients hanging up: expected here


@pytest.fixture
def script() -> Script:
    return Script()


def _serve(script: Script, context: ssl.SSLContext | None = None) -> tuple[Server, str]:
    server = Server(("127.0.0.1", 0), _handler(script))
    if context is not None:
        server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    scheme = "https" if context is not None else "http"
    return server, f"{scheme}://127.0.0.1:{server.server_address[1]}"


@pytest.fixture
def url(script: Script) -> Iterator[str]:
    server, address = _serve(script)
    yield address
    script.release.set()
    server.shutdown()
    server.server_close()


async def _until(condition: Any, seconds: float = 3.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the server"
        await anyio.sleep(0.01)


async def test_keep_alive_reuses_one_connection(url: str, script: Script) -> None:
    transport = Transport(url, admin_key="k")
    for n in range(3):
        script.answer = float(n)
        assert await transport.mutation("f:g", {"n": n}) == n
    await transport.aclose()
    assert script.opened == 1 and len(script.requests) == 3


async def test_a_connection_the_server_closed_is_never_reused(url: str, script: Script) -> None:
    # The server answers with keep-alive and then hangs up. A write sent on that dead socket
    # would fail after it may have left, and could not be retried: the pool must notice first.
    script.mode = "close"
    transport = Transport(url, admin_key="k", retry=transport_module.RetryPolicy(attempts=1))
    for n in range(4):
        script.answer = float(n)
        assert await transport.mutation("f:g", {"n": n}) == n
        await _until(lambda n=n: script.closed == n + 1)
    await transport.aclose()
    assert script.opened == 4
    assert [connection for connection, _ in script.requests] == [1, 2, 3, 4]


async def test_bytes_after_an_answer_make_the_connection_unusable(url: str, script: Script) -> None:
    script.mode = "stray"
    transport = Transport(url, admin_key="k")
    for n in range(3):
        script.answer = float(n)
        assert await transport.mutation("f:g", {"n": n}) == n  # never the stray "{}"
        await anyio.sleep(0.05)
    await transport.aclose()
    assert script.opened == 3 and len(script.requests) == 3


@pytest.mark.parametrize("how", ["timeout", "cancel"])
async def test_an_answer_cut_short_closes_the_connection_after_the_grace(
    url: str, script: Script, how: str
) -> None:
    script.mode = "stall"
    transport = Transport(url, admin_key="k", request_timeout=0.3 if how == "timeout" else 0.5)
    started = time.monotonic()
    if how == "timeout":
        with pytest.raises(RequestTimeoutError, match="may or may not have been applied"):
            await transport.mutation("f:g", {})
    else:
        with anyio.move_on_after(0.2):
            await transport.mutation("f:g", {})
    assert time.monotonic() - started < 0.6  # the caller is not kept waiting
    assert len(script.requests) == 1  # the write was not sent again
    # The server may still be working on it: the slot stays taken, as a socket timeout
    # (request_timeout + 1 s) would have kept it, then the connection is closed.
    assert transport._pool._limiter.borrowed_tokens == 1
    await _until(lambda: transport._pool._limiter.borrowed_tokens == 0, 2.5)
    assert time.monotonic() - started >= 1.2
    await _until(lambda: script.closed == 1)
    script.mode = "ok"
    assert await transport.mutation("f:g", {}) == {"ok": True}
    assert script.opened == 2  # a new connection, never the one in an unknown state
    await transport.aclose()


async def test_aclose_ends_abandoned_and_idle_connections(url: str, script: Script) -> None:
    transport = Transport(url, admin_key="k", request_timeout=30)
    script.delay = 0.05
    async with anyio.create_task_group() as tg:  # two connections, both idle afterwards
        tg.start_soon(transport.query, "f:g", {})
        tg.start_soon(transport.query, "f:g", {})
    assert script.opened == 2 and script.closed == 0
    script.mode = "stall"
    with anyio.move_on_after(0.2):
        await transport.mutation("f:g", {})
    assert transport._pool._limiter.borrowed_tokens == 1
    await transport.aclose()
    await _until(lambda: script.closed == 2)
    await _until(lambda: transport._pool._limiter.borrowed_tokens == 0)


async def test_max_concurrency_bounds_open_connections(url: str, script: Script) -> None:
    script.delay = 0.05
    transport = Transport(url, admin_key="k", max_concurrency=3)
    results: list[Any] = []

    async def one() -> None:
        results.append(await transport.query("f:g", {}))

    async with anyio.create_task_group() as tg:
        for _ in range(12):
            tg.start_soon(one)
    await transport.aclose()
    assert len(results) == 12
    assert script.most_open <= 3 and script.opened == 3


async def test_big_payloads_are_encoded_and_decoded_off_the_loop(
    url: str, script: Script, monkeypatch: pytest.MonkeyPatch
) -> None:
    loop_thread = threading.current_thread()
    encoded_on: list[bool] = []
    decoded_on: list[bool] = []
    encode = transport_module.encode_args

    def recording_encode(args: Any) -> bytes:
        encoded_on.append(threading.current_thread() is loop_thread)
        return encode(args)

    monkeypatch.setattr(transport_module, "encode_args", recording_encode)
    transport = Transport(url, admin_key="k")
    decode = transport._decode

    def recording_decode(*args: Any) -> Any:
        decoded_on.append(threading.current_thread() is loop_thread)
        return decode(*args)

    transport._decode = recording_decode  # type: ignore[method-assign]
    await transport.mutation("f:g", {"rows": [{"id": n} for n in range(10)]})
    await transport.mutation("f:g", {"rows": [{"id": n} for n in range(2000)]})
    await transport.mutation("f:g", {"text": "x" * 2_000_000})
    script.answer = [{"id": f"row-{n}", "text": "y" * 100} for n in range(1000)]
    rows = await transport.query("f:g", {})
    await transport.aclose()
    assert len(rows) == 1000 and rows[999]["id"] == "row-999"
    assert encoded_on == [True, False, False, True]
    assert decoded_on == [True, True, True, False]


# -- TLS -------------------------------------------------------------------------------------


def _certificate(tmp_path: Path, name: str, san: str) -> tuple[Path, Path]:
    cert, key = tmp_path / f"{name}.pem", tmp_path / f"{name}.key"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-keyout", str(key), "-out", str(cert), "-subj", "/CN=convex-mastra-test",
            "-addext", f"subjectAltName={san}",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


def _trusting(cert: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(cert))
    context.set_alpn_protocols(["http/1.1"])
    return context


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
async def test_https_verifies_the_certificate_and_the_host(tmp_path: Path, script: Script) -> None:
    good_cert, good_key = _certificate(tmp_path, "good", "IP:127.0.0.1")
    other_cert, other_key = _certificate(tmp_path, "other", "DNS:elsewhere.example")
    retry = transport_module.RetryPolicy(attempts=1)
    for cert, key in ((good_cert, good_key), (other_cert, other_key)):
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        server, url = _serve(script, context)
        try:
            # The default trust store does not know a self-signed certificate: refused before
            # anything is sent.
            transport = Transport(url, admin_key="k", retry=retry)
            with pytest.raises(DeploymentUnavailable, match=r"could not connect.*SSLCert"):
                await transport.query("f:g", {})
            await transport.aclose()
            # Trusted, it works only for the host it names.
            transport = Transport(url, admin_key="k", retry=retry)
            transport._pool._ssl_context = _trusting(cert)
            if cert is good_cert:
                assert await transport.query("f:g", {}) == {"ok": True}
                assert await transport.query("f:g", {}) == {"ok": True}
            else:
                with pytest.raises(DeploymentUnavailable, match=r"could not connect.*SSLCert"):
                    await transport.query("f:g", {})
            await transport.aclose()
        finally:
            server.shutdown()
            server.server_close()
    assert len(script.requests) == 2 and script.requests[0][0] == script.requests[1][0]


async def test_a_refused_connection_is_not_sent_and_is_retried(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    caplog.set_level(logging.DEBUG, logger="convex_mastra.transport")
    retry = transport_module.RetryPolicy(attempts=3, base_delay=0.01)
    transport = Transport(f"http://127.0.0.1:{port}", admin_key="k", retry=retry)
    with pytest.raises(DeploymentUnavailable, match="connection refused"):
        await transport.mutation("f:g", {})  # a write, yet resent: it never left
    await transport.aclose()
    assert len([r for r in caplog.records if r.getMessage().startswith("retrying")]) == 2


async def test_the_waker_resumes_a_burst_over_several_loop_iterations() -> None:
    # 20 answers complete at once: 8 callers resume in this iteration, 8 in the next, 4 after;
    # a caller cancelled while queued takes no step.
    loop = asyncio.get_running_loop()
    waker = Waker(loop)
    futures: list[asyncio.Future[Any]] = [loop.create_future() for _ in range(21)]
    for future in futures:
        waker.resume(future, (200, b"{}", True))
    futures[10].cancel()
    done = [sum(f.done() and not f.cancelled() for f in futures)]
    for _ in range(3):
        await asyncio.sleep(0)
        done.append(sum(f.done() and not f.cancelled() for f in futures))
    assert done == [8, 16, 20, 20]
    assert futures[0].result() == (200, b"{}", True)
    # Calls starting together take turns the same way.
    started: list[int] = []

    async def start(n: int) -> None:
        await waker.turn()
        started.append(n)

    await asyncio.sleep(0)  # a fresh iteration
    async with anyio.create_task_group() as tg:
        for n in range(12):
            tg.start_soon(start, n)
    assert started == list(range(12))  # in order


def test_event_loops_that_made_calls_are_not_kept_alive(url: str, script: Script) -> None:
    # Apps that make a store per asyncio.run must not keep every finished loop (and its Waker)
    # alive: the per-loop table is weak, and nothing in it may hold its loop strongly.
    loops: list[weakref.ref[asyncio.AbstractEventLoop]] = []

    async def one_call(n: int) -> None:
        loops.append(weakref.ref(asyncio.get_running_loop()))
        transport = Transport(url, admin_key="k")
        script.answer = float(n)
        assert await transport.query("f:g", {"n": n}) == n
        await transport.aclose()

    for n in range(5):
        asyncio.run(one_call(n))
    gc.collect()
    assert len(script.requests) == 5
    assert [ref for ref in loops if ref() is not None] == []
    assert not [w for w in gc.get_objects() if isinstance(w, Waker) and w._loop_ref() is None]


async def test_an_early_answer_to_a_big_body_is_returned_not_timed_out(
    url: str, script: Script
) -> None:
    # A proxy refusing a 20 MB body answers at once and stops reading: the caller gets that
    # answer, not a timeout, and the connection (body half sent) is never pooled.
    script.modes = ["early"]
    retry = transport_module.RetryPolicy(attempts=1)
    transport = Transport(url, admin_key="k", request_timeout=5, retry=retry)
    started = time.monotonic()
    with pytest.raises(FunctionError, match="HTTP 413, PayloadTooLarge"):
        await transport.mutation("f:g", {"text": "x" * 20_000_000})
    assert time.monotonic() - started < 2.5
    assert transport._pool._idle == []
    script.release.set()
    assert await transport.mutation("f:g", {}) == {"ok": True}
    await transport.aclose()
    assert script.opened == 2 and len(script.requests) == 2


async def _settled(future: asyncio.Future[Any]) -> None:
    for _ in range(5):  # the Waker may hand it over an iteration or two later
        if future.done():
            return
        await asyncio.sleep(0)


async def test_an_error_in_parsing_never_leaves_the_caller_waiting() -> None:
    class Exploding:  # a parser stand-in that fails in a way nobody planned for
        def feed_data(self, data: bytes) -> None:
            raise RuntimeError("parser bug")

    loop = asyncio.get_running_loop()
    waiting = Connection(loop)
    answer: asyncio.Future[Any] = loop.create_future()
    waiting._answer, waiting._parser = answer, Exploding()  # type: ignore[assignment]
    with pytest.raises(RuntimeError):
        waiting.data_received(b"HTTP/1.1 200 OK\r\n")
    waiting.connection_lost(None)  # what asyncio does once a protocol callback raised
    await _settled(answer)
    with pytest.raises(Broken):
        answer.result()
    # An abandoned connection releases its caller's token all the same.
    abandoned = Connection(loop)
    abandoned._answer, abandoned._parser = loop.create_future(), Exploding()  # type: ignore[assignment]
    released: list[bool] = []
    abandoned.abandon(lambda: released.append(True), None)
    with pytest.raises(RuntimeError):
        abandoned.data_received(b"HTTP/1.1 200 OK\r\n")
    abandoned.connection_lost(None)
    assert released == [True]


async def test_an_answer_that_leaves_http_fails_the_exchange_instead_of_waiting() -> None:
    loop = asyncio.get_running_loop()
    conn = Connection(loop)
    answer: asyncio.Future[Any] = loop.create_future()
    conn._answer = answer
    conn.data_received(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n"
    )
    await _settled(answer)
    with pytest.raises(Broken, match="Upgrade"):
        answer.result()


async def test_no_awaiting_frame_holds_the_admin_key(url: str, script: Script) -> None:
    # Error trackers capture the locals of a traceback's frames: those of a call cancelled or
    # timed out while it waits must not include the request head or its bytes.
    script.mode = "stall"
    key = "prod:secret-admin-key-0123456789"
    transport = Transport(url, admin_key=key, request_timeout=5)
    task = asyncio.ensure_future(transport.mutation("f:g", {}))
    await _until(lambda: script.requests)
    await anyio.sleep(0.05)
    seen: list[str] = []
    awaiting: Any = task.get_coro()
    while awaiting is not None:
        frame = getattr(awaiting, "cr_frame", None) or getattr(awaiting, "gi_frame", None)
        if frame is not None:
            seen += [f"{name}={value!r}" for name, value in frame.f_locals.items()]
        awaiting = getattr(awaiting, "cr_await", None) or getattr(awaiting, "gi_yieldfrom", None)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await transport.aclose()
    assert any(text.startswith("body=") for text in seen)  # the walk reached _attempt
    assert not [text for text in seen if key in text]


async def test_concurrent_first_callers_build_one_tls_context(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    retry = transport_module.RetryPolicy(attempts=1)
    transport = Transport(f"https://127.0.0.1:{port}", admin_key="k", retry=retry)
    built_with: list[int] = []

    def slow_context() -> ssl.SSLContext:
        # On the store's own limiter (never the process-wide pool), and only once.
        built_with.append(transport._threads.borrowed_tokens)
        time.sleep(0.1)
        return _trusting_nothing()

    monkeypatch.setattr("convex_mastra._pool.default_ssl_context", slow_context)

    async def one() -> None:
        with pytest.raises(DeploymentUnavailable, match="connection refused"):
            await transport.query("f:g", {})

    async with anyio.create_task_group() as tg:
        for _ in range(8):
            tg.start_soon(one)
    await transport.aclose()
    assert built_with == [1]


def _trusting_nothing() -> ssl.SSLContext:
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


# -- answers lost, odd answers ---------------------------------------------------------------


@pytest.mark.parametrize("how", ["drop", "cut"])
async def test_a_write_whose_answer_was_lost_is_not_resent(
    url: str, script: Script, how: str
) -> None:
    # The connection drops before any byte of the answer, or in the middle of it: the mutation
    # may have committed, so it is not sent again.
    script.modes = [how]
    transport = Transport(url, admin_key="k")
    with pytest.raises(DeploymentUnavailable, match="failed during mutation f:g"):
        await transport.mutation("f:g", {"n": 1})
    await transport.aclose()
    assert len(script.requests) == 1


@pytest.mark.parametrize("how", ["drop", "cut"])
async def test_a_read_whose_answer_was_lost_is_retried_encoded_once(
    url: str, script: Script, how: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    encoded: list[Any] = []
    encode = transport_module.encode_args

    def counting_encode(args: Any) -> bytes:
        encoded.append(args)
        return encode(args)

    monkeypatch.setattr(transport_module, "encode_args", counting_encode)
    script.modes = [how, how]
    transport = Transport(url, admin_key="k", retry=transport_module.RetryPolicy(base_delay=0))
    assert await transport.query("f:g", {"n": 1}) == {"ok": True}
    await transport.aclose()
    assert len(script.requests) == 3
    assert len({body for _, body in script.requests}) == 1  # the same bytes each time
    assert len(encoded) == 1  # encoded once, not once per attempt


async def test_a_chunked_answer_is_read_and_the_connection_reused(url: str, script: Script) -> None:
    script.mode = "chunked"
    script.answer = {"text": "z" * 300}
    transport = Transport(url, admin_key="k")
    for _ in range(3):
        assert await transport.query("f:g", {}) == {"text": "z" * 300}
    await transport.aclose()
    assert script.opened == 1 and len(script.requests) == 3


async def test_an_answer_with_connection_close_is_read_and_not_pooled(
    url: str, script: Script
) -> None:
    script.mode = "connection-close"
    transport = Transport(url, admin_key="k", retry=transport_module.RetryPolicy(attempts=1))
    for n in range(3):
        script.answer = float(n)
        assert await transport.mutation("f:g", {"n": n}) == n
        assert transport._pool._idle == []
    await transport.aclose()
    assert script.opened == 3
    assert [connection for connection, _ in script.requests] == [1, 2, 3]


async def test_garbage_from_the_server_is_unavailable_without_the_key(
    url: str, script: Script
) -> None:
    script.mode = "garbage"
    key = "prod:secret-admin-key-0123456789"
    transport = Transport(url, admin_key=key)
    with pytest.raises(DeploymentUnavailable) as info:
        await transport.mutation("f:g", {})
    await transport.aclose()
    assert len(script.requests) == 1
    texts = [str(info.value), repr(info.value), repr(info.value.__cause__)]
    texts += [repr(info.value.__context__)]
    assert not [text for text in texts if key in text]


def test_weighing_a_request_is_bounded_and_samples_the_whole_list() -> None:
    weight, big = transport_module._weight, transport_module._BIG_REQUEST
    # A heavy item late in a long list counts (the first items alone would say "small").
    rows: list[Any] = [{"id": n} for n in range(40)]
    rows[-1] = {"id": 39, "text": "x" * 4_000_000}
    assert weight({"rows": rows}) >= big
    # So does a second half heavier than the first.
    rows = [{"id": n, "text": "x" * (100_000 if n >= 20 else 0)} for n in range(40)]
    assert weight({"rows": rows}) >= big
    assert weight({"rows": [{"id": n} for n in range(40)]}) < big
    # A huge mapping is not walked in full: the walk stops once the weight reaches the bound.
    visited = 0

    class Counting(dict[str, Any]):
        def values(self) -> Any:
            nonlocal visited
            for value in super().values():
                visited += 1
                yield value

    huge = Counting((f"k{n}", n) for n in range(200_000))
    started = time.perf_counter()
    assert weight({"meta": huge}) >= big
    assert visited <= big
    assert time.perf_counter() - started < 0.05
