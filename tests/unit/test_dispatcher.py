"""The dispatcher's own decisions, against an in-process handler: what a request holds, which
calls may be resent, how ``ok: false`` answers map to errors, the single-flight probe of the
handler and the bound on looping calls."""

from __future__ import annotations

import logging
from typing import Any

import anyio
import pytest

from convex_mastra import (
    BatchLimitError,
    ConfigurationError,
    ConvexStore,
    FunctionError,
    NotFoundError,
    RecordTooLargeError,
    StorageOperationError,
)
from convex_mastra._dispatch import NULL, Dispatcher

from .fakes import OUR_STORAGE_INFO, FakeHandler, FakeTransport

FUNCTION = "mastra/storage:handle"


def dispatcher(handler: FakeHandler | None = None) -> tuple[Dispatcher, FakeTransport]:
    transport = FakeTransport(handler or FakeHandler())
    return Dispatcher(transport, FUNCTION, probe_table="mastra_threads"), transport


def answer(result: Any = None, **more: Any) -> Any:
    return lambda request: {"ok": True, "result": result, **more}


async def test_a_request_holds_op_table_and_the_fields_given() -> None:
    d, t = dispatcher(FakeHandler(ops={"insert": answer("id1")}))
    result = await d.call("insert", "mastra_threads", record={"id": "t"}, skip=None, end=NULL)
    assert result == "id1"
    sent = t.calls[-1]
    assert sent.kind == "mutation" and sent.path == FUNCTION
    # None means "not given" and is left out; NULL is an explicit JSON null.
    assert sent.args == {
        "op": "insert",
        "tableName": "mastra_threads",
        "record": {"id": "t"},
        "end": None,
    }


async def test_only_read_ops_may_be_resent() -> None:
    d, t = dispatcher(FakeHandler(ops={"load": answer(), "insert": answer()}))
    await d.call("load", "mastra_threads", id="t")
    await d.call("insert", "mastra_threads", record={})
    flags = {call.op: call.idempotent for call in t.calls}
    assert flags == {"info": True, "load": True, "insert": False}


async def test_the_handler_is_probed_once_for_concurrent_first_callers() -> None:
    d, t = dispatcher()

    async def ask() -> None:
        assert (await d.info()).name == "convex-mastra"

    async with anyio.create_task_group() as tg:
        for _ in range(20):
            tg.start_soon(ask)
    await d.info()
    assert t.ops() == ["info"]


async def test_a_failed_probe_is_shared_by_its_waiters_then_tried_again() -> None:
    calls = 0
    failing = True

    def handler(request: dict[str, Any]) -> Any:
        nonlocal calls
        calls += 1
        if failing:
            raise FunctionError("Could not find function", path=FUNCTION)
        return {"ok": True, "result": OUR_STORAGE_INFO}

    d = Dispatcher(FakeTransport(handler), FUNCTION, probe_table=None)
    errors: list[BaseException] = []

    async def ask() -> None:
        try:
            await d.info()
        except FunctionError as exc:
            errors.append(exc)

    async with anyio.create_task_group() as tg:
        for _ in range(5):
            tg.start_soon(ask)
    assert len(errors) == 5 and calls == 1
    assert "doctor" in str(errors[0])  # the message says how to check the deployment
    failing = False
    assert (await d.info()).protocol == 2
    assert calls == 2


async def test_the_stock_handler_is_recognized_by_its_refusal_of_info(
    caplog: pytest.LogCaptureFixture,
) -> None:
    d, _ = dispatcher(FakeHandler(info=None))
    with caplog.at_level(logging.WARNING, logger="convex_mastra.dispatch"):
        info = await d.info()
    assert info.is_stock and info.limit("queryTableRows") == 10000
    assert "public mutation" in caplog.text


async def test_a_handler_of_an_older_protocol_is_refused_with_the_fix() -> None:
    d, _ = dispatcher(FakeHandler(info={**OUR_STORAGE_INFO, "protocol": 1}))
    with pytest.raises(FunctionError, match=r"needs protocol 2 or later\. Redeploy"):
        await d.info()


async def test_an_answer_that_is_no_response_object_is_refused() -> None:
    d, _ = dispatcher(FakeHandler(ops={"load": lambda request: ["not", "an", "object"]}))
    with pytest.raises(FunctionError, match="answered load with list"):
        await d.call("load", "mastra_threads", id="x")


@pytest.mark.parametrize(
    ("refusal", "error", "text"),
    [
        ({"code": "NOT_FOUND", "details": {"id": "t1"}}, NotFoundError, "missing"),
        ({"code": "CONFLICT"}, StorageOperationError, "missing"),
        (
            {"code": "TOO_LARGE", "details": {"id": "m1", "size": 2_000_000, "limit": 1048576}},
            RecordTooLargeError,
            "m1",
        ),
    ],
)
async def test_refusals_map_to_errors_by_code(
    refusal: dict[str, Any], error: type[Exception], text: str
) -> None:
    d, _ = dispatcher(
        FakeHandler(ops={"update": lambda request: {"ok": False, "error": "missing", **refusal}})
    )
    with pytest.raises(error, match=text) as info:
        await d.call("update", "mastra_threads", id="t1")
    assert type(info.value) is error
    if isinstance(info.value, StorageOperationError):
        assert info.value.code == refusal["code"]
        assert info.value.op == "update" and info.value.table == "mastra_threads"


async def test_drain_repeats_until_the_handler_is_done() -> None:
    left = iter([True, True, False])
    d, t = dispatcher(
        FakeHandler(ops={"clearTable": lambda r: {"ok": True, "result": 1, "hasMore": next(left)}})
    )
    assert await d.drain("clearTable", "mastra_threads") == [1, 1, 1]
    assert t.ops().count("clearTable") == 3


async def test_drain_stops_at_its_bound_and_says_the_work_can_continue() -> None:
    d, t = dispatcher(FakeHandler(ops={"clearTable": answer(0, hasMore=True)}))
    with pytest.raises(BatchLimitError, match=r"after 7 calls.*call the operation again"):
        await d.drain("clearTable", "mastra_threads", max_calls=7)
    assert t.ops().count("clearTable") == 7


def test_a_handler_without_a_declared_limit_asks_for_a_redeploy() -> None:
    from convex_mastra import HandlerInfo

    info = HandlerInfo(name="convex-mastra", version="0.0.9", protocol=2)
    with pytest.raises(FunctionError, match="does not declare its limit 'pageItems'; redeploy"):
        info.limit("pageItems")


# -- a store on a transport of its own -------------------------------------------------------


async def test_a_store_runs_on_the_transport_it_is_given_and_closes_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CONVEX_URL", raising=False)
    monkeypatch.delenv("CONVEX_ADMIN_KEY", raising=False)
    transport = FakeTransport(FakeHandler())
    async with ConvexStore(transport=transport) as store:
        assert store.url == transport.url
        assert (await store.handler_info()).name == "convex-mastra"
        assert not store.closed
    assert transport.closed and store.closed
    assert transport.ops() == ["info"]


@pytest.mark.parametrize(
    "given",
    [
        {"deployment_url": "https://a.convex.cloud"},
        {"admin_auth_token": "key"},
        {"request_timeout": 5.0},
        {"max_concurrency": 4},
        {"allow_insecure_http": True},
    ],
)
def test_connection_settings_beside_a_transport_are_refused(given: dict[str, Any]) -> None:
    name = next(iter(given))
    with pytest.raises(ConfigurationError, match=f"transport= and {name}"):
        ConvexStore(transport=FakeTransport(FakeHandler()), **given)
