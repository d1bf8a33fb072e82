"""A pydantic-ai agent on a FunctionModel (no network, no LLM) that calls its weather tool once
per question, and one turn of it from the command line, for resuming in a new process:

    python -m tests.integrations.scripted_pydantic URL ADMIN_KEY THREAD_ID RESOURCE_ID TEXT

prints, as JSON, the run's output and the messages the model was given on its first call.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import orjson
from pydantic_ai import Agent
from pydantic_ai.messages import (
    ModelMessage,
    ModelMessagesTypeAdapter,
    ModelResponse,
    TextPart,
    ToolCallPart,
)
from pydantic_ai.models.function import AgentInfo, FunctionModel

from convex_mastra import ConvexStore
from convex_mastra.integrations.pydantic_ai import ConvexMessageHistory


def weather_agent(seen: list[list[ModelMessage]]) -> Agent[None, str]:
    def reply(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        seen.append(list(messages))
        returns = [p for p in messages[-1].parts if p.part_kind == "tool-return"]
        if returns:
            return ModelResponse(parts=[TextPart(f"It is {returns[0].content}.")])
        asked = sum(
            1 for m in messages if m.kind == "request" and m.parts[0].part_kind == "user-prompt"
        )
        city = "Paris" if asked == 1 else "Oslo"
        return ModelResponse(
            parts=[ToolCallPart("get_weather", {"city": city}, tool_call_id=f"call_{asked}")]
        )

    agent = Agent(FunctionModel(reply), instructions="Be brief.")

    @agent.tool_plain
    def get_weather(city: str) -> str:
        """The weather in a city."""
        return f"sunny in {city}" if city == "Paris" else f"snowing in {city}"

    return agent


async def turn(url: str, admin_key: str, thread_id: str, resource_id: str, text: str) -> None:
    seen: list[list[ModelMessage]] = []
    async with ConvexStore(url, admin_key) as store:
        history = ConvexMessageHistory(store, thread_id, resource_id=resource_id)
        result = await weather_agent(seen).run(text, message_history=await history.load())
        await history.save(result.new_messages())
    given: Any = ModelMessagesTypeAdapter.dump_python(seen[0], mode="json")
    sys.stdout.write(orjson.dumps({"output": result.output, "given": given}).decode())


if __name__ == "__main__":
    asyncio.run(turn(*sys.argv[1:6]))
