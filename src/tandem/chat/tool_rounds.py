"""One turn's rounds of generation and the tools run between them.

    rounds = ToolRounds(engine, params, prompt, plan, refit)
    async for chunk in rounds.stream():    # tool events and the engine's chunks, in order
        ...
    rounds.finish, rounds.final            # how the last round ended, its final chunk
    rounds.prompt, rounds.results          # what the model read last, every tool's result

Switched-on tools (the composer, a profile) run first and their results go into the system
message (tandem.chat.tooling). A model that calls tools itself gets them offered: its calls run
between rounds and their results come back as `tool` messages, for at most MAX_TOOL_ROUNDS
rounds; then it must answer. An API client that runs its own tools (/v1) gets the model's calls
back (`client_calls`) and the turn ends there: nothing runs here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

from tandem.chat.tooling import (
    MAX_TOOL_ROUNDS,
    next_citation_index,
    parse_arguments,
    public_result,
    tool_call_messages,
    with_tool_results,
)
from tandem.core.generation import SamplingParams
from tandem.core.messages import Message
from tandem.engines.base import Chunk, EncodedPrompt, Engine, cut_loops
from tandem.tools.base import Tool, ToolContext, ToolResult


@dataclass(frozen=True)
class ToolPlan:
    """The tools of one turn."""

    # Run before the model answers, with arguments taken from the user's message.
    switched_on: tuple[tuple[Tool, dict[str, Any]], ...] = ()
    # Offered to a model that calls tools itself.
    offered: tuple[Tool, ...] = ()
    # Who is asking and what the tools may touch: needed whenever a tool runs here.
    context: ToolContext | None = None
    # OpenAI function schemas of an API client that runs its tools itself (/v1).
    client_schemas: tuple[dict[str, Any], ...] = ()

    def __post_init__(self) -> None:
        if (self.switched_on or self.offered) and self.context is None:
            raise ValueError("tools need a tool context")


class ToolRounds:
    """Generates a turn's answer round by round, running the tools in between."""

    def __init__(
        self,
        engine: Engine,
        params: SamplingParams,
        prompt: EncodedPrompt,
        plan: ToolPlan,
        refit: Callable[[Sequence[Message]], EncodedPrompt],
    ) -> None:
        self.engine = engine
        self.params = params
        self.plan = plan
        # `refit` encodes the prompt again once tool results are in it (fitting a chat's
        # branch into the context again, tandem.chat.fitting).
        self._refit = refit
        # What the model reads now; recorded as sent (tool results and calls included).
        self.prompt = prompt
        self.switched_on = list(plan.switched_on)
        self.results: list[ToolResult] = []
        self.client_calls: list[dict[str, Any]] = []
        self.final: Chunk | None = None
        self.finish = "cancelled"  # unless the engine says otherwise before the consumer stops

    async def stream(self) -> AsyncIterator[Chunk]:
        """Tool events (`Chunk.event`) and the engine's chunks; the last chunk carries the
        finish reason (a round that ends in tool calls is internal to the turn)."""
        for tool, arguments in self.switched_on:
            async for chunk in self._run_tool(tool, arguments):
                yield chunk
        if self.results:
            self.prompt = self._refit(with_tool_results(self.prompt.messages, self.results))
        client_schemas = list(self.plan.client_schemas)
        for round_ in range(MAX_TOOL_ROUNDS + 1):
            offer = self.plan.offered if round_ < MAX_TOOL_ROUNDS else ()
            schemas = [t.openai_schema() for t in offer] or client_schemas
            extra = {"tools": schemas} if schemas else {}
            calls: list[dict[str, Any]] = []
            self.final = None
            chunks = cut_loops(
                self.prompt, self.params, self.engine.stream(self.prompt, self.params, **extra)
            )
            async with aclosing(chunks) as source:
                async for chunk in source:
                    calls += chunk.tool_calls or []
                    if chunk.finish_reason:
                        self.final, self.finish = chunk, chunk.finish_reason
                    if chunk.text or chunk.finish_reason != "tool_calls" or client_schemas:
                        yield chunk
            if self.finish == "loop":
                break
            if calls and client_schemas:
                self._client_calls(calls)
                break
            if calls and not offer:
                # Calls nobody offered (the last round offers none) are not run: the turn
                # ends with what the model said.
                self.finish = "stop"
                yield Chunk(finish_reason=self.finish)
            if not calls or not offer:
                break
            async for chunk in self._model_calls(calls, offer):
                yield chunk
        if self.final is None:
            self.finish = "stop"

    async def _run_tool(
        self, tool: Tool, arguments: dict[str, Any], call_id: str | None = None
    ) -> AsyncIterator[Chunk]:
        """Run one tool, yielding its start and end events; the result joins `results`."""
        assert self.plan.context is not None  # ToolPlan says so
        yield Chunk(event={"type": "tool", "status": "running", "tool": tool.name})
        ctx = dataclasses.replace(
            self.plan.context, citation_start=next_citation_index(self.results)
        )
        result = await tool.call(ctx, arguments)
        result.call_id = call_id
        self.results.append(result)
        yield Chunk(event={"type": "tool", **public_result(result)})

    async def _model_calls(
        self, calls: list[dict[str, Any]], offer: Sequence[Tool]
    ) -> AsyncIterator[Chunk]:
        """Run the tools a model asked for; unknown tools and bad arguments are answered with
        an error the model reads, never run."""
        offered = {t.name: t for t in offer}
        before = len(self.results)
        for call in calls:
            tool = offered.get(call.get("name", ""))
            arguments = parse_arguments(call.get("arguments"))
            if tool is None or arguments is None:
                why = "unknown tool" if tool is None else "arguments are not a JSON object"
                self.results.append(
                    ToolResult(call.get("name", "?"), {}, error=why, call_id=call.get("id"))
                )
                continue
            async for chunk in self._run_tool(tool, arguments, call.get("id")):
                yield chunk
        messages = [*self.prompt.messages, *tool_call_messages(calls, self.results[before:])]
        self.prompt = self.engine.encode(messages, self.prompt.continue_final)

    def _client_calls(self, calls: list[dict[str, Any]]) -> None:
        """Record the calls a /v1 client will run itself: in the generation record (their
        outputs arrive as `tool` messages of the client's next request)."""
        self.client_calls = list(calls)
        for call in calls:
            arguments = parse_arguments(call.get("arguments"))
            self.results.append(
                ToolResult(
                    call.get("name", "?"),
                    arguments if arguments is not None else {"raw": call.get("arguments")},
                    display={"run_by": "client"},
                    call_id=call.get("id"),
                )
            )
