"""Bad input, property-based: every value round-trips exactly, or is refused before any write.

Hypothesis draws metadata and message content from tests/reliability/strategies.py (``$``, ``_``,
non-ASCII, empty and prototype-named keys, deep nesting, integers past 2**53, NaN and infinities,
bytes, unpaired surrogates, long strings, thousands of keys) and hands them to threads.save,
threads.update, resources.update and messages.save. For each input the oracle (from the
documented rules, not the SDK's code) says what must happen:

- store: the call succeeds and the value reads back equal (as JSON);
- refuse: ValidationError, and no write request reached the deployment;
- too_large: RecordTooLargeError naming the record and its size, and nothing was written.

Runs are derandomized (same inputs every run); CONVEX_MASTRA_SOAK=1 tries many more.
Separate deterministic tests pin the 1 MiB boundary, including a message save that spans
several calls, and payloads too big to send at all.
"""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from convex_mastra import (
    ConvexStore,
    LocalDeployment,
    Message,
    RecordTooLargeError,
    ValidationError,
)
from tests.conftest import RawHttp
from tests.reliability.conftest import Results, SecretAudit, scaled, thread_record
from tests.reliability.strategies import (
    ONE_MIB,
    SPECIAL_KEYS,
    _nested,
    expected,
    objects,
    same,
    values,
)

T0 = datetime(2026, 6, 1, tzinfo=timezone.utc)
EXAMPLES = scaled(120, 2000)
HYPOTHESIS = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=False,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)
OUTCOMES: dict[str, Counter[str]] = {}

# Always tried, whatever Hypothesis draws: every odd key at once (raw-safe keys and not), keys
# JavaScript treats specially, and nesting right at Convex's and the SDK's limits.
_ODD = {key: n for n, key in enumerate(SPECIAL_KEYS) if "\ud800" not in key and "\udfff" not in key}
_SAFE_ODD = {"__proto__": {"x": 1}, "constructor": 1, "toString": "s", "_under": True}
NAMED = [
    _ODD,
    _SAFE_ODD,
    {"nested": {"__proto__": {"polluted": True}, "ok": 1}},
    {"list": [{"__proto__": 1}]},
    {"deep": _nested(15, 1, True)},
    {"deep": _nested(16, 1, True)},
    {"deep": _nested(198, 1, False)},
    {"deep": _nested(199, 1, False)},
    {"int": 2**53 - 1, "neg": -(2**53 - 1), "float": 0.1, "zero": -0.0},
]


def _new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def http(deployment: LocalDeployment) -> RawHttp:
    return RawHttp(deployment.url, deployment.admin_key)


async def _attempt(
    call: Any, http: RawHttp, audit: SecretAudit, record_id: str
) -> tuple[str, BaseException | None]:
    """Run ``call``; its outcome, checking that a refusal sent nothing."""
    seq = http.next_seq()
    try:
        await call
    except RecordTooLargeError as exc:
        audit.exception(exc)
        assert exc.record_id == record_id, str(exc)
        assert exc.size > ONE_MIB and f"{exc.size:,}" in str(exc)
        return "too_large", exc
    except ValidationError as exc:
        audit.exception(exc)
        # Refused before any write was sent (a domain may read first, e.g. an existing row).
        read_ops = http.storage({"op": "info"})["result"]["readOps"]
        writes = [
            c for c in http.calls_since(seq) if c.get("op") not in read_ops or c["documentsWritten"]
        ]
        assert writes == [], f"refused input reached the deployment as a write: {writes}"
        return "refuse", exc
    return "store", None


def _check(verdict: str, outcome: str, exc: BaseException | None, value: Any) -> None:
    allowed = {"store", "too_large"} if verdict == "either" else {verdict}
    assert outcome in allowed, f"expected {verdict}, got {outcome} ({exc}) for {value!r:.300}"


def _tally(name: str, outcome: str) -> None:
    OUTCOMES.setdefault(name, Counter())[outcome] += 1


def _record(results: Results, name: str) -> None:
    counts = OUTCOMES.get(name, Counter())
    results.record(
        "bad_input",
        **{
            f"{name}_tried": sum(counts.values()),
            f"{name}_stored": counts["store"],
            f"{name}_refused": counts["refuse"],
            f"{name}_too_large": counts["too_large"],
        },
    )


@HYPOTHESIS
@given(metadata=objects())
@example(metadata=NAMED[0])
@example(metadata=NAMED[1])
@example(metadata=NAMED[2])
@example(metadata=NAMED[3])
@example(metadata=NAMED[4])
@example(metadata=NAMED[5])
@example(metadata=NAMED[6])
@example(metadata=NAMED[7])
@example(metadata=NAMED[8])
async def test_thread_metadata_on_save(
    rstore: ConvexStore, http: RawHttp, audit: SecretAudit, metadata: dict[Any, Any]
) -> None:
    thread_id = _new_id("t")
    verdict = expected(metadata, overhead=300)
    outcome, exc = await _attempt(
        rstore.threads.save(thread_record(thread_id, "bad-input", T0, metadata=metadata)),
        http,
        audit,
        thread_id,
    )
    _check(verdict, outcome, exc, metadata)
    _tally("thread_save", outcome)
    stored = await rstore.threads.get(thread_id)
    if outcome == "store":
        assert stored is not None and same(stored.metadata, metadata), (stored, metadata)
    else:
        assert stored is None


@HYPOTHESIS
@given(metadata=objects())
@example(metadata=NAMED[0])
@example(metadata=NAMED[1])
@example(metadata=NAMED[2])
@example(metadata=NAMED[3])
@example(metadata=NAMED[4])
@example(metadata=NAMED[5])
@example(metadata=NAMED[6])
@example(metadata=NAMED[7])
@example(metadata=NAMED[8])
async def test_thread_metadata_on_update(
    rstore: ConvexStore, http: RawHttp, audit: SecretAudit, metadata: dict[Any, Any]
) -> None:
    thread_id = _new_id("u")
    base = {"base": 1, "$base": [1, 2]}
    await rstore.threads.save(thread_record(thread_id, "bad-input", T0, metadata=base))
    before = await rstore.threads.get(thread_id)
    verdict = expected(metadata, overhead=300)  # the merge adds a few bytes of `base`
    outcome, exc = await _attempt(
        rstore.threads.update(thread_id, metadata=metadata), http, audit, thread_id
    )
    _check(verdict, outcome, exc, metadata)
    _tally("thread_update", outcome)
    stored = await rstore.threads.get(thread_id)
    assert stored is not None
    if outcome == "store":
        assert same(stored.metadata, {**base, **metadata}), (stored.metadata, metadata)
    else:
        assert stored == before  # nothing changed, not even updatedAt


@HYPOTHESIS
@given(metadata=objects(), working_memory=st.one_of(st.none(), st.text(max_size=50)))
@example(metadata=NAMED[0], working_memory=None)
@example(metadata=NAMED[1], working_memory=None)
@example(metadata=NAMED[2], working_memory=None)
@example(metadata=NAMED[3], working_memory=None)
@example(metadata=NAMED[4], working_memory=None)
@example(metadata=NAMED[5], working_memory=None)
@example(metadata=NAMED[6], working_memory=None)
@example(metadata=NAMED[7], working_memory=None)
@example(metadata=NAMED[8], working_memory=None)
async def test_resource_metadata_on_update(
    rstore: ConvexStore,
    http: RawHttp,
    audit: SecretAudit,
    metadata: dict[Any, Any],
    working_memory: str | None,
) -> None:
    resource_id = _new_id("r")
    verdict = expected(metadata, overhead=300 + len(working_memory or "") * 4)
    outcome, exc = await _attempt(
        rstore.resources.update(resource_id, working_memory=working_memory, metadata=metadata),
        http,
        audit,
        resource_id,
    )
    _check(verdict, outcome, exc, metadata)
    _tally("resource_update", outcome)
    stored = await rstore.resources.get(resource_id)
    if outcome == "store":
        assert stored is not None and same(stored.metadata, metadata)
        assert stored.working_memory == working_memory
    else:
        assert stored is None


_EXTRA_KEYS = st.sampled_from(
    ["toolInvocations", "reasoning", "$schema", "_private", "ключ", "providerMetadata", ""]
)
contents = st.fixed_dictionaries(
    {"format": st.just(2), "parts": st.lists(values(), max_size=4)},
    optional={"metadata": objects(), "content": st.one_of(st.none(), st.text(max_size=30))},
).flatmap(
    lambda base: st.dictionaries(_EXTRA_KEYS, values(), max_size=3).map(
        lambda extra: {**extra, **base}
    )
)


def _stored_content(message: Message, given: dict[str, Any]) -> dict[str, Any]:
    dumped = message.content.model_dump(by_alias=True)
    for declared in ("content", "metadata"):  # declared fields default to None when absent
        if declared not in given and dumped.get(declared) is None:
            dumped.pop(declared, None)
    return dumped


@HYPOTHESIS
@given(content=contents)
@example(content={"format": 2, "parts": [NAMED[0]], "metadata": NAMED[0]})
@example(content={"format": 2, "parts": [NAMED[1]], "metadata": NAMED[1]})
@example(content={"format": 2, "parts": [NAMED[2]], "metadata": NAMED[2]})
@example(content={"format": 2, "parts": [NAMED[3]], "metadata": NAMED[3]})
@example(content={"format": 2, "parts": [NAMED[4]], "metadata": NAMED[4]})
@example(content={"format": 2, "parts": [NAMED[5]], "metadata": NAMED[5]})
@example(content={"format": 2, "parts": [NAMED[6]], "metadata": NAMED[6]})
@example(content={"format": 2, "parts": [NAMED[7]], "metadata": NAMED[7]})
@example(content={"format": 2, "parts": [NAMED[8]], "metadata": NAMED[8]})
@example(content={"format": 2, "parts": [], "toolInvocations": None, "content": None})
async def test_message_content_on_save(
    rstore: ConvexStore, http: RawHttp, audit: SecretAudit, content: dict[str, Any]
) -> None:
    thread_id = _new_id("mt")
    await rstore.threads.save(thread_record(thread_id, "bad-input", T0))
    before = await rstore.threads.get(thread_id)
    good_id, odd_id = _new_id("good"), _new_id("odd")
    batch = [
        {
            "id": good_id,
            "thread_id": thread_id,
            "resource_id": "bad-input",
            "role": "user",
            "created_at": T0,
            "content": {"format": 2, "parts": [{"type": "text", "text": "fine"}]},
        },
        {
            "id": odd_id,
            "thread_id": thread_id,
            "resource_id": "bad-input",
            "role": "assistant",
            "created_at": T0 + timedelta(seconds=1),
            "content": content,
        },
    ]
    verdict = expected(content, overhead=300)
    outcome, exc = await _attempt(rstore.messages.save(batch), http, audit, odd_id)
    _check(verdict, outcome, exc, content)
    _tally("message_save", outcome)
    found = {m.id: m for m in await rstore.messages.get_many([good_id, odd_id])}
    if outcome == "store":
        assert set(found) == {good_id, odd_id}
        stored = _stored_content(found[odd_id], content)
        assert same(stored, content), (stored, content)
    else:
        assert found == {}, "a refused save wrote part of its batch"
        assert await rstore.threads.get(thread_id) == before


def test_bad_input_figures(results: Results) -> None:
    # Runs after the property tests of this module (same file, later position).
    for name in ("thread_save", "thread_update", "resource_update", "message_save"):
        _record(results, name)
    results.record("bad_input", examples_per_property=EXAMPLES)


# -- deterministic edges --------------------------------------------------------------------


def _message(n: int, thread_id: str, text: str = "small") -> dict[str, Any]:
    return {
        "id": f"{thread_id}-m{n:05d}",
        "thread_id": thread_id,
        "resource_id": "big",
        "role": "user",
        "created_at": T0 + timedelta(milliseconds=n),
        "content": {"format": 2, "parts": [{"type": "text", "text": text}]},
    }


def _convex_size(row: dict[str, str]) -> int:
    """A stored message's size as Convex counts it (getDocumentSize, system fields included),
    with the number the handler stores beside the row (writeSeq: its name, a tag, 8 bytes)."""
    stored_beside = len("writeSeq") + 1 + 9
    return 2 + sum(len(k) + 3 + len(v.encode()) for k, v in row.items()) + 38 + 23 + stored_beside


@pytest.mark.parametrize("over", [-1, 0, 1, 60, 100])
async def test_the_1_mib_boundary_in_a_save_of_several_calls(
    rstore: ConvexStore, audit: SecretAudit, results: Results, over: int
) -> None:
    # 1,000 small messages fill the first call; the big one goes in the second. Sized to land
    # `over` bytes past Convex's limit as Convex counts a document.
    from convex_mastra._domains.messages import message_row

    thread_id = _new_id("edge")
    await rstore.threads.save(thread_record(thread_id, "big", T0))
    probe = message_row(Message.model_validate(_message(1000, thread_id, "")), 0)
    text = "x" * (ONE_MIB + over - _convex_size(probe))
    batch = [_message(n, thread_id) for n in range(1000)] + [_message(1000, thread_id, text)]
    big_id = batch[-1]["id"]
    try:
        await rstore.messages.save(batch)
    except RecordTooLargeError as exc:
        audit.exception(exc)
        assert over > 0, f"a record of exactly the limit minus {-over} bytes was refused"
        assert exc.record_id == big_id and exc.size == ONE_MIB + over, str(exc)
        assert await rstore.messages.get_many([m["id"] for m in batch[:3]]) == []
        page = await rstore.messages.list(thread_id, per_page=1)
        assert page.total == 0, f"{page.total} messages of a refused save were written"
        outcome = "refused"
    else:
        assert over <= 0, f"a record {over} bytes over the limit was stored"
        assert (await rstore.messages.list(thread_id, per_page=1)).total == 1001
        outcome = "stored"
    results.record(
        "bad_input", **{f"boundary_{'plus' if over >= 0 else 'minus'}_{abs(over)}": outcome}
    )


HUGE = 17 * ONE_MIB  # past Convex's 16 MiB argument limit: cannot even be sent


@pytest.mark.parametrize(
    "where", ["thread_save", "thread_update", "resource_update", "resource_save", "message_save"]
)
async def test_payloads_too_big_to_send(
    rstore: ConvexStore, audit: SecretAudit, results: Results, where: str
) -> None:
    record_id = _new_id(where)
    thread_id = _new_id("host")
    await rstore.threads.save(thread_record(thread_id, "big", T0, metadata={"keep": True}))
    big = {"blob": "x" * HUGE}
    calls = {
        "thread_save": lambda: rstore.threads.save(
            thread_record(record_id, "big", T0, metadata=big)
        ),
        "thread_update": lambda: rstore.threads.update(thread_id, metadata=big),
        "resource_update": lambda: rstore.resources.update(record_id, metadata=big),
        "resource_save": lambda: rstore.resources.save(
            {"id": record_id, "created_at": T0, "updated_at": T0, "working_memory": "x" * HUGE}
        ),
        "message_save": lambda: rstore.messages.save(
            [{**_message(0, thread_id, "x" * HUGE), "id": record_id}]
        ),
    }
    expected_id = thread_id if where == "thread_update" else record_id
    with audit.raises(RecordTooLargeError) as info:
        await calls[where]()
    error = info.value
    assert isinstance(error, RecordTooLargeError)
    assert error.record_id == expected_id and error.size > HUGE
    assert (await rstore.threads.get(thread_id)).metadata == {"keep": True}  # type: ignore[union-attr]
    assert await rstore.threads.get(record_id) is None
    assert await rstore.resources.get(record_id) is None
    results.add("bad_input", huge_payloads_refused=1)
