"""ConvexSession under the OpenAI Agents SDK's own Runner, on the local deployment."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
from agents import Runner
from agents.memory import Session
from hypothesis import given, settings
from hypothesis import strategies as st

from convex_mastra import ConvexStore, Message, ValidationError
from convex_mastra.integrations.openai_agents import ConvexSession, item_content, message_items
from convex_mastra.pytest_plugin import Deployment
from tests.conftest import RawHttp
from tests.integrations.helpers import listed_by_mastra, turn_in_new_process
from tests.integrations.scripted_agents import ScriptedModel, agent, call, say


async def test_a_runner_conversation_with_a_tool_call_resumes_in_a_new_process(
    store: ConvexStore, convex_deployment: Deployment, uid: str
) -> None:
    session_id, resource_id = f"chat-{uid}", f"user-{uid}"
    session = ConvexSession(session_id, store, resource_id=resource_id, title="weather")
    assert isinstance(session, Session)  # the SDK's runtime-checkable protocol
    model = ScriptedModel(
        [[call("get_weather", '{"city":"Paris"}', "call_1")], [say("It is sunny in Paris.")]]
    )
    result = await Runner.run(agent(model), "Weather in Paris?", session=session)
    assert result.final_output == "It is sunny in Paris."
    items = await session.get_items()
    assert [item.get("type") for item in items] == [
        None,  # the user's input, as the Runner saved it
        "function_call",
        "function_call_output",
        "message",
    ]
    assert items[0] == {"role": "user", "content": "Weather in Paris?"}
    assert items[2]["output"] == "sunny in Paris"

    # A second turn in another process, from nothing but the session id.
    second = await turn_in_new_process(
        "scripted_agents",
        convex_deployment,
        session_id,
        resource_id,
        "What did I ask?",
        "You asked about the weather in Paris.",
    )
    assert second["final"] == "You asked about the weather in Paris."
    # The model of the new process was given the whole history, then the new question.
    assert second["input"][:4] == items
    assert second["input"][4] == {"role": "user", "content": "What did I ask?"}
    assert len(await session.get_items()) == 6

    # What a Mastra TypeScript app lists: the conversation, text and tool invocation.
    roles, texts, tools = await listed_by_mastra(convex_deployment, session_id)
    assert roles == ["user"] + ["assistant"] * 3 + ["user", "assistant"]
    assert texts == [
        "Weather in Paris?",
        "It is sunny in Paris.",
        "What did I ask?",
        "You asked about the weather in Paris.",
    ]
    assert [(t["state"], t["toolName"], t["toolCallId"]) for t in tools] == [
        ("call", "get_weather", "call_1"),
        ("result", "get_weather", "call_1"),
    ]
    assert tools[0]["args"] == {"city": "Paris"}
    thread = await store.threads.get(session_id)
    assert thread is not None and (thread.resource_id, thread.title) == (resource_id, "weather")


async def test_limit_reads_the_newest_messages_not_the_thread(
    store: ConvexStore, convex_deployment: Deployment, uid: str
) -> None:
    session = ConvexSession(f"long-{uid}", store, resource_id=f"user-{uid}")
    await session.add_items([{"role": "user", "content": f"item {n}"} for n in range(300)])
    raw = RawHttp(convex_deployment.url, convex_deployment.admin_key)
    with raw.session:
        seq = raw.next_seq()
        newest = await session.get_items(limit=3)
        read = sum(int(c.get("documentsRead", 0)) for c in raw.calls_since(seq))
    assert newest == [{"role": "user", "content": f"item {n}"} for n in (297, 298, 299)]
    assert read < 30, read  # the page and its index lookups, not 300 messages
    assert await session.get_items(limit=0) == []
    everything = await session.get_items()
    assert everything == [{"role": "user", "content": f"item {n}"} for n in range(300)]


async def test_session_settings_limit_applies_when_the_runner_passes_none(
    store: ConvexStore, uid: str
) -> None:
    from agents import SessionSettings

    session = ConvexSession(
        f"set-{uid}", store, resource_id=f"user-{uid}", session_settings=SessionSettings(limit=2)
    )
    await session.add_items([{"role": "user", "content": str(n)} for n in range(5)])
    assert [i["content"] for i in await session.get_items()] == ["3", "4"]
    assert [i["content"] for i in await session.get_items(limit=4)] == ["1", "2", "3", "4"]


async def test_concurrent_pops_never_return_the_same_item(store: ConvexStore, uid: str) -> None:
    session = ConvexSession(f"pop-{uid}", store, resource_id=f"user-{uid}")
    await session.add_items([{"role": "user", "content": f"item {n}"} for n in range(20)])
    assert await session.pop_item() == {"role": "user", "content": "item 19"}
    popped = await asyncio.gather(*(session.pop_item() for _ in range(25)))
    got = [item["content"] for item in popped if item is not None]
    assert sorted(got) == sorted(f"item {n}" for n in range(19))
    assert popped.count(None) == 6
    assert await session.get_items() == []


async def test_clear_deletes_the_thread_and_a_later_add_starts_again(
    store: ConvexStore, uid: str
) -> None:
    session = ConvexSession(f"clear-{uid}", store, resource_id=f"user-{uid}")
    await session.add_items([{"role": "user", "content": "hello"}])
    await session.clear_session()
    assert await store.threads.get(f"clear-{uid}") is None
    assert await session.get_items() == []
    assert await session.pop_item() is None
    await session.add_items([{"role": "user", "content": "again"}])
    assert await session.get_items() == [{"role": "user", "content": "again"}]


async def test_a_thread_of_another_resource_is_refused_before_anything_is_written(
    store: ConvexStore, uid: str
) -> None:
    await ConvexSession(f"own-{uid}", store, resource_id="alice").add_items(
        [{"role": "user", "content": "mine"}]
    )
    intruder = ConvexSession(f"own-{uid}", store, resource_id="mallory")
    with pytest.raises(ValidationError, match="belongs to resource 'alice'"):
        await intruder.add_items([{"role": "user", "content": "theirs"}])
    assert len(await intruder.get_items()) == 1


async def test_messages_written_by_a_mastra_app_read_as_the_items_they_show(
    store: ConvexStore, uid: str
) -> None:
    session_id = f"mastra-{uid}"
    await store.threads.save({"id": session_id, "resourceId": "u", "title": ""})
    invocation = {"toolCallId": "c1", "toolName": "lookup", "args": {"q": "x"}}
    await store.messages.save(
        [
            {
                "id": f"a-{uid}",
                "threadId": session_id,
                "resourceId": "u",
                "role": "user",
                "createdAt": "2026-01-01T00:00:00.000Z",
                "content": "hi",
            },
            {
                "id": f"b-{uid}",
                "threadId": session_id,
                "resourceId": "u",
                "role": "assistant",
                "createdAt": "2026-01-01T00:00:01.000Z",
                "content": {
                    "format": 2,
                    "parts": [
                        {"type": "text", "text": "Looking."},
                        {
                            "type": "tool-invocation",
                            "toolInvocation": {**invocation, "state": "result", "result": {"n": 1}},
                        },
                        {"type": "text", "text": "Found one."},
                    ],
                },
            },
        ]
    )
    session = ConvexSession(session_id, store, resource_id="u")
    assert await session.get_items() == [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "Looking."},
        {"type": "function_call", "call_id": "c1", "name": "lookup", "arguments": '{"q":"x"}'},
        {"type": "function_call_output", "call_id": "c1", "output": '{"n":1}'},
        {"role": "assistant", "content": "Found one."},
    ]
    # A later add goes after them, whatever the clock says.
    await session.add_items([{"role": "user", "content": "next"}])
    assert (await session.get_items(limit=1)) == [{"role": "user", "content": "next"}]


async def test_every_kind_of_item_reads_back_equal_through_the_deployment(
    store: ConvexStore, uid: str
) -> None:
    session = ConvexSession(f"kinds-{uid}", store, resource_id=f"user-{uid}")
    items: list[dict[str, Any]] = [
        {"role": "system", "content": "be brief"},
        {"role": "developer", "content": "no tables"},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]},
        {
            "id": "rs_1",
            "type": "reasoning",
            "summary": [{"type": "summary_text", "text": "thinking"}],
        },
        {"type": "function_call", "call_id": "c", "name": "f", "arguments": "not json"},
        {
            "type": "function_call_output",
            "call_id": "c",
            "output": [{"type": "input_text", "text": "x"}],
        },
        {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "status": "completed",
            "content": [
                {"type": "output_text", "text": "ok", "annotations": [], "logprobs": None},
                {"type": "refusal", "refusal": "no"},
            ],
        },
        {
            "type": "web_search_call",
            "id": "ws_1",
            "status": "completed",
            "action": {"type": "search"},
        },
        {"type": "item_reference", "id": "ref_1"},
    ]
    await session.add_items(items)
    assert await session.get_items() == items


# -- the mapping alone -------------------------------------------------------------------------

json_scalars = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)
texts = st.text(max_size=40)
items = st.one_of(
    st.fixed_dictionaries(
        {"role": st.sampled_from(["user", "assistant", "system", "developer"]), "content": texts}
    ),
    st.fixed_dictionaries(
        {
            "type": st.just("message"),
            "role": st.sampled_from(["user", "assistant"]),
            "content": st.lists(
                st.fixed_dictionaries(
                    {"type": st.sampled_from(["input_text", "output_text"]), "text": texts}
                ),
                max_size=3,
            ),
        },
        optional={"id": texts, "status": st.just("completed")},
    ),
    st.fixed_dictionaries(
        {
            "type": st.just("function_call"),
            "call_id": texts,
            "name": texts,
            "arguments": texts | json_values.map(lambda v: orjson.dumps(v).decode()),
        }
    ),
    st.fixed_dictionaries(
        {"type": st.just("function_call_output"), "call_id": texts, "output": texts}
    ),
    st.dictionaries(st.text(min_size=1, max_size=8), json_values, max_size=4).map(
        lambda extra: {**extra, "type": "custom_tool_call"}
    ),
)


@settings(max_examples=300, deadline=None)
@given(item=items)
def test_an_item_reads_back_equal_as_json(item: dict[str, Any]) -> None:
    role, content = item_content(item)
    stored = {"id": "m", "role": role, "createdAt": "2026-01-01T00:00:00.000Z", "content": content}
    # Through JSON, as the deployment keeps it.
    message = Message.model_validate(orjson.loads(orjson.dumps(stored)))
    assert message_items(message) == [orjson.loads(orjson.dumps(item))]
    for part in message.content.parts:
        assert part["type"] in ("text", "tool-invocation", "reasoning")


async def test_a_session_works_on_the_stock_handler_too(
    any_deployment: Deployment, uid: str
) -> None:
    async with ConvexStore(any_deployment.url, any_deployment.admin_key) as store:
        session = ConvexSession(f"both-{uid}", store, resource_id=f"user-{uid}")
        await session.add_items([{"role": "user", "content": f"item {n}"} for n in range(5)])
        await session.add_items(
            [{"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"}]
        )
        assert [i.get("content") for i in await session.get_items(limit=2)] == ["item 4", None]
        assert (await session.pop_item() or {}).get("type") == "function_call"
        assert len(await session.get_items()) == 5
        await session.clear_session()
        assert await session.get_items() == []
