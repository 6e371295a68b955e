"""How tool results meet the conversation: in the prompt, in the stored answer, in events.

Switched-on tools (the composer, a profile) run before the model answers and their results go
into the system message; tools a model calls itself (OpenAI-style) come back as `tool`
messages after the assistant's tool-call message, as the OpenAI API has them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from tandem.core.messages import Message, Part
from tandem.tools.base import ToolResult, prompt_block

# A model that keeps calling tools is stopped after this many rounds and must answer.
MAX_TOOL_ROUNDS = 4


def with_tool_results(messages: Sequence[Message], results: Sequence[ToolResult]) -> list[Message]:
    """The messages with the tools' results appended to the system message (one is created
    when the conversation has none). The system message, not the user's, so that the stored
    user message stays what the user typed."""
    if not results:
        return list(messages)
    block = prompt_block(list(results))
    out = list(messages)
    if out and out[0].role == "system":
        out[0] = Message.text("system", f"{out[0].content}\n\n{block}")
    else:
        out.insert(0, Message.text("system", block))
    return out


def tool_call_messages(
    calls: Sequence[dict[str, Any]], results: Sequence[ToolResult]
) -> list[Message]:
    """The assistant's tool-call message and one `tool` message per result, for the next round."""
    assistant = Message(
        "assistant",
        tuple(
            Part("tool_call", data={"id": c["id"], "name": c["name"], "arguments": c["arguments"]})
            for c in calls
        ),
    )
    replies = [
        Message(
            "tool",
            (
                Part(
                    "tool_output",
                    text=r.content if r.error is None else f"error: {r.error}",
                    data={"call_id": r.call_id},
                ),
            ),
        )
        for r in results
    ]
    return [assistant, *replies]


def parse_arguments(raw: str | dict[str, Any] | None) -> dict[str, Any] | None:
    """A model's argument JSON as a dict, or None when it is not a JSON object."""
    if isinstance(raw, dict):
        return raw
    try:
        value = json.loads(raw or "{}")
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def answer_parts(text: str, results: Sequence[ToolResult]) -> tuple[Part, ...]:
    """The stored assistant message: its text, then per tool what it showed (`tool_result`),
    the sources the answer may cite and the images it made (charts, generated images), so a
    reloaded chat shows them again."""
    parts = [Part("text", text)]
    for result in results:
        shown = {"tool": result.tool, "arguments": result.arguments, "display": result.display}
        parts.append(Part("tool_result", data={**shown, "error": result.error}))
        parts += [Part("citation", data=c.to_dict()) for c in result.citations]
        parts += [Part("image", data=dict(a)) for a in result.attachments]
    return tuple(parts)


def public_result(result: ToolResult) -> dict[str, Any]:
    """A finished tool call as the client sees it in a `tool` stream event."""
    return {"status": "error" if result.error else "done", **result.to_record()}


def next_citation_index(results: Sequence[ToolResult]) -> int:
    return 1 + sum(len(r.citations) for r in results)
