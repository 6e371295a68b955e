"""The two Python readers of server-sent events (the OpenAI-compatible engine and the
simulator's client), both httpx-sse, against a loopback server that frames its events the
awkward ways the SSE spec allows: split across network writes (mid-line, mid-CRLF, mid-UTF-8
character), `data:` over several lines, comments, `id:`/`event:` fields, no space after the
colon. Plus the ways a stream goes wrong: an error event, an end before the terminal event,
a 200 that is not a stream.

    .venv/bin/python -m pytest -q tests/test_sse_clients.py
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tandem.core import Message, SamplingParams
from tandem.core.settings import BackendConfig
from tandem.engines.base import EngineError
from tandem.engines.openai_compat import OpenAICompatEngine
from tandem.simulate.client import Answer, ApiCallError, _call_streamed


def raw_server(body: bytes, content_type: bytes = b"text/event-stream", piece: int = 7):
    """An ASGI app answering every request with `body`, written `piece` bytes at a time with a
    pause between writes, so the client really reads it in fragments."""

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", content_type)],
            }
        )
        for at in range(0, len(body), piece):
            await send(
                {"type": "http.response.body", "body": body[at : at + piece], "more_body": True}
            )
            await asyncio.sleep(0.002)
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    return app


def run(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """asyncio.run in a thread of its own: a browser test earlier in the session leaves
    Playwright's event loop running in this one."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def data(payload: object) -> str:
    return "data: " + json.dumps(payload, ensure_ascii=False)


def delta(text: str) -> dict:
    return {"choices": [{"index": 0, "delta": {"content": text}}]}


# An OpenAI-style stream using everything the spec allows. The second event's JSON is split
# over two `data:` lines (the parser joins them with "\n", still valid JSON).
OPENAI_STREAM = (
    ": keep-alive\r\n\r\n"
    + "id: 1\r\n"
    + data(delta("Héllo"))
    + "\r\n\r\n"
    + 'event: message\ndata: {"choices": [{"index": 0,\n'
    + 'data: "delta": {"content": " wörld 🌍"}}]}\n\n'
    + 'data:{"choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]}\n\n'
    + ": usage follows\n"
    + data({"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2}})
    + "\n\ndata: [DONE]\n\n"
)


@pytest.fixture
def engine_for(live_server: Callable[..., str]) -> Callable[..., OpenAICompatEngine]:
    def make(body: str, **kwargs: object) -> OpenAICompatEngine:
        base = live_server(raw_server(body.encode(), **kwargs))
        return OpenAICompatEngine(BackendConfig(name="up", base_url=f"{base}/v1"), "m")

    return make


def complete(engine: OpenAICompatEngine):  # type: ignore[no-untyped-def]
    return run(engine.complete([Message.text("user", "hi")], SamplingParams()))


def test_the_engine_reads_split_multiline_and_commented_events(engine_for):
    for piece in (1, 7, 64):
        done = complete(engine_for(OPENAI_STREAM, piece=piece))
        assert done.text == "Héllo wörld 🌍", piece
        assert done.finish_reason == "length"
        assert (done.usage.prompt_tokens, done.usage.completion_tokens) == (3, 2)


def test_the_engine_reports_an_error_event(engine_for):
    body = data(delta("par")) + "\n\n" + data({"error": {"message": "model overloaded"}}) + "\n\n"
    with pytest.raises(EngineError, match="model overloaded"):
        complete(engine_for(body))
    vllm = data({"object": "error", "message": "bad seed", "code": 400}) + "\n\n"
    with pytest.raises(EngineError, match="bad seed"):
        complete(engine_for(vllm))


def test_the_engine_reports_a_stream_cut_before_its_end(engine_for):
    cut = data(delta("half an ans")) + "\n\n" + data(delta("wer"))  # no blank line, no [DONE]
    with pytest.raises(EngineError, match="ended the stream before the answer finished"):
        complete(engine_for(cut))


def test_the_engine_reports_an_answer_that_is_not_a_stream(engine_for):
    body = json.dumps({"choices": [{"message": {"content": "hi"}}]})
    with pytest.raises(EngineError, match="did not answer with a stream"):
        complete(engine_for(body, content_type=b"application/json"))


# tandem's own chat stream (docs/api.md): user_message, deltas, done.
DONE = {
    "type": "done",
    "message": {"id": "a1", "content": "Bonjour à toi", "generation_id": "g1"},
    "generation": {"model_version": "v1", "finish_reason": "stop"},
}
TANDEM_STREAM = (
    ": ping\n\n"
    + data({"type": "user_message", "message": {"id": "u1"}})
    + "\r\n\r\n"
    + 'data: {"type": "delta",\r\ndata:  "text": "Bonjour"}\r\n\r\n'
    + "retry: 1000\nid: 7\n"
    + data(DONE)
    + "\n\n"
)


def stream_turn(live_server, body: str, **kwargs: object):  # type: ignore[no-untyped-def]
    base = live_server(raw_server(body.encode(), **kwargs))

    async def go():  # type: ignore[no-untyped-def]
        async with httpx.AsyncClient(base_url=base) as http:
            headers = {"X-CSRF-Token": "t"}
            answer = await _call_streamed(http, "/api/c/1/messages", {"content": "hi"}, headers)
            assert headers == {"X-CSRF-Token": "t"}  # the caller's headers are left alone
            return answer

    return run(go())


def test_the_simulator_reads_split_multiline_and_commented_events(live_server):
    for piece in (1, 5, 100):
        answer = stream_turn(live_server, TANDEM_STREAM, piece=piece)
        assert answer == Answer("a1", "u1", "Bonjour à toi", "g1", "v1", "stop"), piece


def test_the_simulator_reports_error_events_cut_streams_and_non_streams(live_server):
    error = data({"type": "error", "error": {"message": "backend down", "code": "engine_error"}})
    with pytest.raises(ApiCallError) as failed:
        stream_turn(live_server, error + "\n\n")
    assert failed.value.status == "stream:engine_error"
    named = 'event: error\ndata: {"error": {"message": "revoked", "code": "invalid_api_key"}}\n\n'
    with pytest.raises(ApiCallError) as failed:
        stream_turn(live_server, named)
    assert failed.value.status == "stream:invalid_api_key"
    cut = data({"type": "user_message", "message": {"id": "u1"}}) + "\n\n" + data(DONE)
    with pytest.raises(ApiCallError) as failed:
        stream_turn(live_server, cut)  # the done event never got its blank line
    assert failed.value.status == "stream_incomplete"
    with pytest.raises(ApiCallError) as failed:
        stream_turn(live_server, json.dumps(DONE), content_type=b"application/json")
    assert failed.value.status == "not_a_stream"


# The browser's reader: api.js readEvents over eventsource-parser, fed the same framing.
READ_EVENTS = """async ([chunks, throwOn]) => {
  const { readEvents } = await import("/static/api.js");
  const bytes = chunks.map((c) => new Uint8Array(c));
  let cancelled = false;
  const body = new ReadableStream({
    pull(controller) {
      if (bytes.length) controller.enqueue(bytes.shift());
      else controller.close();
    },
    cancel() { cancelled = true; },
  });
  const seen = [];
  try {
    await readEvents(new Response(body), (event) => {
      seen.push(event);
      if (event.type === throwOn) throw new Error(`stopped at ${throwOn}`);
    });
  } catch (err) {
    return { seen, error: err.message, cancelled };
  }
  return { seen, error: null, cancelled };
}"""


def pieces(text: str, size: int) -> list[list[int]]:
    """`text` as UTF-8 in `size`-byte pieces: split mid-line and mid-character."""
    raw = text.encode()
    return [list(raw[i : i + size]) for i in range(0, len(raw), size)]


@pytest.mark.browser
def test_the_browser_reads_split_multiline_and_commented_events(web):
    page = web.signed_in("ada@example.com")
    for piece in (1, 3, 50):
        out = page.evaluate(READ_EVENTS, [pieces(TANDEM_STREAM, piece), None])
        assert out["error"] is None
        assert [e["type"] for e in out["seen"]] == ["user_message", "delta", "done"], piece
        assert out["seen"][1]["text"] == "Bonjour"
        assert out["seen"][2]["message"]["content"] == "Bonjour à toi"
    # A named `event: error` gets its type; what onEvent throws ends the read and the body.
    named = 'event: error\ndata: {"error": {"message": "revoked"}}\n\n' + data(DONE) + "\n\n"
    out = page.evaluate(READ_EVENTS, [pieces(named, 1000), "error"])
    assert out == {
        "seen": [{"type": "error", "error": {"message": "revoked"}}],
        "error": "stopped at error",
        "cancelled": True,
    }
    # A malformed event is skipped; an unterminated last event is not delivered (the caller
    # then reports the answer as cut off).
    out = page.evaluate(READ_EVENTS, [pieces("data: {oops\n\n" + data(DONE), 1000), None])
    assert out == {"seen": [], "error": None, "cancelled": False}
