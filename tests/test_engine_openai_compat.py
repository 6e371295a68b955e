"""An OpenAI-compatible server as an engine, tested against a real one: tandem itself (with
fake engines) served on loopback, which speaks the same API vLLM and Ollama do."""

import asyncio
import dataclasses

import pytest
from fastapi.testclient import TestClient

from conftest import new_user
from tandem.core import Message, SamplingParams
from tandem.core.settings import BackendConfig
from tandem.engines.base import EngineError
from tandem.engines.openai_compat import OpenAICompatEngine, list_remote_models
from tandem.engines.setup import build_catalog


@pytest.fixture
def upstream(app, live_server) -> BackendConfig:
    base = live_server(app)
    with TestClient(app) as tc:
        key = new_user(tc, "svc@example.com")["Authorization"].removeprefix("Bearer ")
    return BackendConfig(name="up", base_url=f"{base}/v1", api_key=key)


def test_remote_models_are_listed_under_the_backend_name(upstream, settings):
    assert list_remote_models(upstream) == ["fake-model", "other-model"]
    catalog = build_catalog(dataclasses.replace(settings, backends=(upstream,)))
    assert [m.id for m in catalog.list()] == ["up/fake-model", "up/other-model"]
    assert catalog.get("up/other-model").backend == "openai"


def test_streams_text_usage_and_forwards_sampling(upstream):
    engine = OpenAICompatEngine(upstream, "fake-model")
    hello = [Message.text("user", "hello there friend")]
    done = asyncio.run(engine.complete(hello, SamplingParams(max_tokens=50)))
    assert done.text == "You said: hello there friend"
    assert done.finish_reason == "stop"
    assert done.usage.completion_tokens == 5
    capped = asyncio.run(engine.complete(hello, SamplingParams(max_tokens=2)))
    assert (capped.text, capped.finish_reason) == ("You said:", "length")
    stopped = asyncio.run(engine.complete(hello, SamplingParams(stop=("there",))))
    assert stopped.text == "You said: hello "


def test_a_rejected_key_or_an_unreachable_server_is_an_engine_error(upstream):
    bad_key = OpenAICompatEngine(dataclasses.replace(upstream, api_key="tk-wrong"), "fake-model")
    with pytest.raises(EngineError, match="401"):
        asyncio.run(bad_key.complete([Message.text("user", "hi")], SamplingParams()))
    gone = OpenAICompatEngine(
        BackendConfig(name="gone", base_url="http://127.0.0.1:9/v1"), "fake-model"
    )
    with pytest.raises(EngineError, match="unreachable"):
        asyncio.run(gone.complete([Message.text("user", "hi")], SamplingParams()))


def test_an_unreachable_backend_does_not_stop_the_catalog(settings):
    down = BackendConfig(name="down", base_url="http://127.0.0.1:9/v1")
    catalog = build_catalog(dataclasses.replace(settings, backends=(down,)))
    assert catalog.list() == []


def test_continuing_an_answer_asks_the_server_to_go_on_writing_it():
    """Continue on a remote engine: vLLM's documented chat-template options."""
    engine = OpenAICompatEngine(BackendConfig(name="up", base_url="http://127.0.0.1:9/v1"), "m")
    messages = [Message.text("user", "Count"), Message.text("assistant", "1, 2, 3")]
    body = engine._body(messages, SamplingParams(), continue_final=True)
    assert body["continue_final_message"] is True and body["add_generation_prompt"] is False
    assert body["messages"][-1] == {"role": "assistant", "content": "1, 2, 3"}
    assert "continue_final_message" not in engine._body(messages, SamplingParams())
