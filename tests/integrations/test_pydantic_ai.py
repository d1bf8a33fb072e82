"""ConvexMessageHistory under pydantic-ai's own Agent, on the local deployment."""

from __future__ import annotations

from datetime import timezone
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("pydantic_ai")  # pydantic-ai needs Python 3.11; the extra says so

from pydantic_ai import Agent
from pydantic_ai.messages import ModelMessage, ModelMessagesTypeAdapter
from pydantic_ai.models.test import TestModel

from convex_mastra import ConvexStore, Message
from convex_mastra.integrations.pydantic_ai import (
    ConvexMessageHistory,
    message_content,
    model_messages,
)
from convex_mastra.pytest_plugin import Deployment
from tests.integrations.helpers import listed_by_mastra, turn_in_new_process
from tests.integrations.scripted_pydantic import weather_agent


def dump(messages: list[ModelMessage]) -> Any:
    return ModelMessagesTypeAdapter.dump_python(messages, mode="json")


async def test_a_run_with_a_tool_call_resumes_in_a_new_process(
    store: ConvexStore, convex_deployment: Deployment, uid: str
) -> None:
    thread_id, resource_id = f"pa-{uid}", f"user-{uid}"
    history = ConvexMessageHistory(store, thread_id, resource_id=resource_id, title="weather")
    assert await history.load() == []
    result = await weather_agent([]).run("Weather in Paris?", message_history=[])
    assert result.output == "It is sunny in Paris."
    await history.save(result.new_messages())
    assert await history.load() == result.all_messages()  # exactly, not just alike

    # The next question in another process, from nothing but the thread id.
    second = await turn_in_new_process(
        "scripted_pydantic", convex_deployment, thread_id, resource_id, "And in Oslo?"
    )
    assert second["output"] == "It is snowing in Oslo."
    # The new process's model was given the first run's messages as they were, then the question.
    assert second["given"][:4] == dump(result.all_messages())
    assert second["given"][4]["parts"][0]["content"] == "And in Oslo?"
    assert len(await history.load()) == 8

    # What a Mastra TypeScript app lists: the conversation, text and tool invocations.
    roles, texts, tools = await listed_by_mastra(convex_deployment, thread_id)
    assert roles == ["user", "assistant", "assistant", "assistant"] * 2
    assert texts == [
        "Weather in Paris?",
        "It is sunny in Paris.",
        "And in Oslo?",
        "It is snowing in Oslo.",
    ]
    assert [(t["state"], t["toolName"], t["toolCallId"]) for t in tools] == [
        ("call", "get_weather", "call_1"),
        ("result", "get_weather", "call_1"),
        ("call", "get_weather", "call_2"),
        ("result", "get_weather", "call_2"),
    ]
    assert tools[0]["args"] == {"city": "Paris"}
    assert tools[3]["result"] == "snowing in Oslo"


async def test_a_limit_reads_the_newest_and_starts_at_a_user_prompt(
    store: ConvexStore, uid: str
) -> None:
    history = ConvexMessageHistory(store, f"pa-limit-{uid}", resource_id=f"user-{uid}")
    agent = weather_agent([])
    for question in ("Weather in Paris?", "And in Oslo?"):
        result = await agent.run(question, message_history=await history.load())
        await history.save(result.new_messages())
    everything = await history.load()
    assert len(everything) == 8
    # The newest 6 begin with the first question's tool return: the history starts after it.
    assert await history.load(limit=6) == everything[4:]
    assert await history.load(limit=4) == everything[4:]
    assert await history.load(limit=3) == []  # no user prompt among them
    await history.clear()
    assert await history.load() == []


async def test_test_model_runs_read_back_exactly(store: ConvexStore, uid: str) -> None:
    agent = Agent(TestModel(), instructions="Be brief.")

    @agent.tool_plain
    def lookup(query: str, limit: int) -> dict[str, Any]:
        """Look something up."""
        return {"query": query, "hits": list(range(limit))}

    history = ConvexMessageHistory(store, f"pa-test-{uid}", resource_id=f"user-{uid}")
    for question in ("first", "second"):
        result = await agent.run(question, message_history=await history.load())
        await history.save(result.new_messages())
    assert await history.load() == result.all_messages()


async def test_messages_written_by_a_mastra_app_read_as_model_messages(
    store: ConvexStore, uid: str
) -> None:
    thread_id = f"pa-mastra-{uid}"
    await store.threads.save({"id": thread_id, "resourceId": "u", "title": ""})
    await store.messages.save(
        [
            {
                "id": f"a-{uid}",
                "threadId": thread_id,
                "resourceId": "u",
                "role": "user",
                "createdAt": "2026-01-01T00:00:00.000Z",
                "content": "Weather in Paris?",
            },
            {
                "id": f"b-{uid}",
                "threadId": thread_id,
                "resourceId": "u",
                "role": "assistant",
                "createdAt": "2026-01-01T00:00:01.000Z",
                "content": {
                    "format": 2,
                    "parts": [
                        {"type": "text", "text": "Checking."},
                        {
                            "type": "tool-invocation",
                            "toolInvocation": {
                                "state": "result",
                                "toolCallId": "c1",
                                "toolName": "get_weather",
                                "args": {"city": "Paris"},
                                "result": "sunny",
                            },
                        },
                    ],
                },
            },
        ]
    )
    history = ConvexMessageHistory(store, thread_id, resource_id="u")
    loaded = dump(await history.load())
    assert [m["kind"] for m in loaded] == ["request", "response", "request"]
    assert loaded[0]["parts"][0]["content"] == "Weather in Paris?"
    assert [p["part_kind"] for p in loaded[1]["parts"]] == ["text", "tool-call"]
    assert loaded[1]["parts"][1]["args"] == {"city": "Paris"}
    assert (loaded[2]["parts"][0]["part_kind"], loaded[2]["parts"][0]["content"]) == (
        "tool-return",
        "sunny",
    )
    # And a pydantic-ai agent goes on from them.
    seen: list[list[ModelMessage]] = []
    result = await weather_agent(seen).run("And now?", message_history=await history.load())
    assert result.output == "It is sunny."
    # pydantic-ai adds the new prompt to the history's last request, beside the tool return.
    given = dump(seen[0])
    assert [p["part_kind"] for p in given[-1]["parts"]] == ["tool-return", "user-prompt"]


# -- the mapping alone -------------------------------------------------------------------------

texts = st.text(max_size=30)
times = st.datetimes(timezones=st.just(timezone.utc)).map(lambda t: t.isoformat())
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | texts,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=8,
)
request_parts = st.one_of(
    st.fixed_dictionaries(
        {
            "part_kind": st.just("user-prompt"),
            "content": texts | st.lists(texts, max_size=3),
            "timestamp": times,
        }
    ),
    st.fixed_dictionaries({"part_kind": st.just("system-prompt"), "content": texts}),
    st.fixed_dictionaries(
        {
            "part_kind": st.just("tool-return"),
            "tool_name": texts,
            "tool_call_id": texts,
            "content": json_values,
            "timestamp": times,
        }
    ),
    st.fixed_dictionaries(
        {
            "part_kind": st.just("retry-prompt"),
            "tool_name": texts,
            "tool_call_id": texts,
            "content": texts,
            "timestamp": times,
        }
    ),
)
response_parts = st.one_of(
    st.fixed_dictionaries({"part_kind": st.just("text"), "content": texts}),
    st.fixed_dictionaries({"part_kind": st.just("thinking"), "content": texts}),
    st.fixed_dictionaries(
        {
            "part_kind": st.just("tool-call"),
            "tool_name": texts,
            "tool_call_id": texts,
            "args": texts | st.dictionaries(texts, json_values, max_size=3),
        }
    ),
)
messages = st.one_of(
    st.fixed_dictionaries(
        {
            "kind": st.just("request"),
            "parts": st.lists(request_parts, min_size=1, max_size=3),
            "timestamp": times,
        },
        optional={"instructions": texts},
    ),
    st.fixed_dictionaries(
        {
            "kind": st.just("response"),
            "parts": st.lists(response_parts, min_size=1, max_size=3),
            "timestamp": times,
        },
        optional={"model_name": texts},
    ),
)


@settings(max_examples=300, deadline=None)
@given(raw=messages)
def test_a_model_message_reads_back_equal(raw: dict[str, Any]) -> None:
    [original] = ModelMessagesTypeAdapter.validate_python([raw])
    role, content = message_content(original)
    stored = {"id": "m", "role": role, "createdAt": "2026-01-01T00:00:00.000Z", "content": content}
    # Through JSON, as the deployment keeps it.
    message = Message.model_validate(orjson.loads(orjson.dumps(stored)))
    assert model_messages(message) == [original]
    assert role in ("user", "assistant", "system")
