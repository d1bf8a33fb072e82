"""A scripted model for the OpenAI Agents SDK's Runner (no network, no LLM), and one turn of a
conversation run from the command line, for resuming a session in a new process:

    python -m tests.integrations.scripted_agents URL ADMIN_KEY SESSION_ID RESOURCE_ID TEXT REPLY

prints, as JSON, the final output and the input items the model was given.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from typing import Any

import orjson
from agents import Agent, Runner, function_tool, set_tracing_disabled
from agents.items import ModelResponse
from agents.models.interface import Model
from agents.usage import Usage
from openai.types.responses import (
    ResponseFunctionToolCall,
    ResponseOutputMessage,
    ResponseOutputText,
)

from convex_mastra import ConvexStore
from convex_mastra.integrations.openai_agents import ConvexSession

set_tracing_disabled(True)


def say(text: str, n: int = 0) -> ResponseOutputMessage:
    return ResponseOutputMessage(
        id=f"msg_{n}",
        type="message",
        role="assistant",
        status="completed",
        content=[ResponseOutputText(type="output_text", text=text, annotations=[])],
    )


def call(name: str, arguments: str, call_id: str) -> ResponseFunctionToolCall:
    return ResponseFunctionToolCall(
        id=f"fc_{call_id}", type="function_call", call_id=call_id, name=name, arguments=arguments
    )


class ScriptedModel(Model):
    """Answers each model call with the next scripted output, and keeps what it was given."""

    def __init__(self, script: list[list[Any]]) -> None:
        self.script = list(script)
        self.inputs: list[list[dict[str, Any]]] = []

    async def get_response(
        self, system_instructions: Any, input: Any, *args: Any, **kwargs: Any
    ) -> ModelResponse:
        given = [{"role": "user", "content": input}] if isinstance(input, str) else list(input)
        self.inputs.append([dict(item) for item in given])
        return ModelResponse(output=self.script.pop(0), usage=Usage(), response_id=None)

    def stream_response(self, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        raise NotImplementedError


@function_tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


def agent(model: ScriptedModel) -> Agent[Any]:
    return Agent(name="assistant", instructions="Be brief.", model=model, tools=[get_weather])


async def turn(
    url: str, admin_key: str, session_id: str, resource_id: str, text: str, reply: str
) -> None:
    model = ScriptedModel([[say(reply)]])
    async with ConvexStore(url, admin_key) as store:
        session = ConvexSession(session_id, store, resource_id=resource_id)
        result = await Runner.run(agent(model), text, session=session)
    sys.stdout.write(
        orjson.dumps({"final": result.final_output, "input": model.inputs[0]}).decode()
    )


if __name__ == "__main__":
    asyncio.run(turn(*sys.argv[1:7]))
