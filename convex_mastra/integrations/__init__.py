"""Adapters for Python agent frameworks, each behind an optional extra.

- :mod:`convex_mastra.integrations.openai_agents` (``convex-mastra[openai-agents]``):
  ``ConvexSession``, the OpenAI Agents SDK's session protocol on a Mastra thread.
- :mod:`convex_mastra.integrations.pydantic_ai` (``convex-mastra[pydantic-ai]``):
  ``ConvexMessageHistory``, pydantic-ai's message history on a Mastra thread.

Both keep each framework message as one Mastra message: parts a Mastra reader shows (text,
tool calls and results, reasoning) and, in ``content.metadata``, the framework's own JSON, so a
message reads back exactly as it was written. See docs/integrations.md.
"""
