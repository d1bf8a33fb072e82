"""The local deployment through plain HTTP: every storage and cache op, auth, encodings, limits.

The op round trips run twice: against our ``convex/`` functions and against @mastra/convex 1.5.x's
own handlers served from ``tests/stock_functions`` (``--functions``), so both speak one protocol.
"""

from __future__ import annotations

import base64
import struct
from typing import Any

import orjson
import pytest
from convex import ConvexInt64
from convex.http_client import ConvexHttpClient

from convex_mastra.pytest_plugin import Deployment
from tests.conftest import RawHttp

NOW = "2026-11-23T10:00:00.000Z"
LATER = "2026-11-23T10:00:05.000Z"


@pytest.fixture(params=["ours", "stock"])
def http(request: pytest.FixtureRequest) -> RawHttp:
    name = "convex_deployment" if request.param == "ours" else "stock_deployment"
    dep: Deployment = request.getfixturevalue(name)
    return RawHttp(dep.url, dep.admin_key)


def _thread(uid: str, n: int = 0) -> dict[str, Any]:
    return {
        "id": f"t-{uid}-{n}",
        "resourceId": f"r-{uid}",
        "title": f"thread {n}",
        "metadata": {"n": n},
        "createdAt": NOW,
        "updatedAt": NOW,
    }


def _content(n: int) -> str:
    return orjson.dumps({"format": 2, "parts": [{"type": "text", "text": f"hi {n}"}]}).decode()


def _message(uid: str, n: int, thread: int = 0) -> dict[str, Any]:
    return {
        "id": f"m-{uid}-{n}",
        "thread_id": f"t-{uid}-{thread}",
        "resourceId": f"r-{uid}",
        "content": _content(n),
        "role": "user",
        "type": "v2",
        "createdAt": f"2026-11-23T10:00:{n:02d}.000Z",
    }


def test_thread_ops_round_trip(http: RawHttp, uid: str) -> None:
    thread = _thread(uid)
    assert http.storage({"op": "insert", "tableName": "mastra_threads", "record": thread})["ok"]
    loaded = http.storage(
        {"op": "load", "tableName": "mastra_threads", "keys": {"id": thread["id"]}}
    )
    assert loaded["ok"] and loaded["result"]["title"] == "thread 0"

    updated = http.storage(
        {
            "op": "updateThread",
            "tableName": "mastra_threads",
            "id": thread["id"],
            "title": "renamed",
            "metadata": {"extra": True},
            "updatedAt": LATER,
        }
    )
    assert updated["ok"]
    assert updated["result"]["title"] == "renamed"
    assert updated["result"]["metadata"] == {"n": 0, "extra": True}

    patched = http.storage(
        {"op": "patch", "tableName": "mastra_threads", "id": thread["id"], "record": {"title": "p"}}
    )
    assert patched == {"ok": True, "result": True}
    listed = http.storage(
        {
            "op": "queryTable",
            "tableName": "mastra_threads",
            "filters": [{"field": "resourceId", "value": thread["resourceId"]}],
        }
    )
    assert [row["title"] for row in listed["result"]] == ["p"]


def test_message_ops_round_trip(http: RawHttp, uid: str) -> None:
    http.storage({"op": "insert", "tableName": "mastra_threads", "record": _thread(uid)})
    messages = [_message(uid, n) for n in range(5)]
    assert http.storage({"op": "batchInsert", "tableName": "mastra_messages", "records": messages})[
        "ok"
    ]
    ids = [m["id"] for m in messages]
    many = http.storage({"op": "loadMany", "tableName": "mastra_messages", "ids": ids})
    assert sorted(row["id"] for row in many["result"]) == sorted(ids)

    query = http.storage(
        {
            "op": "queryTable",
            "tableName": "mastra_messages",
            "filters": [{"field": "thread_id", "value": f"t-{uid}-0"}],
        }
    )
    assert len(query["result"]) == 5

    http.storage({"op": "deleteMany", "tableName": "mastra_messages", "ids": ids[:2]})
    after = http.storage({"op": "loadMany", "tableName": "mastra_messages", "ids": ids})
    assert sorted(row["id"] for row in after["result"]) == sorted(ids[2:])


def test_resource_ops_round_trip(http: RawHttp, uid: str) -> None:
    request = {
        "op": "updateResource",
        "tableName": "mastra_resources",
        "resourceId": f"r-{uid}",
        "workingMemory": "# Notes\n- likes tea",
        "metadata": {"a": 1},
        "createdAt": NOW,
        "updatedAt": NOW,
    }
    created = http.storage(request)
    assert created["ok"] and created["result"]["workingMemory"].endswith("likes tea")
    merged = http.storage({**request, "metadata": {"b": 2}, "updatedAt": LATER})
    assert merged["ok"]
    loaded = http.storage(
        {"op": "load", "tableName": "mastra_resources", "keys": {"id": f"r-{uid}"}}
    )
    assert loaded["result"]["metadata"] in ({"a": 1, "b": 2}, '{"a":1,"b":2}')


def test_workflow_ops_round_trip(http: RawHttp, uid: str) -> None:
    snapshot = {
        "runId": f"run-{uid}",
        "status": "running",
        "context": {"input": {"x": 1}},
        "value": {},
    }
    record = {
        "id": f"wf-{uid}-run-{uid}",
        "workflow_name": f"wf-{uid}",
        "run_id": f"run-{uid}",
        "snapshot": orjson.dumps(snapshot).decode(),
        "createdAt": NOW,
        "updatedAt": NOW,
    }
    http.storage({"op": "insert", "tableName": "mastra_workflow_snapshot", "record": record})
    step = http.storage(
        {
            "op": "mergeWorkflowStepResult",
            "tableName": "mastra_workflow_snapshot",
            "workflowName": f"wf-{uid}",
            "runId": f"run-{uid}",
            "stepId": "step-1",
            "result": '{"status":"success","output":{"y":2}}',
            "requestContext": '{"user":"u1"}',
        }
    )
    assert step["ok"], step
    assert '"step-1"' in step["result"]
    state = http.storage(
        {
            "op": "mergeWorkflowState",
            "tableName": "mastra_workflow_snapshot",
            "workflowName": f"wf-{uid}",
            "runId": f"run-{uid}",
            "opts": '{"status":"success"}',
        }
    )
    assert state["ok"] and '"status":"success"' in state["result"]
    loaded = http.storage(
        {
            "op": "load",
            "tableName": "mastra_workflow_snapshot",
            "keys": {"workflow_name": f"wf-{uid}", "run_id": f"run-{uid}"},
        }
    )
    assert '"step-1"' in loaded["result"]["snapshot"]


def test_generic_table_and_clear(http: RawHttp, uid: str) -> None:
    table = f"custom_{uid}"
    records = [{"id": f"d{n}", "n": n} for n in range(60)]
    http.storage({"op": "batchInsert", "tableName": table, "records": records})
    http.storage({"op": "insert", "tableName": table, "record": {"id": "d0", "n": 100}})
    got = http.storage({"op": "load", "tableName": table, "keys": {"id": "d0"}})
    assert got["result"] == {"id": "d0", "n": 100}
    patched = http.storage({"op": "patch", "tableName": table, "id": "d1", "record": {"m": 1}})
    assert patched["result"] is True

    calls = 0
    while True:  # clearTable works in bounded batches; the client loops on hasMore
        calls += 1
        reply = http.storage({"op": "clearTable", "tableName": table})
        assert reply["ok"]
        if not reply.get("hasMore"):
            break
        assert calls < 100
    assert calls >= 3  # 60 rows at <= 25 per call
    left = http.storage({"op": "queryTable", "tableName": table})
    assert left["result"] == []


def test_cache_ops_round_trip(http: RawHttp, uid: str) -> None:
    prefix = f"p-{uid}:"

    def cache(request: dict[str, Any]) -> dict[str, Any]:
        reply: dict[str, Any] = http.storage(
            {"keyPrefix": prefix, **request}, function="mastra/cache:handle"
        )
        return reply

    key = f"{prefix}k"
    assert cache({"op": "set", "key": key, "value": {"a": [1, 2]}, "expiresAt": None})["ok"]
    assert cache({"op": "get", "key": key})["result"] == {"a": [1, 2]}
    assert cache({"op": "increment", "key": f"{prefix}n", "expiresAt": None})["result"] == 1
    assert cache({"op": "increment", "key": f"{prefix}n", "expiresAt": None})["result"] == 2
    lst = f"{prefix}list"
    for n in range(30):
        assert cache({"op": "listPush", "key": lst, "value": n, "expiresAt": None})["ok"]
    assert cache({"op": "listLength", "key": lst})["result"] == 30
    tail = cache({"op": "listFromTo", "key": lst, "from": -3, "to": -1})
    assert tail["result"] == [27, 28, 29]
    wrong = cache({"op": "listPush", "key": key, "value": 1, "expiresAt": None})
    assert wrong["ok"] is False and "not an array" in wrong["error"]

    while cache({"op": "delete", "key": lst}).get("hasMore"):
        pass
    assert cache({"op": "listLength", "key": lst})["result"] == 0
    while cache({"op": "clear"}).get("hasMore"):
        pass
    assert cache({"op": "get", "key": key})["result"] is None


# -- our functions only ------------------------------------------------------------------------


@pytest.fixture
def ours(convex_deployment: Deployment) -> RawHttp:
    return RawHttp(convex_deployment.url, convex_deployment.admin_key)


@pytest.mark.parametrize("function", ["mastra/storage:handle", "mastra/cache:handle"])
def test_anonymous_call_is_refused(ours: RawHttp, function: str) -> None:
    request = {"op": "load", "tableName": "mastra_threads", "keys": {"id": "x"}, "key": "x"}
    status, body = ours.post("mutation", function, request, auth=None)
    assert body["status"] == "error", (status, body)
    assert f"Could not find public function for '{function}'" in body["errorMessage"]

    status, body = ours.post("mutation", function, request, auth="Bearer not-a-real-jwt")
    assert body.get("status") != "success", (status, body)


def test_wrong_admin_key_is_refused(ours: RawHttp) -> None:
    status, body = ours.post(
        "mutation", "mastra/storage:handle", {"op": "info", "tableName": "x"}, auth="Convex wrong"
    )
    assert status in (401, 403), (status, body)
    assert body.get("status") != "success"


def test_stock_handler_is_public_ours_is_not(stock_deployment: Deployment) -> None:
    """The reason this project exists: upstream's handler answers anyone with the URL."""
    stock = RawHttp(stock_deployment.url, stock_deployment.admin_key)
    status, body = stock.post(
        "mutation",
        "mastra/storage:handle",
        {"op": "queryTable", "tableName": "mastra_threads", "limit": 1},
        auth=None,
    )
    assert status == 200 and body["status"] == "success"


def test_info_op_reports_our_handler(ours: RawHttp) -> None:
    reply = ours.storage({"op": "info", "tableName": "mastra_threads"})
    assert reply["ok"] and reply["result"]["name"] == "convex-mastra"
    assert {"pageByIndex", "count", "insert"} <= set(reply["result"]["ops"])


def test_convex_encoded_json_round_trips_int64_and_bytes(ours: RawHttp, uid: str) -> None:
    big = 2**62 + 7
    payload = b"\x00\xffbinary"
    record = {
        "id": "enc",
        "big": {"$integer": base64.b64encode(struct.pack("<q", big)).decode()},
        "blob": {"$bytes": base64.b64encode(payload).decode()},
    }
    table = f"enc_{uid}"
    _status, body = ours.post(
        "mutation",
        "mastra/storage:handle",
        {"op": "insert", "tableName": table, "record": record},
        fmt="convex_encoded_json",
    )
    assert body["status"] == "success", body

    client = ConvexHttpClient(ours.url)
    client.set_admin_auth(ours.admin_key or "")
    loaded = client.mutation(
        "mastra/storage:handle", {"op": "load", "tableName": table, "keys": {"id": "enc"}}
    )
    assert loaded["result"]["big"] == ConvexInt64(big)
    assert loaded["result"]["blob"] == payload


def test_oversized_document_is_refused_and_nothing_written(ours: RawHttp, uid: str) -> None:
    table = f"big_{uid}"
    records = [{"id": "small", "v": "x"}, {"id": "huge", "v": "x" * (1536 * 1024)}]
    _status, body = ours.post(
        "mutation",
        "mastra/storage:handle",
        {"op": "batchInsert", "tableName": table, "records": records},
    )
    refused = body["status"] == "error" or body["value"]["ok"] is False
    assert refused, body
    text = str(body)
    # Our handler refuses it itself; the deployment's own 1 MiB check would say "maximum size".
    assert "1 MiB" in text or "maximum size" in text
    left = ours.storage({"op": "loadMany", "tableName": table, "ids": ["small", "huge"]})
    assert left["result"] == []


def test_reserved_field_name_is_refused(ours: RawHttp, uid: str) -> None:
    _status, body = ours.post(
        "mutation",
        "mastra/storage:handle",
        {
            "op": "insert",
            "tableName": "mastra_threads",
            "record": {**_thread(uid), "$bad": 1},
        },
    )
    refused = body["status"] == "error" or body["value"]["ok"] is False
    assert refused, body
    got = ours.storage({"op": "load", "tableName": "mastra_threads", "keys": {"id": f"t-{uid}-0"}})
    assert got["result"] is None


def test_malformed_requests_get_error_envelopes(ours: RawHttp) -> None:
    response = ours.session.post(
        f"{ours.url}/api/mutation",
        data=b"{not json",
        headers={"Authorization": f"Convex {ours.admin_key}", "Content-Type": "application/json"},
        timeout=30,
    )
    assert 400 <= response.status_code < 500
    _status, body = ours.post("query", "no/such:function", {})
    assert body.get("status") != "success"
    unknown = ours.storage({"op": "frobnicate", "tableName": "mastra_threads"})
    assert unknown["ok"] is False and "frobnicate" in unknown["error"]
    _status, body = ours.post("mutation", "mastra/storage:handle", {"op": 5})
    assert body.get("status") == "error"
    # The deployment still serves after all of that.
    assert ours.storage({"op": "info", "tableName": "mastra_threads"})["ok"]


def test_per_call_stats_are_recorded(ours: RawHttp, uid: str) -> None:
    seq = ours.next_seq()
    ours.storage({"op": "insert", "tableName": "mastra_threads", "record": _thread(uid)})
    ours.storage({"op": "load", "tableName": "mastra_threads", "keys": {"id": f"t-{uid}-0"}})
    calls = ours.calls_since(seq)
    ops = [call.get("op") for call in calls]
    assert ops == ["insert", "load"]
    assert calls[0]["documentsWritten"] >= 1
    assert 1 <= calls[1]["documentsRead"] <= 3
    assert calls[1]["documentsWritten"] == 0


def test_a_new_connection_is_served_in_turn_under_steady_load() -> None:
    # Regression: queued transactions used to run back to back in microtasks, so while 32
    # keep-alive clients kept the queue full the server accepted no new connection; a new
    # client waited behind hundreds of calls (tens of seconds) and timed out. Served in turn,
    # it waits behind at most one queued call per busy client. Counted in calls, not seconds.
    import http.client
    import threading

    from convex_mastra import LocalDeployment

    loaders = 32
    with LocalDeployment() as local:
        host, port = "127.0.0.1", int(local.url.rsplit(":", 1)[1])
        headers = {"Content-Type": "application/json", "Authorization": f"Convex {local.admin_key}"}

        def call(conn: http.client.HTTPConnection, args: dict[str, Any]) -> int:
            body = orjson.dumps({"path": "mastra/storage:handle", "args": args})
            conn.request("POST", "/api/mutation", body, headers)
            response = conn.getresponse()
            response.read()
            return int(orjson.loads(response.getheader("Convex-Mastra-Stats") or "{}")["seq"])

        seed = http.client.HTTPConnection(host, port, timeout=60)
        records = [{"id": f"r{n}", "pad": "x" * 200} for n in range(1000)]
        call(seed, {"op": "batchInsert", "tableName": "load", "records": records})
        seed.close()
        latest = [0]
        stop = threading.Event()

        def load() -> None:
            conn = http.client.HTTPConnection(host, port, timeout=60)
            while not stop.is_set():
                seq = call(conn, {"op": "queryTable", "tableName": "load", "limit": 1000})
                latest[0] = max(latest[0], seq)
            conn.close()

        threads = [threading.Thread(target=load) for _ in range(loaders)]
        for thread in threads:
            thread.start()
        try:
            while latest[0] < 4 * loaders:  # every client has its call queued or running
                stop.wait(0.05)
            waits = []
            for _ in range(5):
                before = latest[0]
                fresh = http.client.HTTPConnection(host, port, timeout=60)
                waits.append(call(fresh, {"op": "info", "tableName": "x"}) - before)
                fresh.close()
        finally:
            stop.set()
            for thread in threads:
                thread.join()
    assert max(waits) <= 2 * loaders, f"calls answered ahead of a new connection: {waits}"
