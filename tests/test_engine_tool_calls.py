"""Native tool calls through an OpenAI-compatible backend that supports them.

The backend is a small local server speaking the chat-completions stream format, as vLLM and
OpenAI do: it streams a tool call in fragments (id and name first, the arguments' JSON text in
pieces) while it is offered tools and has not seen a tool's answer, and answers in text once it
has. The point is what tandem sends and how it puts the answer together, which a real model
server would not show us.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from typing import Any, ClassVar

import openai
import pytest
from fastapi.testclient import TestClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Route

from conftest import new_user
from fake_engine import FakeEngine
from tandem.chat import ChatService
from tandem.core import Message, SamplingParams
from tandem.core.settings import BackendConfig, Settings
from tandem.engines import ModelCatalog
from tandem.engines.openai_compat import OpenAICompatEngine, ToolCallAssembler
from tandem.store import ConversationRepo, GenerationRepo, UserRepo
from tandem.tools.base import Tool, ToolContext, ToolResult, register_tool
from test_tools_image import ImagesServer, _backend

ARGS = '{"city": "Oslo"}'


@register_tool
class WeatherTool(Tool):
    """A dummy tool: the weather anywhere is the same."""

    name = "weather_e2e_test"
    title = "Weather"
    description = "The weather in a city."
    parameters: ClassVar[dict] = {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    }

    async def run(self, ctx: ToolContext, arguments: dict) -> ToolResult:
        return ToolResult(self.name, arguments, content=f"Sunny in {arguments['city']}.")


def _frame(delta: dict[str, Any], finish: str | None = None) -> str:
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    return f"data: {json.dumps({'id': 'x', 'choices': [choice]})}\n\n"


class ChatServer:
    """Calls `calls` (one per round: a list of (id, name, arguments)) while it is offered tools
    and the last message is not a tool's answer; otherwise answers with the tool outputs."""

    def __init__(self) -> None:
        self.calls: list[list[tuple[str, str, str]]] = []
        self.always: list[tuple[str, str, str]] | None = None
        self.received: list[dict] = []

    def app(self) -> Starlette:
        async def completions(request: Request) -> StreamingResponse:
            body = await request.json()
            self.received.append(body)
            last = body["messages"][-1]
            round_calls = None
            if body.get("tools") and (last["role"] != "tool" or self.always):
                round_calls = self.always or (self.calls.pop(0) if self.calls else None)

            async def events():
                if round_calls:
                    for i, (call_id, name, arguments) in enumerate(round_calls):
                        head = {"index": i, "id": call_id, "type": "function"}
                        head["function"] = {"name": name, "arguments": ""}
                        yield _frame({"role": "assistant", "content": None, "tool_calls": [head]})
                        for piece in (arguments[:5], arguments[5:]):  # JSON text in fragments
                            more = {"index": i, "function": {"arguments": piece}}
                            yield _frame({"tool_calls": [more]})
                    yield _frame({}, "tool_calls")
                else:
                    outputs = [m["content"] for m in body["messages"] if m["role"] == "tool"]
                    yield _frame({"role": "assistant", "content": "Tools said: "})
                    yield _frame({"content": " | ".join(outputs) or "nothing"})
                    yield _frame({}, "stop")
                usage = {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}
                yield f"data: {json.dumps({'id': 'x', 'choices': [], 'usage': usage})}\n\n"
                yield "data: [DONE]\n\n"

            return StreamingResponse(events(), media_type="text/event-stream")

        return Starlette(routes=[Route("/v1/chat/completions", completions, methods=["POST"])])


@pytest.fixture
def chat_server(live_server) -> tuple[ChatServer, BackendConfig]:
    server = ChatServer()
    base = live_server(server.app())
    config = BackendConfig(
        name="up", base_url=f"{base}/v1", models=("caller",), supports_tools=True
    )
    return server, config


@pytest.fixture
def world(session_factory, tandem_home, chat_server):
    server, config = chat_server
    catalog = ModelCatalog(default_model="up/caller")
    catalog.add(OpenAICompatEngine(config, "caller"))
    settings = Settings(home=tandem_home, database_url="sqlite://")
    with session_factory() as s:
        alice = UserRepo(s).create("alice@x.io", "pw-123456")
        conv = ConversationRepo(s).create(alice.id)
    service = ChatService(session_factory, catalog, settings=settings)
    return service, server, session_factory, alice.id, conv.id


def _send(world, tools=("weather_e2e_test",)):
    """`service.send` with a test-only tool switched on (the API only takes built-ins)."""
    service, _, _, alice, conv = world
    return service.send(alice, conv, "What's the weather in Oslo?", tools=list(tools))


def test_the_engine_sends_tools_and_puts_streamed_calls_back_together(chat_server):
    server, config = chat_server
    server.calls = [[("call_a", "weather_e2e_test", ARGS), ("call_b", "other", "{}")]]
    engine = OpenAICompatEngine(config, "caller")
    assert engine.info.supports_tools
    schema = WeatherTool().openai_schema()

    async def run():
        return [
            c
            async for c in engine.stream(
                engine.encode([Message.text("user", "hi")]), SamplingParams(), [schema]
            )
        ]

    chunks = asyncio.run(run())
    assert server.received[0]["tools"] == [schema]
    assert server.received[0]["tool_choice"] == "auto"
    last = chunks[-1]
    assert last.finish_reason == "tool_calls" and last.usage.completion_tokens == 3
    assert last.tool_calls == [
        {"id": "call_a", "name": "weather_e2e_test", "arguments": ARGS},
        {"id": "call_b", "name": "other", "arguments": "{}"},
    ]
    assert not any(c.text for c in chunks)


def test_calls_sent_whole_without_index_or_id_still_assemble():
    # Ollama sends each call in one delta, with the arguments as an object and no id.
    calls = ToolCallAssembler()
    calls.add([{"function": {"name": "a", "arguments": {"x": 1}}}, {"function": {"name": "b"}}])
    assert calls.result() == [
        {"id": "call_0", "name": "a", "arguments": '{"x": 1}'},
        {"id": "call_1", "name": "b", "arguments": "{}"},
    ]


def test_the_turn_runs_the_tool_and_the_model_answers_from_its_output(world):
    _, server, factory, alice, _ = world
    server.calls = [[("call_1", "weather_e2e_test", ARGS)]]
    turn = _send(world)
    chunks = asyncio.run(_collect(turn))
    events = [c.event for c in chunks if c.event]
    assert [(e["tool"], e["status"]) for e in events] == [
        ("weather_e2e_test", "running"),
        ("weather_e2e_test", "done"),
    ]
    assert turn.text == "Tools said: Sunny in Oslo."

    # The second request carries the assistant's tool call and the tool's answer, OpenAI's way.
    first, second = server.received
    assert [t["function"]["name"] for t in first["tools"]] == ["weather_e2e_test"]
    assert second["messages"][-2:] == [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "weather_e2e_test", "arguments": ARGS},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "Sunny in Oslo."},
    ]

    with factory() as s:
        record = GenerationRepo(s).get(alice, turn.generation.id)
        stored = ConversationRepo(s).get_message(alice, turn.assistant_message.id)
    call = record.tool_calls[0]
    assert (call["tool"], call["call_id"], call["arguments"]) == (
        "weather_e2e_test",
        "call_1",
        {"city": "Oslo"},
    )
    assert call["content"] == "Sunny in Oslo." and call["error"] is None
    assert record.finish_reason == "stop"
    assert stored.to_message().content == "Tools said: Sunny in Oslo."


def test_regenerating_an_answer_offers_the_tools_its_model_called_again(world):
    service, server, _, alice, _ = world
    server.calls = [[("call_1", "weather_e2e_test", ARGS)], [("call_2", "weather_e2e_test", ARGS)]]
    first = _send(world)
    asyncio.run(first.run())
    again = service.regenerate(alice, first.assistant_message.id)
    asyncio.run(again.run())
    # Two requests per answer (the call, then the answer), each offering the tool.
    assert [bool(r.get("tools")) for r in server.received] == [True] * 4
    assert again.generation.tool_calls[0]["call_id"] == "call_2"


def test_an_unknown_tool_or_bad_arguments_are_answered_with_an_error_not_a_crash(world):
    _, server, _, _, _ = world
    server.calls = [[("call_x", "no_such_tool", "{}"), ("call_y", "weather_e2e_test", "{oops")]]
    turn = _send(world)
    asyncio.run(turn.run())
    tool_messages = [m for m in server.received[1]["messages"] if m["role"] == "tool"]
    assert tool_messages == [
        {"role": "tool", "tool_call_id": "call_x", "content": "error: unknown tool"},
        {
            "role": "tool",
            "tool_call_id": "call_y",
            "content": "error: arguments are not a JSON object",
        },
    ]
    assert turn.text.startswith("Tools said: error: unknown tool")
    assert [c["call_id"] for c in turn.generation.tool_calls] == ["call_x", "call_y"]
    assert all(c["error"] for c in turn.generation.tool_calls)


def test_a_model_that_never_stops_calling_is_cut_off_after_the_last_round(world):
    _, server, _, _, _ = world
    server.always = [("call_n", "weather_e2e_test", ARGS)]
    turn = _send(world)
    asyncio.run(turn.run())
    # Four rounds with tools, then one without: the model must answer.
    assert [bool(r.get("tools")) for r in server.received] == [True] * 4 + [False]
    assert len(turn.generation.tool_calls) == 4
    assert turn.text.startswith("Tools said: Sunny in Oslo.")
    assert turn.generation.finish_reason == "stop"


async def _collect(turn):
    return [c async for c in turn.stream()]


# -- through the HTTP APIs ---------------------------------------------------------------------


@pytest.fixture
def tandem_api(settings, chat_server, live_server, images_server):
    """tandem with the tool-calling backend and a plain fake model, and the image backend."""
    from tandem.web.app import create_app

    _, config = chat_server
    catalog = ModelCatalog(default_model="up/caller")
    catalog.add(OpenAICompatEngine(config, "caller"))
    catalog.add(FakeEngine("fake-model"))
    configured = dataclasses.replace(settings, image_backend=_backend(images_server))
    app = create_app(configured, catalog)
    base = live_server(app)
    with TestClient(app) as client:
        headers = new_user(client, "ada@example.com")
        yield client, headers, base


@pytest.fixture
def images_server(live_server) -> ImagesServer:
    server = ImagesServer()
    server.base = live_server(server.app())
    return server


def test_a_tool_calling_model_draws_through_the_image_tool_in_a_chat(
    tandem_api, chat_server, images_server
):
    client, headers, _ = tandem_api
    server, _ = chat_server
    server.calls = [[("call_img", "image", '{"prompt": "a lighthouse at dusk"}')]]
    conv = client.post("/api/conversations", json={}, headers=headers).json()
    turn = client.post(
        f"/api/conversations/{conv['id']}/messages",
        json={"content": "Draw me a lighthouse", "tools": ["image"]},
        headers=headers,
    ).json()
    # The model wrote the prompt itself; nobody asked it to write one first.
    assert images_server.received[0]["prompt"] == "a lighthouse at dusk"
    assert len(server.received) == 2
    call = turn["generation"]["tool_calls"][0]
    assert call["call_id"] == "call_img" and call["display"]["prompt"] == "a lighthouse at dusk"
    assert turn["assistant_message"]["content"] == (
        "Tools said: An image was generated from the prompt: a lighthouse at dusk"
    )
    assert [p["type"] for p in turn["assistant_message"]["parts"]].count("image") == 1


def test_v1_passes_tools_through_and_returns_the_calls_to_the_client(tandem_api, chat_server):
    _, headers, base = tandem_api
    server, _ = chat_server
    key = headers["Authorization"].removeprefix("Bearer ")
    client = openai.OpenAI(base_url=f"{base}/v1", api_key=key, max_retries=0)
    tools = [WeatherTool().openai_schema()]
    question = [{"role": "user", "content": "Weather in Oslo?"}]

    server.calls = [[("call_1", "weather_e2e_test", ARGS)], [("call_2", "weather_e2e_test", ARGS)]]
    reply = client.chat.completions.create(model="up/caller", messages=question, tools=tools)
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    (call,) = choice.message.tool_calls
    assert (call.id, call.function.name, call.function.arguments) == (
        "call_1",
        "weather_e2e_test",
        ARGS,
    )
    assert server.received[-1]["tools"] == tools

    stream = client.chat.completions.create(
        model="up/caller", messages=question, tools=tools, stream=True
    )
    deltas, finish = [], None
    for chunk in stream:
        for c in chunk.choices:
            deltas += c.delta.tool_calls or []
            finish = c.finish_reason or finish
    assert finish == "tool_calls"
    assert [(d.id, d.function.name, d.function.arguments) for d in deltas] == [
        ("call_2", "weather_e2e_test", ARGS)
    ]

    # The client ran the tool and sends its output back: the backend sees it, and answers.
    history = [
        *question,
        choice.message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": "call_1", "content": "Rain in Oslo."},
    ]
    final = client.chat.completions.create(model="up/caller", messages=history, tools=tools)
    assert final.choices[0].message.content == "Tools said: Rain in Oslo."
    assert final.choices[0].finish_reason == "stop"
    assert server.received[-1]["messages"][1]["tool_calls"][0]["id"] == "call_1"
    assert server.received[-1]["messages"][2] == {
        "role": "tool",
        "tool_call_id": "call_1",
        "content": "Rain in Oslo.",
    }


@pytest.fixture
def v1_client(settings):
    """tandem's /v1 with a tool-calling backend that is never reached (requests fail first)."""
    from tandem.web.app import create_app

    unreached = BackendConfig(name="up", base_url="http://127.0.0.1:9/v1", supports_tools=True)
    catalog = ModelCatalog(default_model="fake-model")
    catalog.add(OpenAICompatEngine(unreached, "caller"))
    catalog.add(FakeEngine("fake-model"))
    with TestClient(create_app(settings, catalog)) as client:
        yield client, new_user(client, "ada@example.com")


def test_v1_tools_for_a_model_without_tool_calls_is_a_clear_400(v1_client):
    client, headers = v1_client
    tools = [WeatherTool().openai_schema()]
    ask = {"model": "fake-model", "messages": [{"role": "user", "content": "hi"}]}
    r = client.post("/v1/chat/completions", json={**ask, "tools": tools}, headers=headers)
    assert r.status_code == 400
    assert r.json()["error"]["message"] == "model fake-model does not support tool calls"
    tool_reply = {"role": "tool", "tool_call_id": "c1", "content": "x"}
    r = client.post(
        "/v1/chat/completions",
        json={**ask, "messages": [*ask["messages"], tool_reply]},
        headers=headers,
    )
    assert r.status_code == 400 and "does not support tool calls" in r.text
    # tool_choice "none": no tools are offered, so any model may answer.
    r = client.post(
        "/v1/chat/completions",
        json={**ask, "tools": tools, "tool_choice": "none"},
        headers=headers,
    )
    assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"] == "You said: hi"


def test_v1_malformed_tool_messages_are_400(v1_client):
    client, headers = v1_client
    call = {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    for message in (
        {"role": "user", "content": None},
        {"role": "assistant"},
        {"role": "tool", "content": "no id"},
        {"role": "user", "content": "x", "tool_call_id": "c1"},
        {"role": "user", "content": "x", "tool_calls": [call]},
    ):
        body = {"model": "up/caller", "messages": [message]}
        r = client.post("/v1/chat/completions", json=body, headers=headers)
        assert r.status_code == 400, (message, r.text)
    ask = {"model": "up/caller", "messages": [{"role": "user", "content": "hi"}]}
    for unsupported in ({"tool_choice": "required"}, {"functions": [{"name": "f"}]}):
        r = client.post("/v1/chat/completions", json={**ask, **unsupported}, headers=headers)
        assert r.status_code == 400, (unsupported, r.text)
