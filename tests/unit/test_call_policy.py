"""HttpTransport's call policy, with its connection pool replaced by a script of outcomes:
which failures are retried and how often, how answers map to errors, timeouts, closing, and
that the secret never reaches a message. Sockets are tested in tests/local/."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import anyio
import orjson
import pytest

from convex_mastra import (
    AuthenticationError,
    ConfigurationError,
    DeploymentUnavailable,
    FunctionError,
    HttpTransport,
    RequestTimeoutError,
    RetryPolicy,
    ValidationError,
)
from convex_mastra._http import Broken
from convex_mastra._pool import NotSent
from convex_mastra._transport import validate_url

KEY = "prod:secret-admin-key-0123456789"
NO_WAIT = RetryPolicy(attempts=4, base_delay=0, max_delay=0)


class ScriptedPool:
    """Stands in for ConnectionPool: each post takes the next outcome of the script."""

    def __init__(self, *outcomes: Any) -> None:
        self.outcomes: Iterator[Any] = iter(outcomes)
        self.bodies: list[dict[str, Any]] = []
        self.closed = False

    async def post(
        self, kind: str, body: bytes, limit: float | None, loop: asyncio.AbstractEventLoop
    ) -> tuple[int, bytes]:
        assert loop is asyncio.get_running_loop()
        self.bodies.append(orjson.loads(body))
        outcome = next(self.outcomes)
        if outcome == "hang":
            await anyio.sleep_forever()
        if outcome == "closed while out":
            self.closed = True
            raise NotSent("refused")
        if isinstance(outcome, BaseException):
            raise outcome
        status, payload = outcome
        return status, payload if isinstance(payload, bytes) else orjson.dumps(payload)

    async def aclose(self) -> None:
        self.closed = True


def transport(*outcomes: Any, **options: Any) -> tuple[HttpTransport, ScriptedPool]:
    options.setdefault("retry", NO_WAIT)
    t = HttpTransport("https://happy-otter-123.convex.cloud", admin_key=KEY, **options)
    pool = ScriptedPool(*outcomes)
    t._pool = pool  # type: ignore[assignment]
    return t, pool


def ok(value: Any) -> tuple[int, dict[str, Any]]:
    return 200, {"status": "success", "value": value}


# -- what is sent ----------------------------------------------------------------------------


async def test_a_call_sends_path_args_and_format_once_encoded() -> None:
    t, pool = transport(ok(7.0))
    assert await t.mutation("mastra/storage:handle", {"op": "info", "n": 1.5}) == 7.0
    assert pool.bodies == [
        {
            "path": "mastra/storage:handle",
            "format": "convex_encoded_json",
            "args": {"op": "info", "n": 1.5},
        }
    ]


async def test_arguments_convex_cannot_take_are_refused_before_sending() -> None:
    t, pool = transport()
    with pytest.raises(ValidationError, match=r"args\.rows\[1\]") as info:
        await t.mutation("f:g", {"rows": [1, {1, 2}]})
    assert info.value.field == "args.rows[1]"
    assert pool.bodies == []


# -- retries ---------------------------------------------------------------------------------


async def test_a_request_that_never_left_is_retried_even_for_a_mutation() -> None:
    t, pool = transport(NotSent("refused"), NotSent("refused"), ok("done"))
    assert await t.mutation("f:g", {}) == "done"
    assert len(pool.bodies) == 3


async def test_a_mutation_whose_connection_broke_after_sending_is_not_resent() -> None:
    t, pool = transport(Broken("reset"), ok("never"))
    with pytest.raises(DeploymentUnavailable, match="reset"):
        await t.mutation("f:g", {})
    assert len(pool.bodies) == 1.0


async def test_an_idempotent_call_is_resent_after_a_broken_connection() -> None:
    t, pool = transport(Broken("reset"), ok("read"))
    assert await t.mutation("f:g", {}, idempotent=True) == "read"
    assert len(pool.bodies) == 2


async def test_queries_are_idempotent() -> None:
    t, pool = transport(Broken("reset"), (503, b"busy"), ok([1.0]))
    assert await t.query("f:g", {}) == [1.0]
    assert len(pool.bodies) == 3


async def test_retries_stop_after_the_policys_attempts() -> None:
    t, pool = transport(*[Broken("reset")] * 10, retry=RetryPolicy(attempts=3, base_delay=0))
    with pytest.raises(DeploymentUnavailable):
        await t.query("f:g", {})
    assert len(pool.bodies) == 3


async def test_retries_stop_once_max_total_has_passed() -> None:
    policy = RetryPolicy(attempts=100, base_delay=0.02, max_delay=0.02, max_total=0.05)
    t, pool = transport(*[NotSent("refused")] * 100, retry=policy)
    with pytest.raises(DeploymentUnavailable):
        await t.query("f:g", {})
    assert 2 <= len(pool.bodies) < 20  # not the 100 attempts allowed


async def test_an_overloaded_deployment_is_retried_only_for_idempotent_calls() -> None:
    t, pool = transport((429, b""), ok(1.0))
    assert await t.query("f:g", {}) == 1.0
    t, pool = transport((500, b""), ok(1.0))
    with pytest.raises(DeploymentUnavailable, match="HTTP 500"):
        await t.mutation("f:g", {})
    assert len(pool.bodies) == 1.0


def test_backoff_is_full_jitter_under_the_cap() -> None:
    policy = RetryPolicy(base_delay=0.05, max_delay=0.3)
    for attempt in range(8):
        cap = min(0.3, 0.05 * 2**attempt)
        delays = [policy.delay(attempt) for _ in range(200)]
        assert all(0 <= d <= cap for d in delays)
        assert max(delays) > cap / 2  # jitter spreads over the whole range


# -- answers and errors ----------------------------------------------------------------------


async def test_rejected_credentials_are_an_authentication_error_not_retried() -> None:
    t, pool = transport((401, {"code": "BadAdminKey"}), ok(1.0))
    with pytest.raises(AuthenticationError, match="BadAdminKey"):
        await t.query("f:g", {})
    assert len(pool.bodies) == 1.0


async def test_a_function_refusing_the_caller_is_an_authentication_error() -> None:
    failure = {
        "status": "error",
        "errorMessage": "Uncaught ConvexError",
        "errorData": {"code": "FORBIDDEN", "message": "not allow-listed"},
    }
    t, _ = transport((200, failure))
    with pytest.raises(AuthenticationError, match=r"FORBIDDEN\): not allow-listed"):
        await t.mutation("mastra/public:storage", {})


async def test_a_function_error_carries_its_path_and_data() -> None:
    failure = {"status": "error", "errorMessage": "boom", "errorData": {"why": "x"}}
    t, _ = transport((200, failure))
    with pytest.raises(FunctionError, match="failed: boom") as info:
        await t.mutation("mod:fn", {})
    assert info.value.path == "mod:fn"
    assert info.value.error_data == {"why": "x"}


async def test_a_4xx_answer_is_a_function_error_with_its_code() -> None:
    t, _ = transport((400, {"code": "BadJsonBody", "message": "bad args"}))
    with pytest.raises(FunctionError, match=r"HTTP 400, BadJsonBody\): bad args"):
        await t.mutation("mod:fn", {})


async def test_an_answer_that_is_not_the_convex_api_points_at_the_url() -> None:
    t, _ = transport((200, b"<html>hello</html>"))
    with pytest.raises(ConfigurationError, match="not a Convex API answer"):
        await t.query("mod:fn", {})


async def test_values_are_decoded_from_convex_json() -> None:
    t, _ = transport(ok({"n": {"$integer": "BwAAAAAAAAA="}, "s": "x"}))
    value = await t.query("mod:fn", {})
    assert value["s"] == "x"
    assert value["n"].value == 7


async def test_the_secret_never_reaches_an_error_message() -> None:
    failure = {"status": "error", "errorMessage": f"echo: Convex {KEY}"}
    t, _ = transport((200, failure), (502, {"code": KEY}))
    with pytest.raises(FunctionError) as refused:
        await t.mutation("mod:fn", {})
    with pytest.raises(DeploymentUnavailable) as down:
        await t.mutation("mod:fn", {})
    for error in (refused.value, down.value):
        assert KEY not in str(error)
        assert "<redacted>" in str(error)
    assert KEY not in repr(t)


# -- timeouts and closing --------------------------------------------------------------------


async def test_a_call_without_an_answer_times_out_with_a_clear_error() -> None:
    t, _ = transport("hang", request_timeout=0.05)
    with pytest.raises(RequestTimeoutError, match=r"within 0\.05 s"):
        await t.mutation("mod:fn", {})


async def test_a_per_call_timeout_overrides_the_transports() -> None:
    t, _ = transport("hang", request_timeout=30)
    with pytest.raises(RequestTimeoutError, match=r"within 0\.05 s"):
        await t.query("mod:fn", {}, timeout=0.05)


async def test_a_closed_transport_refuses_calls_and_sends_nothing() -> None:
    t, pool = transport(ok(1.0))
    await t.aclose()
    assert t.closed and pool.closed
    with pytest.raises(ConfigurationError, match="closed"):
        await t.query("mod:fn", {})
    assert pool.bodies == []


async def test_closing_during_retries_stops_them() -> None:
    t, pool = transport("closed while out", ok(1.0))
    with pytest.raises(DeploymentUnavailable):
        await t.mutation("mod:fn", {})
    assert len(pool.bodies) == 1.0


# -- settings checked up front ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://happy-otter-123.convex.cloud/", "https://happy-otter-123.convex.cloud"),
        ("  http://127.0.0.1:3210 ", "http://127.0.0.1:3210"),
        ("http://localhost:3210", "http://localhost:3210"),
        ("http://[::1]:3210", "http://[::1]:3210"),
    ],
)
def test_urls_are_normalized(url: str, expected: str) -> None:
    assert validate_url(url, allow_insecure_http=False) == expected


@pytest.mark.parametrize("url", ["happy-otter.convex.cloud", "ftp://x.example", "https://"])
def test_urls_that_are_not_http_are_refused(url: str) -> None:
    with pytest.raises(ConfigurationError, match="not an http"):
        validate_url(url, allow_insecure_http=False)


def test_plain_http_to_another_host_needs_an_explicit_opt_in() -> None:
    with pytest.raises(ConfigurationError, match="unencrypted"):
        validate_url("http://10.0.0.5:3210", allow_insecure_http=False)
    assert validate_url("http://10.0.0.5:3210", allow_insecure_http=True)


@pytest.mark.parametrize(
    ("secret", "problem"),
    [
        ("   ", "blank"),
        ("abc\x00def", "control characters"),
        ("x" * 9000, "more than an HTTP header"),
        ("clé-admin", "non-ASCII"),
    ],
)
def test_unusable_secrets_are_refused_without_echoing_them(secret: str, problem: str) -> None:
    with pytest.raises(ConfigurationError, match=problem) as info:
        HttpTransport("https://a.convex.cloud", admin_key=secret)
    assert secret.strip() not in str(info.value) or not secret.strip()


def test_a_secret_read_from_a_file_loses_its_newline() -> None:
    t = HttpTransport("https://a.convex.cloud", admin_key=KEY + "\n")
    assert t._secret == KEY


@pytest.mark.parametrize(
    ("options", "problem"),
    [({"max_concurrency": 0}, "at least 1"), ({"request_timeout": -1}, ">= 0")],
)
def test_bad_limits_are_refused(options: dict[str, Any], problem: str) -> None:
    with pytest.raises(ConfigurationError, match=problem):
        HttpTransport("https://a.convex.cloud", admin_key=KEY, **options)


# -- deadlines: one timer for every call -----------------------------------------------------


async def test_a_callers_own_cancellation_is_not_reported_as_a_timeout() -> None:
    t, _ = transport("hang", request_timeout=0.2)
    with pytest.raises(TimeoutError) as info:  # the caller's deadline, shorter than the call's
        with anyio.fail_after(0.05):
            await t.query("mod:fn", {})
    assert not isinstance(info.value, RequestTimeoutError)
    t, _ = transport("hang", request_timeout=5)
    with anyio.move_on_after(0.05) as scope:
        await t.query("mod:fn", {})
    assert scope.cancelled_caught


async def test_deadlines_keep_no_timer_and_no_task_once_calls_end() -> None:
    from convex_mastra._http import deadlines

    t, _ = transport(*[ok(1.0)] * 50, request_timeout=30)
    for _ in range(50):
        await t.query("mod:fn", {})
    timer = deadlines(asyncio.get_running_loop())
    assert timer._heap == [] and timer._timer is None and timer._live == 0


async def test_ended_deadlines_do_not_pile_up_while_calls_go_on() -> None:
    from convex_mastra._http import deadlines

    t, _ = transport(*["hang"] + [ok(1.0)] * 5000, request_timeout=30)
    async with anyio.create_task_group() as tg:
        tg.start_soon(lambda: t.query("mod:fn", {}))  # stays in flight
        await anyio.sleep(0.01)
        for _ in range(5000):
            await t.query("mod:fn", {})
        timer = deadlines(asyncio.get_running_loop())
        assert timer._live == 1
        assert len(timer._heap) <= 2 * timer._live + 1025
        tg.cancel_scope.cancel()


async def test_concurrent_calls_each_time_out_on_their_own_deadline() -> None:
    t, _ = transport(*["hang"] * 3, request_timeout=30)
    ended: dict[float, float] = {}

    async def call(limit: float) -> None:
        started = anyio.current_time()
        with pytest.raises(RequestTimeoutError):
            await t.query("mod:fn", {}, timeout=limit)
        ended[limit] = anyio.current_time() - started

    async with anyio.create_task_group() as tg:
        for limit in (0.15, 0.05, 0.1):
            tg.start_soon(call, limit)
    for limit, took in ended.items():
        assert limit <= took < limit + 0.05
