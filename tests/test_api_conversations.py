"""The native chat API end to end with fake engines; runs on SQLite and PostgreSQL."""

import pytest

from conftest import OTHER_ANSWER, new_user, sse_events


@pytest.fixture
def api_db_url(db_url):
    return db_url  # every test here runs on SQLite and (marked postgres) on PostgreSQL


@pytest.fixture
def alice(client):
    return new_user(client, "alice@x.io")


def _conv(client, headers, **body):
    r = client.post("/api/conversations", json=body, headers=headers)
    assert r.status_code == 201, r.text
    return r.json()


def _send(client, headers, conv_id, content, **body):
    r = client.post(
        f"/api/conversations/{conv_id}/messages",
        json={"content": content, **body},
        headers=headers,
    )
    assert r.status_code == 200, r.text
    return r.json()


def test_conversation_crud_search_and_newest_first(client, alice):
    a = _conv(client, alice, title="Python help")
    b = _conv(client, alice, title="Dinner ideas")
    listed = client.get("/api/conversations", headers=alice).json()
    assert [c["id"] for c in listed] == [b["id"], a["id"]]
    assert [c["id"] for c in client.get("/api/conversations?q=python", headers=alice).json()] == [
        a["id"]
    ]
    r = client.patch(f"/api/conversations/{a['id']}", json={"title": "Renamed"}, headers=alice)
    assert r.json()["title"] == "Renamed"
    assert client.delete(f"/api/conversations/{a['id']}", headers=alice).status_code == 204
    assert client.get(f"/api/conversations/{a['id']}", headers=alice).status_code == 404
    assert [c["id"] for c in client.get("/api/conversations", headers=alice).json()] == [b["id"]]


def test_bad_conversation_input(client, alice):
    for body in (
        {"title": "x" * 301},
        {"model": ""},
        {"system_prompt": 5},
        {"owner_id": "someone"},
    ):
        r = client.post("/api/conversations", json=body, headers=alice)
        assert r.status_code == 422 and r.json()["error"]["message"], body
    r = client.post("/api/conversations", json={"model": "nope"}, headers=alice)
    assert r.status_code == 404 and r.json()["error"]["code"] == "model_not_found"
    assert (
        client.post("/api/conversations", json={"profile_id": "p"}, headers=alice).status_code
        == 404
    )
    assert client.get("/api/conversations?limit=0", headers=alice).status_code == 422
    conv = _conv(client, alice)
    url = f"/api/conversations/{conv['id']}/messages"
    bad = [
        {"content": ""},
        {},
        {"content": "x", "sampling": {"temperature": 3}},
        {"content": "x", "sampling": {"stop": ["a"] * 5}},
    ]
    for body in bad:
        assert client.post(url, json=body, headers=alice).status_code == 422, body
    r = client.post(url, json={"content": "x", "model": "nope"}, headers=alice)
    assert r.status_code == 404
    r = client.post(url, json={"content": "x", "parent_id": "missing"}, headers=alice)
    assert r.status_code == 404
    assert client.get(f"/api/conversations/{conv['id']}", headers=alice).json()["messages"] == []


def test_multi_turn_regenerate_edit_and_tree(client, alice):
    conv = _conv(client, alice)
    first = _send(client, alice, conv["id"], "hello", sampling={"seed": 5, "temperature": 0})
    assert first["assistant_message"]["content"] == "You said: hello"
    gen = first["generation"]
    assert gen["model_version"] == "fake-model" and gen["seed"] == 5
    assert gen["finish_reason"] == "stop" and gen["completion_tokens"] == 3
    second = _send(client, alice, conv["id"], "and more")
    assert second["user_message"]["parent_id"] == first["assistant_message"]["id"]

    regen = client.post(
        f"/api/messages/{second['assistant_message']['id']}/regenerate",
        json={"model": "other-model"},
        headers=alice,
    ).json()
    assert regen["user_message"] is None
    assert regen["assistant_message"]["content"] == OTHER_ANSWER
    assert regen["assistant_message"]["parent_id"] == second["user_message"]["id"]

    edited = client.post(
        f"/api/messages/{second['user_message']['id']}/edit",
        json={"content": "and less"},
        headers=alice,
    ).json()
    assert edited["user_message"]["parent_id"] == first["assistant_message"]["id"]
    assert edited["assistant_message"]["content"] == "You said: and less"

    tree = client.get(f"/api/conversations/{conv['id']}", headers=alice).json()
    assert tree["conversation"]["title"] == "hello"
    assert tree["conversation"]["current_message_id"] == edited["assistant_message"]["id"]
    assert len(tree["messages"]) == 7
    branch = client.get(f"/api/conversations/{conv['id']}/branch", headers=alice).json()
    expected = ["hello", "You said: hello", "and less", "You said: and less"]
    assert [m["content"] for m in branch] == expected
    r = client.post(
        f"/api/messages/{first['user_message']['id']}/regenerate", json={}, headers=alice
    )
    assert r.status_code == 422


def test_streaming_a_turn(client, alice):
    conv = _conv(client, alice)
    with client.stream(
        "POST",
        f"/api/conversations/{conv['id']}/messages",
        json={"content": "stream this please", "stream": True},
        headers=alice,
    ) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        events = sse_events(r.read().decode())
    assert events[0]["type"] == "user_message"
    deltas = [e["text"] for e in events if e["type"] == "delta"]
    assert "".join(deltas) == "You said: stream this please" and len(deltas) == 5
    done = events[-1]
    assert done["type"] == "done" and done["generation"]["finish_reason"] == "stop"
    assert done["message"]["content"] == "You said: stream this please"


def test_profiles_and_custom_instructions_shape_the_prompt(client, alice, fake_catalog):
    r = client.put(
        "/api/custom-instructions",
        json={"about_user": "I am a nurse.", "response_style": "Short.", "enabled": True},
        headers=alice,
    )
    assert r.status_code == 200 and r.json()["about_user"] == "I am a nurse."
    assert client.get("/api/custom-instructions", headers=alice).json()["enabled"] is True
    profile = client.post(
        "/api/profiles",
        json={
            "name": "Tutor",
            "instructions": "Be Socratic.",
            "starters": ["Teach me"],
            "sampling": {"max_tokens": 2},
        },
        headers=alice,
    ).json()
    assert profile["is_mine"] and profile["sampling"] == {"max_tokens": 2}
    conv = _conv(client, alice, profile_id=profile["id"], system_prompt="In French.")
    turn = _send(client, alice, conv["id"], "one two three")
    assert turn["generation"]["finish_reason"] == "length"
    engine = fake_catalog.get("fake-model")
    system = engine.calls[-1][0][0]
    assert system.role == "system" and system.content == (
        "About the user: I am a nurse.\n\nHow to respond: Short.\n\nBe Socratic.\n\nIn French."
    )

    r = client.patch(f"/api/profiles/{profile['id']}", json={"name": "Math"}, headers=alice)
    assert r.json()["name"] == "Math" and r.json()["instructions"] == "Be Socratic."
    assert [p["name"] for p in client.get("/api/profiles", headers=alice).json()] == ["Math"]
    assert client.post("/api/profiles", json={"name": ""}, headers=alice).status_code == 422
    r = client.post("/api/profiles", json={"name": "x", "starters": ["s"] * 11}, headers=alice)
    assert r.status_code == 422
    assert client.delete(f"/api/profiles/{profile['id']}", headers=alice).status_code == 204
    assert client.get(f"/api/profiles/{profile['id']}", headers=alice).status_code == 404


def test_feedback_rate_change_withdraw_list(client, alice):
    conv = _conv(client, alice)
    turn = _send(client, alice, conv["id"], "rate me")
    mid = turn["assistant_message"]["id"]
    url = f"/api/messages/{mid}/feedback"
    r = client.post(
        url, json={"rating": "down", "reasons": ["too_long"], "comment": "meh"}, headers=alice
    )
    assert r.status_code == 200
    first = r.json()
    assert first["generation_id"] == turn["generation"]["id"] and first["reasons"] == ["too_long"]
    second = client.post(url, json={"rating": "up"}, headers=alice).json()
    assert client.get(url, headers=alice).json()["id"] == second["id"]
    assert [f["id"] for f in client.get("/api/feedback", headers=alice).json()] == [second["id"]]
    history = client.get("/api/feedback?history=true", headers=alice).json()
    assert {f["id"] for f in history} == {first["id"], second["id"]}

    bad = [
        {"rating": "meh"},
        {"rating": "up", "reasons": ["boring"]},
        {"rating": "up", "comment": "x" * 2001},
        {"rating": "up", "user_id": "x"},
    ]
    for body in bad:
        assert client.post(url, json=body, headers=alice).status_code == 422, body
    user_msg = turn["user_message"]["id"]
    r = client.post(f"/api/messages/{user_msg}/feedback", json={"rating": "up"}, headers=alice)
    assert r.status_code == 422

    assert client.delete(url, headers=alice).status_code == 204
    assert client.get("/api/feedback", headers=alice).json() == []
    assert client.delete(url, headers=alice).status_code == 404
    assert client.get(url, headers=alice).status_code == 404

    again = client.post(url, json={"rating": "down", "reasons": ["unsafe"]}, headers=alice).json()
    assert client.delete(f"/api/feedback/{again['id']}", headers=alice).status_code == 204
    assert client.delete(f"/api/feedback/{again['id']}", headers=alice).status_code == 404


def test_blind_comparison_and_vote(client, alice):
    conv = _conv(client, alice)
    r = client.post(
        f"/api/conversations/{conv['id']}/comparisons",
        json={"content": "compare", "model_a": "fake-model", "model_b": "other-model"},
        headers=alice,
    )
    assert r.status_code == 201, r.text
    comp = r.json()
    assert comp["verdict"] is None and comp["a"]["model"] is None and comp["b"]["model"] is None
    assert {comp["a"]["content"], comp["b"]["content"]} == {"You said: compare", OTHER_ANSWER}
    assert client.get(f"/api/comparisons/{comp['id']}", headers=alice).json()["a"]["model"] is None
    vote_url = f"/api/comparisons/{comp['id']}/vote"
    assert client.post(vote_url, json={"verdict": "c"}, headers=alice).status_code == 422
    voted = client.post(vote_url, json={"verdict": "b"}, headers=alice).json()
    assert voted["verdict"] == "b" and voted["voted_at"]
    assert {voted["a"]["model"], voted["b"]["model"]} == {"fake-model", "other-model"}
    assert client.post(vote_url, json={"verdict": "a"}, headers=alice).status_code == 409
    tree = client.get(f"/api/conversations/{conv['id']}", headers=alice).json()
    assert tree["conversation"]["current_message_id"] == comp["b"]["message_id"]
    assert [c["id"] for c in client.get("/api/comparisons", headers=alice).json()] == [comp["id"]]

    # Two samples of one model, answering the same question again.
    r = client.post(
        f"/api/conversations/{conv['id']}/comparisons",
        json={"parent_id": comp["parent_message_id"]},
        headers=alice,
    )
    assert r.status_code == 201
    r = client.post(f"/api/conversations/{conv['id']}/comparisons", json={}, headers=alice)
    assert r.status_code == 422
