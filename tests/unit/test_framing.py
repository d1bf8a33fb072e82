"""How a connection reads answers, byte by byte, with no socket: what it hands the caller and
whether it may be used again. The same rules run over real sockets in
tests/local/test_transport_connections.py."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from convex_mastra._http import Broken, Connection

HEAD = b"POST /api/mutation HTTP/1.1\r\nHost: x\r\nContent-Length: "


class Wire(asyncio.Transport):
    """An asyncio transport that keeps what is written and can hold some of it back."""

    def __init__(self) -> None:
        super().__init__()
        self.written = b""
        self.buffered = 0
        self.aborted = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += bytes(data)

    def get_write_buffer_size(self) -> int:
        return self.buffered

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default

    def abort(self) -> None:
        self.aborted = True

    def is_closing(self) -> bool:
        return self.aborted


async def exchange(*pieces: bytes, eof: bool = False, unsent: int = 0) -> tuple[Any, Connection]:
    """Send a request on a fresh connection, feed ``pieces`` of the answer; the outcome."""
    loop = asyncio.get_running_loop()
    conn = Connection(loop)
    wire = Wire()
    conn.connection_made(wire)
    conn._fileno = 0  # pretend to be a socket, for reusable()'s early checks
    answer = conn.send(HEAD + b"2\r\n\r\n", b"{}")
    wire.buffered = unsent
    for piece in pieces:
        conn.data_received(piece)
    if eof:
        conn.eof_received()
    for _ in range(5):  # the Waker may hand it over an iteration or two later
        if answer.done():
            break
        await asyncio.sleep(0)
    if not answer.done():
        return "waiting", conn
    if answer.exception() is not None:
        return answer.exception(), conn
    return answer.result(), conn


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"


async def test_the_request_is_written_whole() -> None:
    _, conn = await exchange(OK)
    assert conn._transport.written == HEAD + b"2\r\n\r\n{}"  # type: ignore[union-attr]


async def test_a_sized_answer_keeps_the_connection() -> None:
    assert (await exchange(OK))[0] == (200, b"hello", True)


@pytest.mark.parametrize("size", [1, 2, 7, 40])
async def test_an_answer_split_anywhere_reads_the_same(size: int) -> None:
    pieces = [OK[i : i + size] for i in range(0, len(OK), size)]
    assert (await exchange(*pieces))[0] == (200, b"hello", True)


async def test_an_incomplete_answer_waits_for_the_rest() -> None:
    assert (await exchange(OK[:-2]))[0] == "waiting"


async def test_a_chunked_answer_is_joined() -> None:
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    chunked = head + b"2\r\nhe\r\n3\r\nllo\r\n0\r\n\r\n"
    assert (await exchange(chunked))[0] == (200, b"hello", True)


async def test_connection_close_reads_the_answer_and_drops_the_connection() -> None:
    closing = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 5\r\n\r\nhello"
    assert (await exchange(closing))[0] == (200, b"hello", False)


async def test_http_1_0_is_read_and_not_kept() -> None:
    old = b"HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nhello"
    assert (await exchange(old))[0] == (200, b"hello", False)


async def test_an_answer_without_length_ends_with_the_connection() -> None:
    unsized = b"HTTP/1.1 200 OK\r\n\r\nhel"
    assert (await exchange(unsized, b"lo"))[0] == "waiting"
    assert (await exchange(unsized, b"lo", eof=True))[0] == (200, b"hello", False)


async def test_a_sized_answer_cut_short_is_broken() -> None:
    outcome, _ = await exchange(OK[:-2], eof=True)
    assert isinstance(outcome, Broken) and outcome.reason == "ConnectionClosed"


async def test_informational_answers_are_skipped() -> None:
    outcome, _ = await exchange(b"HTTP/1.1 100 Continue\r\n\r\n" + OK)
    assert outcome == (200, b"hello", True)


async def test_bytes_after_the_answer_make_the_connection_unusable() -> None:
    for stray in (OK, b"garbage", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"):
        outcome, conn = await exchange(OK + stray)
        assert outcome == (200, b"hello", False)
        assert not conn.reusable(asyncio.get_running_loop())


async def test_bytes_nobody_asked_for_make_an_idle_connection_unusable() -> None:
    outcome, conn = await exchange(OK)
    assert outcome[2] is True
    conn.data_received(b"HTTP/1.1 200 OK\r\n")
    assert not conn.reusable(asyncio.get_running_loop())


async def test_an_early_answer_with_the_body_unsent_is_not_reused() -> None:
    refusal = b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 2\r\n\r\nno"
    assert (await exchange(refusal, unsent=1000))[0] == (413, b"no", False)


async def test_a_server_that_speaks_no_http_breaks_the_exchange() -> None:
    outcome, _ = await exchange(b"SMTP ready \x00\xff\r\n\r\n")
    assert isinstance(outcome, Broken)
    assert "SMTP" not in outcome.reason  # the name of what went wrong, never the bytes


async def test_an_endless_head_is_refused() -> None:
    outcome, _ = await exchange(b"HTTP/1.1 200 OK\r\n", b"X-Padding: " + b"a" * 70_000)
    assert isinstance(outcome, Broken) and outcome.reason == "HeadTooLarge"


async def test_a_big_body_in_the_first_piece_is_not_a_big_head() -> None:
    body = b"x" * 100_000
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + body
    assert (await exchange(answer))[0] == (200, body, True)


async def test_a_connection_is_used_again_for_the_next_exchange() -> None:
    _, conn = await exchange(OK)
    second = conn.send(HEAD + b"2\r\n\r\n", b"{}")
    conn.data_received(b"HTTP/1.1 201 Created\r\nContent-Length: 3\r\n\r\nabc")
    for _ in range(5):
        await asyncio.sleep(0)
    assert second.result() == (201, b"abc", True)
