"""/v1 over ASGI: models, completions (plain, streamed, n>1, stop, usage), errors, and rating a
completion by its id."""

import pytest

from conftest import new_user, sse_events


@pytest.fixture
def alice(client):
    return new_user(client, "alice@x.io")


def _chat(client, headers, **body):
    body.setdefault("model", "fake-model")
    body.setdefault("messages", [{"role": "user", "content": "hello world"}])
    return client.post("/v1/chat/completions", json=body, headers=headers)


def test_models(client, alice):
    data = client.get("/v1/models", headers=alice).json()
    assert data["object"] == "list"
    assert [m["id"] for m in data["data"]] == ["fake-model", "other-model"]


def test_completion_is_recorded_and_rateable(client, alice):
    r = _chat(
        client,
        alice,
        messages=[
            {"role": "system", "content": "Be nice."},
            {
                "role": "user",
                "content": [{"type": "text", "text": "hello "}, {"type": "text", "text": "there"}],
            },
        ],
        temperature=0,
        seed=11,
        user="end-user-42",
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["object"] == "chat.completion" and body["model"] == "fake-model"
    assert body["id"].startswith("chatcmpl-")
    choice = body["choices"][0]
    assert choice["message"] == {"role": "assistant", "content": "You said: hello there"}
    assert choice["finish_reason"] == "stop"
    assert body["usage"]["completion_tokens"] == 4
    assert body["usage"]["total_tokens"] == body["usage"]["prompt_tokens"] + 4

    r = client.post(f"/api/generations/{body['id']}/feedback", json={"rating": "up"}, headers=alice)
    assert r.status_code == 200 and r.json()["generation_id"] == choice["generation_id"]
    assert (
        client.delete(f"/api/generations/{body['id']}/feedback", headers=alice).status_code == 204
    )


def test_n_stop_and_max_tokens(client, alice):
    body = _chat(client, alice, n=3, seed=1).json()
    assert [c["index"] for c in body["choices"]] == [0, 1, 2]
    assert len({c["generation_id"] for c in body["choices"]}) == 3
    assert body["usage"]["completion_tokens"] == 3 * 4
    body = _chat(client, alice, stop=["world"]).json()
    assert body["choices"][0]["message"]["content"] == "You said: hello "
    body = _chat(client, alice, stop="said").json()
    assert body["choices"][0]["message"]["content"] == "You "
    body = _chat(client, alice, max_tokens=2).json()
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["choices"][0]["message"]["content"] == "You said:"


def test_streaming_format_with_usage(client, alice):
    r = _chat(client, alice, stream=True, stream_options={"include_usage": True}, n=2)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    events = sse_events(r.text)
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert len({c["id"] for c in chunks}) == 1
    usage = chunks[-1]
    assert usage["choices"] == [] and usage["usage"]["completion_tokens"] == 8
    for index in (0, 1):
        mine = [c["choices"][0] for c in chunks[:-1] if c["choices"][0]["index"] == index]
        assert mine[0]["delta"] == {"role": "assistant", "content": ""}
        text = "".join(ch["delta"].get("content", "") for ch in mine)
        assert text == "You said: hello world"
        assert mine[-1]["finish_reason"] == "stop"


def test_streaming_without_usage_has_no_usage_field(client, alice):
    events = sse_events(_chat(client, alice, stream=True).text)
    assert events[-1] == "[DONE]" and all("usage" not in e for e in events[:-1])


@pytest.mark.parametrize(
    "body",
    [
        {"temperature": 2.5},
        {"temperature": -1},
        {"top_p": 0},
        {"top_p": 1.5},
        {"max_tokens": 0},
        {"max_tokens": 5000},
        {"n": 0},
        {"n": 9},
        {"stop": ["a", "b", "c", "d", "e"]},
        {"messages": []},
        {"messages": [{"role": "tool", "content": "x"}]},
        {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": "x"}]}]},
        {"messages": [{"role": "user"}]},
        {"user_id": "someone-else"},
        {"stream": "maybe"},
    ],
)
def test_bad_parameters_are_400_with_a_message(client, alice, body):
    r = _chat(client, alice, **body)
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["type"] == "invalid_request_error" and err["message"]


def test_unknown_model_and_auth_errors(client, alice):
    r = _chat(client, alice, model="gpt-17")
    assert r.status_code == 404
    assert r.json()["error"] == {
        "message": "The model 'gpt-17' does not exist",
        "type": "not_found_error",
        "code": "model_not_found",
    }
    assert _chat(client, alice, model="gpt-17", stream=True).status_code == 404
    assert _chat(client, {"Authorization": "Bearer tk-wrong"}).status_code == 401
    assert _chat(client, {}).status_code == 401
