"""How tools meet a turn: switched-on tools run before the answer and land in the prompt, the
stored answer and the generation record; model-called tools loop through the engine; a failing
tool never fails the turn."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import ClassVar

import pytest

from fake_engine import FakeEngine
from tandem.chat import ChatService
from tandem.core.errors import InvalidInput
from tandem.core.generation import SamplingParams, Usage
from tandem.core.settings import Settings
from tandem.engines import ModelCatalog
from tandem.engines.base import Chunk, EncodedPrompt
from tandem.store import ConversationRepo, GenerationRepo, ProfileRepo, UserRepo
from tandem.tools.base import Citation, Tool, ToolContext, ToolResult, register_tool

pytestmark = pytest.mark.anyio


@register_tool
class LookupTool(Tool):
    """Answers with one numbered source for whatever it is asked."""

    name = "lookup_test"
    title = "Lookup"
    description = "Looks something up."
    parameters: ClassVar[dict] = {"type": "object", "properties": {"query": {"type": "string"}}}

    async def run(self, ctx: ToolContext, arguments: dict) -> ToolResult:
        passage = f"The answer to {arguments['query']!r} is 42."
        citation = Citation(ctx.citation_start, "file", "notes.txt", passage, file_id="f1")
        return ToolResult(self.name, arguments, content=f"[1] {passage}", citations=[citation])


@register_tool
class BrokenTool(Tool):
    name = "broken_test"
    title = "Broken"
    description = "Always fails."
    parameters: ClassVar[dict] = {"type": "object", "properties": {}}

    async def run(self, ctx: ToolContext, arguments: dict) -> ToolResult:
        raise RuntimeError("disk on fire")


@register_tool
class UnconfiguredTool(Tool):
    name = "unconfigured_test"
    title = "Unconfigured"
    description = "Needs a backend nobody set up."
    parameters: ClassVar[dict] = {"type": "object", "properties": {}}

    def available(self, settings: Settings) -> str | None:
        return "No backend is configured; an admin can set one."

    async def run(self, ctx: ToolContext, arguments: dict) -> ToolResult:
        raise AssertionError("an unavailable tool must not run")


class ToolCallingEngine(FakeEngine):
    """Calls `calls` (one round each) while offered tools, then answers from what it saw."""

    supports_tools = True

    def __init__(self, calls: Sequence[list[dict]]) -> None:
        super().__init__("caller-model")
        self.rounds = list(calls)
        self.offered: list[list[str]] = []

    async def stream(
        self, prompt: EncodedPrompt, params: SamplingParams, tools: list | None = None
    ) -> AsyncIterator[Chunk]:
        messages = prompt.messages
        self.calls.append((list(messages), params))
        self.offered.append([t["function"]["name"] for t in tools or []])
        if tools and self.rounds:
            yield Chunk(tool_calls=self.rounds.pop(0), finish_reason="tool_calls")
            return
        seen = [m for m in messages if m.role == "tool"]
        yield Chunk(text=f"Used {len(seen)} tool results.")
        yield Chunk(finish_reason="stop", usage=Usage(3, 4))


@pytest.fixture
def world(session_factory, tandem_home):
    catalog = ModelCatalog(default_model="fake-model")
    catalog.add(FakeEngine("fake-model"))
    settings = Settings(home=tandem_home, database_url="sqlite://")
    with session_factory() as s:
        alice = UserRepo(s).create("alice@x.io", "pw-123456")
        conv = ConversationRepo(s).create(alice.id)
    service = ChatService(session_factory, catalog, settings=settings)
    return service, catalog, session_factory, alice.id, conv.id


async def test_a_switched_on_tool_runs_first_and_is_recorded_everywhere(world):
    service, catalog, factory, alice, conv = world
    turn = service.send(alice, conv, "what is the answer?", tools=["lookup_test"])
    chunks = [c async for c in turn.stream()]
    events = [c.event for c in chunks if c.event]
    assert [e["status"] for e in events] == ["running", "done"]
    first_text = next(i for i, c in enumerate(chunks) if c.text)
    assert all(c.event for c in chunks[:2]) and first_text >= 2  # tools before any token
    assert events[1]["citations"][0]["passage"].endswith("is 42.")

    # The model read the result in its system message; the user's message is untouched.
    seen = catalog.get("fake-model").calls[-1][0]
    assert seen[0].role == "system" and "is 42." in seen[0].content
    assert "cite it like [1]" in seen[0].content
    assert seen[-1].content == "what is the answer?"

    with factory() as s:
        record = GenerationRepo(s).get(alice, turn.generation.id)
        stored = ConversationRepo(s).get_message(alice, turn.assistant_message.id)
    call = record.tool_calls[0]
    assert call["tool"] == "lookup_test" and call["arguments"] == {"query": "what is the answer?"}
    assert call["citations"][0]["file_id"] == "f1" and call["error"] is None
    assert "is 42." in record.rendered_prompt
    parts = stored.to_message().parts
    assert [p.type for p in parts] == ["text", "tool_result", "citation"]
    assert parts[1].data["tool"] == "lookup_test" and parts[1].data["error"] is None
    assert parts[2].data["index"] == 1 and parts[2].data["title"] == "notes.txt"
    assert stored.to_message().content == turn.text  # citations don't leak into the text


async def test_a_failing_tool_is_reported_and_the_answer_still_comes(world):
    service, catalog, _, alice, conv = world
    turn = service.send(alice, conv, "hi", tools=["broken_test"])
    events = [c.event async for c in turn.stream() if c.event]
    done = [e for e in events if e["status"] != "running"]
    assert [e["status"] for e in done] == ["error"]
    assert "disk on fire" in done[0]["error"]
    assert turn.text == "You said: hi" and turn.generation.finish_reason == "stop"
    prompt = catalog.get("fake-model").calls[-1][0][0].content
    assert "could not run" in prompt  # the model is told, so it does not pretend
    assert [c["error"] is not None for c in turn.generation.tool_calls] == [True]


async def test_a_message_asking_for_a_tool_that_cannot_run_here_is_refused_first(world):
    service, catalog, factory, alice, conv = world
    with pytest.raises(InvalidInput, match="No backend is configured"):
        service.send(alice, conv, "hi", tools=["unconfigured_test"])
    with factory() as s:
        assert ConversationRepo(s).tree(alice, conv) == []  # nothing stored
    assert catalog.get("fake-model").calls == []  # nothing generated
    # A profile's tool that cannot run is left out; the chat goes on.
    with factory() as s:
        profile = ProfileRepo(s).create(alice, name="P", tools=["unconfigured_test"])
        conv = ConversationRepo(s).create(alice, profile_id=profile.id).id
    turn = await service.send(alice, conv, "hello").run()
    assert turn.tool_results == [] and turn.text == "You said: hello"


async def test_citations_of_several_tools_are_numbered_consecutively(world):
    service, _, _, alice, conv = world
    turn = service.send(alice, conv, "q", tools=["lookup_test", "lookup_test"])
    await turn.run()
    # Asking for the same tool twice runs it once: switches are a set.
    assert len(turn.tool_results) == 1
    with_two = service.send(alice, conv, "q2", tools=["lookup_test"])
    with_two.planned_tools.append(with_two.planned_tools[0])
    await with_two.run()
    assert [r.citations[0].index for r in with_two.tool_results] == [1, 2]


async def test_profile_tools_are_switched_on_and_regenerate_runs_them_again(world):
    service, _, factory, alice, conv = world
    with factory() as s:
        profile = ProfileRepo(s).create(alice, name="Researcher", tools=["lookup_test"])
        conv = ConversationRepo(s).create(alice, profile_id=profile.id).id
    turn = await service.send(alice, conv, "first").run()
    assert [r.tool for r in turn.tool_results] == ["lookup_test"]
    again = await service.regenerate(alice, turn.assistant_message.id).run()
    assert [r.tool for r in again.tool_results] == ["lookup_test"]
    assert again.tool_results[0].arguments == {"query": "first"}


async def test_no_tools_means_no_tool_context_in_the_prompt(world):
    service, catalog, _, alice, conv = world
    turn = await service.send(alice, conv, "plain").run()
    assert turn.generation.tool_calls == []
    assert [m.role for m in catalog.get("fake-model").calls[-1][0]] == ["user"]


async def test_a_tool_calling_model_gets_tools_offered_and_their_results_back(world):
    service, catalog, _, alice, conv = world
    engine = ToolCallingEngine(
        [
            [{"id": "call_1", "name": "lookup_test", "arguments": '{"query": "meaning"}'}],
            [
                {"id": "call_2", "name": "no_such_tool", "arguments": "{}"},
                {"id": "call_3", "name": "lookup_test", "arguments": "not json"},
            ],
        ]
    )
    catalog.add(engine)
    turn = service.send(alice, conv, "look it up", model="caller-model", tools=["lookup_test"])
    chunks = [c async for c in turn.stream()]
    assert turn.text == "Used 3 tool results."
    assert not any(c.finish_reason == "tool_calls" for c in chunks)  # internal to the turn
    assert engine.offered[0] == ["lookup_test"]
    # The switched-on tool was offered, not run up front with the raw message.
    results = turn.generation.tool_calls
    assert [(r["tool"], r["call_id"]) for r in results] == [
        ("lookup_test", "call_1"),
        ("no_such_tool", "call_2"),
        ("lookup_test", "call_3"),
    ]
    assert results[0]["arguments"] == {"query": "meaning"} and results[0]["error"] is None
    assert results[1]["error"] == "unknown tool"
    assert results[2]["error"] == "arguments are not a JSON object"
    last_input = engine.calls[-1][0]
    roles = [m.role for m in last_input]
    assert roles == ["user", "assistant", "tool", "assistant", "tool", "tool"]
    call_part = last_input[1].parts[0]
    assert call_part.type == "tool_call" and call_part.data["id"] == "call_1"
    assert last_input[2].parts[0].data["call_id"] == "call_1"
    assert "is 42." in last_input[2].parts[0].text


async def test_a_model_that_keeps_calling_tools_is_made_to_answer(world):
    service, catalog, _, alice, conv = world
    call = [{"id": "c", "name": "lookup_test", "arguments": '{"query": "again"}'}]
    engine = ToolCallingEngine([call] * 10)
    catalog.add(engine)
    turn = await service.send(
        alice, conv, "loop", model="caller-model", tools=["lookup_test"]
    ).run()
    assert len(turn.tool_results) == 4  # MAX_TOOL_ROUNDS
    assert engine.offered[-1] == [] and turn.text.startswith("Used")


async def test_images_tools_made_for_earlier_answers_do_not_trigger_the_no_images_notice(world):
    service, _, _, alice, conv = world
    chart = {"upload_id": "u1", "mime": "image/png"}

    @register_tool
    class ChartTool(Tool):
        name = "chart_test"
        title = "Chart"
        description = "Draws a chart."
        parameters: ClassVar[dict] = {"type": "object", "properties": {}}

        async def run(self, ctx: ToolContext, arguments: dict) -> ToolResult:
            return ToolResult(self.name, arguments, content="a chart", attachments=[chart])

    first = await service.send(alice, conv, "plot it", tools=["chart_test"]).run()
    parts = first.assistant_message.to_message().parts
    assert [p.data for p in parts if p.type == "image"] == [chart]
    second = await service.send(alice, conv, "and now?").run()
    assert second.notice is None  # the text-only model simply does not see the chart
