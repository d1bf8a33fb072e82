"""Hostile input: ids and table names built to escape, confuse or crash; none may.

- Ids with path separators, quotes, query syntax, control characters, prototype names, 10,000
  characters, Unicode confusables (fullwidth letters, a Cyrillic "a", a non-ASCII hyphen,
  decomposed accents, bidi overrides, zero-width characters) go through threads, messages and
  resources. Each is stored and found under exactly that id, or refused with ValidationError;
  canary records under the look-alike plain ids never change.
- Logical table names of the same kind go through the storage protocol (as @mastra/convex's
  TypeScript client sends it) and through ``store.documents``: every name keeps its own records,
  typed tables are not reached, and clearing one name clears nothing else.
- Malformed requests at the HTTP level (bad JSON, deep nesting, oversized bodies, odd function
  paths and ops) get errors, and the same deployment process keeps serving throughout.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import anyio
import requests

from convex_mastra import (
    ConvexServerCache,
    ConvexStore,
    LocalDeployment,
    StorageOperationError,
    ValidationError,
)
from tests.reliability.conftest import Results, SecretAudit

T0 = datetime(2026, 8, 1, tzinfo=timezone.utc)

HOSTILE = [
    "../x",
    "..\\x",
    "/",
    "a/b/../../c",
    "mastra_threads",
    "mastra_messages:handle",
    "'",
    '"',
    "`",
    "' OR 1=1 --",
    "'; DROP TABLE mastra_threads; --",
    '{"$ne": null}',
    "${id}",
    "{{id}}",
    "$id",
    "$",
    "_id",
    "__proto__",
    "constructor",
    "toString",
    "*",
    "%",
    "%2e%2e%2f",
    "\\",
    "a\x00b",
    "\x00",
    "\x7f",
    "line\nbreak",
    " lead",
    "trail ",
    "x" * 10_000,
    "\uff41\uff44\uff4d\uff49\uff4e",  # fullwidth "admin"
    "\u0430dmin",  # Cyrillic a, then "dmin"
    "t\u20101",  # hyphen U+2010, looks like "t-1"
    "e\u0301",  # e + combining acute, looks like "é"
    "\u202etxt.exe",
    "a\u200db",
    "İ",
    "ß",
    "🔑",
]
BLANK = ["", " ", "\n", "\t", "\u3000"]
"""Ids that are blank: refused before anything is sent."""
CANARIES = ["admin", "t-1", "é", "ab", "x", "i", "ss", "txt.exe", "mastra"]
"""Plain ids that the hostile ones imitate or might collide with."""


async def _canary_state(store: ConvexStore) -> list[Any]:
    state: list[Any] = []
    for cid in CANARIES:
        state.append(await store.threads.get(f"c-{cid}"))
        state.append(await store.threads.get(cid))
        state.append(await store.resources.get(cid))
    state.append(await store.messages.get_many([f"c-{cid}" for cid in CANARIES]))
    state.append((await store.threads.list(resource_id="canary", per_page=None)).total)
    return state


async def _plant_canaries(store: ConvexStore) -> None:
    for cid in CANARIES:
        for thread_id in (cid, f"c-{cid}"):
            await store.threads.save(
                {
                    "id": thread_id,
                    "resource_id": "canary",
                    "title": cid,
                    "created_at": T0,
                    "updated_at": T0,
                    "metadata": {"canary": cid},
                }
            )
        await store.resources.update(cid, working_memory=f"canary {cid}", metadata={"c": cid})
    await store.messages.save(
        [
            {
                "id": f"c-{cid}",
                "thread_id": f"c-{cid}",
                "resource_id": "canary",
                "role": "user",
                "created_at": T0,
                "content": {"format": 2, "parts": [{"type": "text", "text": cid}]},
            }
            for cid in CANARIES
        ]
    )


async def test_hostile_ids_stay_in_their_records(
    rstore: ConvexStore, deployment: LocalDeployment, results: Results, audit: SecretAudit
) -> None:
    pid = deployment.pid
    await _plant_canaries(rstore)
    before = await _canary_state(rstore)
    accepted = refused = 0
    for n, hostile in enumerate(HOSTILE + BLANK):
        try:
            await rstore.threads.save(
                {
                    "id": hostile,
                    "resource_id": hostile,
                    "title": hostile,
                    "created_at": T0,
                    "updated_at": T0,
                    "metadata": {"id": hostile},
                }
            )
        except ValidationError as exc:
            audit.exception(exc)
            assert hostile.strip() == "", f"{hostile!r} refused: {exc}"
            refused += 1
            for call in (
                rstore.threads.get(hostile),
                rstore.resources.update(hostile, working_memory="x"),
                rstore.resources.save({"id": hostile, "created_at": T0, "updated_at": T0}),
                rstore.messages.get_many([hostile]),
                rstore.messages.save(
                    [
                        {
                            "id": hostile,
                            "thread_id": "c-x",
                            "resource_id": "canary",
                            "role": "user",
                            "created_at": T0,
                            "content": {"format": 2, "parts": []},
                        }
                    ]
                ),
            ):
                with audit.raises(ValidationError):
                    await call
            continue
        accepted += 1
        thread = await rstore.threads.get(hostile)
        assert thread is not None and thread.id == hostile and thread.title == hostile
        assert thread.metadata == {"id": hostile}
        listed = await rstore.threads.list(resource_id=hostile, per_page=None)
        assert [t.id for t in listed.items] == [hostile]

        await rstore.messages.save(
            [
                {
                    "id": hostile,
                    "thread_id": hostile,
                    "resource_id": hostile,
                    "role": "user",
                    "created_at": T0 + timedelta(seconds=n),
                    "content": {"format": 2, "parts": [{"type": "text", "text": hostile}]},
                }
            ]
        )
        [message] = await rstore.messages.get_many([hostile])
        assert message.id == hostile and message.thread_id == hostile
        assert [m.id for m in (await rstore.messages.list(hostile, per_page=None)).items] == [
            hostile
        ]
        resource = await rstore.resources.update(hostile, working_memory=hostile)
        assert resource.id == hostile and resource.working_memory == hostile

        await rstore.messages.delete([hostile])
        await rstore.threads.delete(hostile)
        assert await rstore.threads.get(hostile) is None
        assert await rstore.messages.get_many([hostile]) == []
        assert await _canary_state(rstore) == before, f"{hostile!r} changed a canary"

    assert deployment.pid == pid and deployment.running
    results.record(
        "hostile",
        ids_tried=len(HOSTILE) + len(BLANK),
        ids_stored_and_found_exactly=accepted,
        ids_refused_as_blank=refused,
        canary_records=len(CANARIES) * 4,
        canaries_changed=0,
    )


TABLES = [
    "../mastra_threads",
    "mastra_threads/../x",
    "mastra_threads ",
    " mastra_threads",
    "MASTRA_THREADS",
    "mastr\u0430_threads",  # with a Cyrillic a
    "mastra_documents",
    "mastra_counters",
    "mastra_cache",
    "_storage",
    "_scheduled_functions",
    "constructor",
    "__proto__",
    "toString",
    "hasOwnProperty",
    "valueOf",
    "",
    " ",
    "x" * 10_000,
    'x"; DROP TABLE mastra_threads; --',
    "\x00",
    "a/b\\c",
    "🔑",
    "$table",
    "{{table}}",
]


async def test_hostile_table_names_keep_to_themselves(
    rstore: ConvexStore, deployment: LocalDeployment, results: Results, audit: SecretAudit
) -> None:
    pid = deployment.pid
    await _plant_canaries(rstore)
    before = await _canary_state(rstore)
    call = rstore._dispatcher.call
    # Through the protocol, as any client of the handler sends it.
    for name in TABLES:
        await call("insert", name, record={"id": "same", "table": name})
        await call("batchInsert", name, records=[{"id": "second", "n": 2}, {"id": "third"}])
    for name in TABLES:
        loaded = await call("load", name, keys={"id": "same"})
        assert loaded == {"id": "same", "table": name}
        rows = await call("queryTable", name)
        assert sorted(r["id"] for r in rows) == ["same", "second", "third"], name
        assert await call("patch", name, id="second", record={"n": 3}) is True
    assert await _canary_state(rstore) == before
    # Clearing one name leaves every other name's records alone.
    for i, name in enumerate(TABLES):
        await rstore._dispatcher.drain("clearTable", name)
        assert await call("queryTable", name) == []
        for other in TABLES[i + 1 :]:
            assert len(await call("queryTable", other)) == 3, f"clearing {name!r} hit {other!r}"
    assert await _canary_state(rstore) == before

    # Through store.documents, which also refuses names of typed tables.
    documents_ok = documents_refused = 0
    for name in TABLES:
        try:
            await rstore.documents.insert(name, {"id": "doc", "name": name})
        except ValidationError as exc:
            audit.exception(exc)
            documents_refused += 1
            continue
        assert await rstore.documents.get(name, id="doc") == {"id": "doc", "name": name}
        await rstore.documents.clear(name)
        documents_ok += 1
    assert await _canary_state(rstore) == before
    assert deployment.pid == pid and deployment.running
    results.record(
        "hostile",
        table_names_tried=len(TABLES),
        table_names_isolated=len(TABLES),
        documents_domain_names_used=documents_ok,
        documents_domain_names_refused=documents_refused,
    )


def _raw(deployment: LocalDeployment, path: str, body: bytes, **headers: str) -> str:
    """How the deployment answered: ``4xx``, ``5xx``, ``function error``, ``handler refused``
    (the handler's ``{ok: false}``) or ``success``."""
    response = requests.post(
        f"{deployment.url}{path}",
        data=body,
        headers={
            "Content-Type": "application/json",
            "Authorization": f"Convex {deployment.admin_key}",
            **headers,
        },
        timeout=120,
    )
    if response.status_code != 200:
        return f"{response.status_code // 100}xx"
    answer = response.json()
    if answer.get("status") == "error":
        return "function error"
    value = answer.get("value")
    return "handler refused" if isinstance(value, dict) and value.get("ok") is False else "success"


def _nested_json(levels: int) -> bytes:
    return (
        b'{"path":"mastra/storage:handle","args":{"op":"info","x":'
        + b"[" * levels
        + (b"]" * levels)
        + b"}}"
    )


async def test_malformed_requests_do_not_take_the_deployment_down(
    rstore: ConvexStore, deployment: LocalDeployment, results: Results, audit: SecretAudit
) -> None:
    pid = deployment.pid
    storage = b'"mastra/storage:handle"'
    requests_tried = [
        ("/api/mutation", b"{not json"),
        ("/api/mutation", b""),
        ("/api/mutation", b"[]"),
        ("/api/mutation", b'{"path": 5, "args": {}}'),
        ("/api/mutation", b'{"path":' + storage + b',"args":[{},{}]}'),
        ("/api/mutation", b'{"path":' + storage + b',"args":"op"}'),
        ("/api/mutation", b'{"path":' + storage + b',"args":{"op":5}}'),
        ("/api/mutation", b'{"path":' + storage + b',"args":{"op":"__proto__","tableName":"x"}}'),
        ("/api/mutation", b'{"path":' + storage + b',"args":{"op":"constructor"}}'),
        ("/api/mutation", b'{"path":' + storage + b',"args":{"op":"insert","tableName":{}}}'),
        (
            "/api/mutation",
            b'{"path":' + storage + b',"args":{"op":"insert","tableName":"t",'
            b'"record":{"$integer":"AAAA"}}}',
        ),
        (
            "/api/mutation",
            b'{"path":' + storage + b',"args":{"op":"loadMany","tableName":"t",'
            b'"ids":' + orjson_ids(5000) + b"}}",
        ),
        ("/api/mutation", _nested_json(100)),
        ("/api/mutation", _nested_json(100_000)),
        (
            "/api/mutation",
            b'{"path":'
            + storage
            + b',"args":{"op":"info","x":"'
            + b"x" * (17 * 1024 * 1024)
            + b'"}}',
        ),
        ("/api/mutation", b'{"path":"../../etc/passwd:x","args":{}}'),
        ("/api/mutation", b'{"path":"mastra/storage/../public:storage","args":{"op":"info"}}'),
        ("/api/mutation", b'{"path":"mastra/storage:handle\\u0000","args":{"op":"info"}}'),
        ("/api/query", b'{"path":' + storage + b',"args":{"op":"clearTable","tableName":"t"}}'),
        ("/api/action", b'{"path":' + storage + b',"args":{"op":"info"}}'),
        ("/api/run/..%2F..%2Fmastra/storage/handle", b'{"args":{"op":"info"}}'),
        ("/api/run/mastra/storage/%00", b'{"args":{"op":"info"}}'),
    ]

    def send_all() -> list[str]:
        statuses = []
        for path, body in requests_tried:
            statuses.append(_raw(deployment, path, body))
            assert deployment.running and deployment.pid == pid, f"{path} {body[:80]!r} killed it"
            assert requests.get(f"{deployment.url}/version", timeout=30).status_code == 200
        statuses.append(_raw(deployment, "/api/mutation", b"{}", **{"Content-Type": "text/plain"}))
        return statuses

    statuses = await anyio.to_thread.run_sync(send_all)
    # Every one refused: by the HTTP layer, the argument validator, or the handler's {ok: false}.
    assert "5xx" not in statuses, statuses
    assert statuses.count("success") == 0, statuses
    with audit.raises(StorageOperationError):
        await rstore._dispatcher.call("frobnicate", "mastra_threads")
    assert (await rstore.handler_info()).name == "convex-mastra"
    assert deployment.pid == pid
    results.record(
        "hostile",
        malformed_requests_tried=len(statuses),
        malformed_requests_refused_4xx=statuses.count("4xx"),
        malformed_requests_function_error=statuses.count("function error"),
        malformed_requests_handler_refused=statuses.count("handler refused"),
        malformed_requests_succeeded=statuses.count("success"),
        server_errors=statuses.count("5xx"),
        deployment_restarts=0,
    )


def orjson_ids(n: int) -> bytes:
    return b"[" + b",".join(b'"id%d"' % i for i in range(n)) + b"]"


async def test_hostile_cache_keys_keep_to_themselves(
    deployment: LocalDeployment, results: Results, audit: SecretAudit
) -> None:
    async with ConvexServerCache(
        deployment.url, deployment.admin_key, key_prefix="hostile:", ttl=0
    ) as cache:
        await cache.set("canary", {"canary": True})
        kept: dict[str, dict[str, Any]] = {}
        refused = 0
        for n, key in enumerate(HOSTILE + BLANK):
            try:
                await cache.set(key, {"n": n, "key": key})
            except ValidationError as exc:
                audit.exception(exc)
                refused += 1
                continue
            kept[key] = {"n": n, "key": key}
            assert await cache.get(key) == kept[key]
            await cache.list_push(f"list:{key}", n)
            assert await cache.list_range(f"list:{key}", 0) == [n]
        for key, value in kept.items():  # no key overwrote another
            assert await cache.get(key) == value, key
        assert await cache.get("canary") == {"canary": True}
    results.record(
        "hostile",
        cache_keys_tried=len(HOSTILE) + len(BLANK),
        cache_keys_stored=len(kept),
        cache_keys_refused=refused,
    )
