"""The official `openai` Python client against a live uvicorn server (fake engines)."""

import httpx
import openai
import pytest
from fastapi.testclient import TestClient

from conftest import OTHER_ANSWER, new_user


@pytest.fixture
def client_for(app, live_server):
    """An OpenAI client with a fresh user's key against the app served on a real socket."""
    base = live_server(app)
    with TestClient(app) as tc:  # only to sign up; the app's lifespan is idempotent
        headers = new_user(tc, "alice@x.io")
    key = headers["Authorization"].removeprefix("Bearer ")
    client = openai.OpenAI(base_url=f"{base}/v1", api_key=key, max_retries=0, timeout=20)
    client.base = base
    client.key = key
    yield client
    client.close()


def test_list_models(client_for):
    assert [m.id for m in client_for.models.list()] == ["fake-model", "other-model"]


def test_non_streaming_chat_with_usage(client_for):
    r = client_for.chat.completions.create(
        model="fake-model", messages=[{"role": "user", "content": "hi there"}], temperature=0.2
    )
    assert r.choices[0].message.content == "You said: hi there"
    assert r.choices[0].finish_reason == "stop"
    assert r.usage.completion_tokens == 4 and r.usage.total_tokens > 4
    assert r.id.startswith("chatcmpl-")
    # The completion id lets the client attach feedback to the exact generation.
    fb = httpx.post(
        f"{client_for.base}/api/generations/{r.id}/feedback",
        json={"rating": "down", "reasons": ["not_factual"]},
        headers={"Authorization": f"Bearer {client_for.key}"},
    )
    assert fb.status_code == 200, fb.text


def test_streaming_multi_turn(client_for):
    history = [{"role": "system", "content": "Be brief."}]
    for question in ("first question", "second question"):
        history.append({"role": "user", "content": question})
        stream = client_for.chat.completions.create(
            model="fake-model",
            messages=history,
            stream=True,
            stream_options={"include_usage": True},
        )
        pieces, usage, finish = [], None, None
        for chunk in stream:
            if chunk.usage:
                usage = chunk.usage
            for choice in chunk.choices:
                pieces.append(choice.delta.content or "")
                finish = choice.finish_reason or finish
        answer = "".join(pieces)
        assert answer == f"You said: {question}"
        assert finish == "stop" and usage.completion_tokens == 4
        history.append({"role": "assistant", "content": answer})


def test_n_and_stop(client_for):
    r = client_for.chat.completions.create(
        model="other-model", messages=[{"role": "user", "content": "x"}], n=2, seed=3
    )
    assert [c.message.content for c in r.choices] == [OTHER_ANSWER, OTHER_ANSWER]
    r = client_for.chat.completions.create(
        model="fake-model", messages=[{"role": "user", "content": "a b c"}], stop=["b"]
    )
    assert r.choices[0].message.content == "You said: a "
    r = client_for.chat.completions.create(
        model="fake-model", messages=[{"role": "user", "content": "a b c"}], max_tokens=1
    )
    assert r.choices[0].finish_reason == "length"


def test_errors_map_to_openai_exceptions(client_for):
    messages = [{"role": "user", "content": "x"}]
    with pytest.raises(openai.NotFoundError) as err:
        client_for.chat.completions.create(model="nope", messages=messages)
    assert "does not exist" in err.value.message
    with pytest.raises(openai.BadRequestError):
        client_for.chat.completions.create(model="fake-model", messages=messages, temperature=5)
    with pytest.raises(openai.BadRequestError):
        client_for.chat.completions.create(model="fake-model", messages=messages, n=20)
    bad = openai.OpenAI(base_url=client_for.base_url, api_key="tk-bad", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.models.list()
    with pytest.raises(openai.AuthenticationError):
        bad.chat.completions.create(model="fake-model", messages=messages)


def test_abandoned_stream_is_recorded_as_cancelled(app, live_server, fake_catalog):
    """A client that stops reading mid-stream: the server records a cancelled generation."""
    import time

    from fake_engine import FakeEngine
    from tandem.store import GenerationRepo, UserRepo

    fake_catalog.add(FakeEngine("slow-model", script=[" ".join(["word"] * 200)], delay_s=0.02))
    base = live_server(app)
    with TestClient(app) as tc:
        headers = new_user(tc, "bob@x.io")
    client = openai.OpenAI(
        base_url=f"{base}/v1", api_key=headers["Authorization"][7:], max_retries=0
    )
    stream = client.chat.completions.create(
        model="slow-model", messages=[{"role": "user", "content": "go"}], stream=True
    )
    for i, _ in enumerate(stream):
        if i == 3:
            break
    stream.close()
    deadline = time.monotonic() + 10
    with app.state.session_factory() as session:
        user = UserRepo(session).get_by_email("bob@x.io")
        while time.monotonic() < deadline:
            rows = GenerationRepo(session).list(user.id)
            if rows:
                break
            time.sleep(0.05)
    assert rows and rows[0].finish_reason == "cancelled"
    assert 0 < rows[0].completion_tokens < 200
