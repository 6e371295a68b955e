"""Bad sampling input is a 4xx, and a stream that fails always says so.

The attack: `"seed": -1` on `/v1/chat/completions` reached the embedded engine's RNG (a 500
with a traceback in the log); with `"stream": true` it was a 200 with one empty delta and no
finish reason or error event, because the stream handled only the engine's own errors. Now
seeds are bounded where they enter (0 to SEED_MAX, OpenAI's "integer" minus what n choices add
to it), and both streams end with an error event for any exception.

    .venv/bin/python -m pytest -q tests/security/test_stream_failures.py
"""

from __future__ import annotations

import json

import openai
import pytest
from fastapi.testclient import TestClient

from conftest import new_user, sse_events
from strict_fake_engines import BrokenEngine, SeededFakeEngine
from tandem.api.schemas import SEED_MAX

SECRET_DETAIL = "internal-detail-4711"
MESSAGES = [{"role": "user", "content": "one two three"}]


@pytest.fixture
def fake_catalog():
    from tandem.engines import ModelCatalog

    catalog = ModelCatalog(default_model="fake-model")
    catalog.add(SeededFakeEngine("fake-model"))
    catalog.add(BrokenEngine("broken-at-start", after_tokens=0, detail=SECRET_DETAIL))
    catalog.add(BrokenEngine("broken-midway", after_tokens=1, detail=SECRET_DETAIL))
    return catalog


@pytest.fixture
def openai_client(app, live_server):
    base = live_server(app)
    with TestClient(app) as tc:
        headers = new_user(tc, "alice@x.io")
    client = openai.OpenAI(
        base_url=f"{base}/v1", api_key=headers["Authorization"][7:], max_retries=0, timeout=20
    )
    yield client
    client.close()


@pytest.mark.parametrize("seed", [-1, -(2**63), SEED_MAX + 1, 2**63])
@pytest.mark.parametrize("stream", [False, True])
def test_out_of_range_seeds_are_a_400(openai_client, seed, stream):
    with pytest.raises(openai.BadRequestError) as err:
        openai_client.chat.completions.create(
            model="fake-model", messages=MESSAGES, seed=seed, stream=stream
        )
    assert "seed" in err.value.message


def test_the_largest_seed_works_with_the_most_choices(openai_client):
    r = openai_client.chat.completions.create(
        model="fake-model", messages=MESSAGES, seed=SEED_MAX, n=8, max_tokens=2
    )
    assert [c.finish_reason for c in r.choices] == ["length"] * 8
    r = openai_client.chat.completions.create(
        model="fake-model", messages=MESSAGES, seed=0, max_tokens=2
    )
    assert r.choices[0].message.content == "You said:"


@pytest.mark.parametrize("seed", [-1, SEED_MAX + 1])
def test_the_native_sampling_input_has_the_same_bounds(client, seed):
    alice = new_user(client, "alice@x.io")
    conv = client.post("/api/conversations", json={}, headers=alice).json()
    r = client.post(
        f"/api/conversations/{conv['id']}/messages",
        json={"content": "hi", "sampling": {"seed": seed}, "stream": True},
        headers=alice,
    )
    assert r.status_code == 422 and "seed" in r.json()["error"]["message"]
    r = client.post("/api/profiles", json={"name": "p", "sampling": {"seed": seed}}, headers=alice)
    assert r.status_code == 422 and "seed" in r.json()["error"]["message"]


@pytest.mark.parametrize("model", ["broken-at-start", "broken-midway"])
def test_a_failing_openai_stream_ends_with_an_error_event(openai_client, model):
    stream = openai_client.chat.completions.create(model=model, messages=MESSAGES, stream=True)
    seen: list[str] = []
    with pytest.raises(openai.APIError) as err:
        for chunk in stream:
            seen += [c.delta.content or "" for c in chunk.choices]
    assert err.value.body["code"] == "internal_error"
    assert SECRET_DETAIL not in err.value.message  # the detail is logged, never sent
    assert "".join(seen) == ("" if model == "broken-at-start" else "alpha")


@pytest.mark.parametrize("model", ["broken-at-start", "broken-midway"])
def test_a_failing_openai_stream_with_n_choices_ends_with_one_error(client, model):
    alice = new_user(client, "alice@x.io")
    body = {"model": model, "messages": MESSAGES, "stream": True, "n": 3}
    r = client.post("/v1/chat/completions", json=body, headers=alice)
    events = sse_events(r.text)
    assert r.status_code == 200
    assert events[-1]["error"]["code"] == "internal_error", events
    assert sum(1 for e in events if isinstance(e, dict) and "error" in e) == 1
    assert SECRET_DETAIL not in r.text


@pytest.mark.parametrize("model", ["broken-at-start", "broken-midway"])
def test_a_failing_native_stream_ends_with_an_error_event(app, model):
    # Served as uvicorn would: an exception escaping the stream must not reach the client.
    with TestClient(app, raise_server_exceptions=False) as client:
        alice = new_user(client, "alice@x.io")
        conv = client.post("/api/conversations", json={"model": model}, headers=alice).json()
        r = client.post(
            f"/api/conversations/{conv['id']}/messages",
            json={"content": "hi", "stream": True},
            headers=alice,
        )
    assert r.status_code == 200
    events = sse_events(r.text)
    assert events[0]["type"] == "user_message"
    assert events[-1]["type"] == "error", events
    assert events[-1]["error"]["code"] == "internal_error"
    assert SECRET_DETAIL not in r.text
    deltas = "".join(e["text"] for e in events if e["type"] == "delta")
    assert deltas == ("" if model == "broken-at-start" else "alpha")


def test_without_the_stream_the_same_failure_is_a_json_500(client):
    alice = new_user(client, "alice@x.io")
    body = {"model": "broken-midway", "messages": MESSAGES}
    with TestClient(client.app, raise_server_exceptions=False) as c:
        r = c.post("/v1/chat/completions", json=body, headers=alice)
    assert r.status_code == 500 and r.json()["error"]["code"] == "internal_error"
    assert SECRET_DETAIL not in json.dumps(r.json())
