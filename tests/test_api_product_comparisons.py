"""A share of ordinary turns answered as blind comparisons (admin `comparison_rate`), the
admin settings that drive it, and the vote making the chosen answer current."""

from conftest import OTHER_ANSWER, new_user, sse_events


def _setup(client):
    admin = new_user(client, "admin@x.io")
    alice = new_user(client, "alice@x.io")
    conv = client.post("/api/conversations", json={}, headers=alice).json()
    return admin, alice, conv


def test_site_settings_defaults_validation_and_admin_only(client):
    admin, alice, _ = _setup(client)
    assert client.get("/api/admin/settings", headers=admin).json() == {
        "allow_signup": True,
        "comparison_rate": 0.0,
        "comparison_models": None,
    }
    for bad in (
        {"comparison_rate": 1.5},
        {"comparison_rate": -0.1},
        {"comparison_models": ["fake-model"]},
        {"comparison_models": ["fake-model", "other-model", "fake-model"]},
        {"comparison_models": ["fake-model", "no-such-model"]},
        {"surprise": 1},
    ):
        r = client.put("/api/admin/settings", json=bad, headers=admin)
        assert r.status_code == 422, (bad, r.text)
    r = client.put("/api/admin/settings", json={"comparison_rate": 0.25}, headers=alice)
    assert r.status_code == 403
    r = client.put(
        "/api/admin/settings",
        json={"comparison_rate": 0.25, "comparison_models": ["fake-model", "other-model"]},
        headers=admin,
    )
    assert r.json() == {
        "allow_signup": True,
        "comparison_rate": 0.25,
        "comparison_models": ["fake-model", "other-model"],
    }
    # Fields not sent keep their value; an explicit null resets the models.
    r = client.put("/api/admin/settings", json={"comparison_models": None}, headers=admin)
    assert r.json()["comparison_rate"] == 0.25 and r.json()["comparison_models"] is None


def test_rate_zero_answers_normally(client):
    _, alice, conv = _setup(client)
    for _ in range(3):
        r = client.post(
            f"/api/conversations/{conv['id']}/messages", json={"content": "hi"}, headers=alice
        )
        assert "assistant_message" in r.json() and "comparison" not in r.json()
    assert client.get("/api/comparisons", headers=alice).json() == []


def test_rate_one_answers_with_a_blind_comparison_and_the_vote_continues(client):
    admin, alice, conv = _setup(client)
    client.put(
        "/api/admin/settings",
        json={"comparison_rate": 1.0, "comparison_models": ["fake-model", "other-model"]},
        headers=admin,
    )
    r = client.post(
        f"/api/conversations/{conv['id']}/messages", json={"content": "Hello"}, headers=alice
    )
    assert r.status_code == 200, r.text
    comp = r.json()["comparison"]
    assert "assistant_message" not in r.json()
    assert {comp["a"]["content"], comp["b"]["content"]} == {"You said: Hello", OTHER_ANSWER}
    assert comp["a"]["model"] is None and comp["b"]["model"] is None  # blind until the vote
    # Until the vote the chat continues from answer A (the sides are shuffled).
    tree = client.get(f"/api/conversations/{conv['id']}", headers=alice).json()
    assert tree["conversation"]["current_message_id"] == comp["a"]["message_id"]

    voted = client.post(
        f"/api/comparisons/{comp['id']}/vote", json={"verdict": "b"}, headers=alice
    ).json()
    assert {voted["a"]["model"], voted["b"]["model"]} == {"fake-model", "other-model"}
    tree = client.get(f"/api/conversations/{conv['id']}", headers=alice).json()
    assert tree["conversation"]["current_message_id"] == comp["b"]["message_id"]


def test_rate_one_streamed_streams_both_sides_then_the_comparison(client, fake_catalog):
    admin, alice, conv = _setup(client)
    client.put("/api/admin/settings", json={"comparison_rate": 1.0}, headers=alice)  # refused
    client.put("/api/admin/settings", json={"comparison_rate": 1.0}, headers=admin)
    r = client.post(
        f"/api/conversations/{conv['id']}/messages",
        json={"content": "remember that I like tea", "stream": True},
        headers=alice,
    )
    events = sse_events(r.text)
    kinds = [e["type"] for e in events]
    assert kinds[:2] == ["user_message", "comparison_start"] and kinds[-1] == "comparison"
    assert set(kinds[2:-1]) == {"comparison_delta"}
    streamed = {side: "".join(e["text"] for e in events if e.get("side") == side) for side in "ab"}
    final = events[-1]
    comp = final["comparison"]
    # Both sides stream, each exactly the answer that was stored.
    assert streamed == {"a": comp["a"]["content"], "b": comp["b"]["content"]}
    # Default models: two samples of the chat's model.
    assert comp["a"]["content"] == comp["b"]["content"] == "You said: remember that I like tea"
    assert comp["parent_message_id"] == events[0]["message"]["id"]
    assert final["memory_saved"]["text"] == "I like tea"
    assert len(fake_catalog.get("fake-model").calls) == 2


def test_an_unvoted_comparison_stays_votable_after_the_chat_moves_on(client):
    admin, alice, conv = _setup(client)
    client.put(
        "/api/admin/settings",
        json={"comparison_rate": 1.0, "comparison_models": ["fake-model", "other-model"]},
        headers=admin,
    )
    url = f"/api/conversations/{conv['id']}/messages"
    comp = client.post(url, json={"content": "Hello"}, headers=alice).json()["comparison"]
    client.put("/api/admin/settings", json={"comparison_rate": 0.0}, headers=admin)

    # The follow-up continues answer A, not the question: no sibling of the hidden answers.
    turn = client.post(url, json={"content": "And then?"}, headers=alice).json()
    assert turn["user_message"]["parent_id"] == comp["a"]["message_id"]
    listed = client.get(f"/api/comparisons?conversation_id={conv['id']}", headers=alice).json()
    assert [(c["id"], c["verdict"]) for c in listed] == [(comp["id"], None)]

    # Voted later, the verdict counts and the chat stays where the user is.
    voted = client.post(f"/api/comparisons/{comp['id']}/vote", json={"verdict": "b"}, headers=alice)
    assert voted.status_code == 200 and voted.json()["verdict"] == "b"
    tree = client.get(f"/api/conversations/{conv['id']}", headers=alice).json()
    assert tree["conversation"]["current_message_id"] == turn["assistant_message"]["id"]
    other = client.get(f"/api/comparisons?conversation_id={conv['id']}", headers=alice).json()
    assert other[0]["verdict"] == "b"
    # Another user's conversation id lists nothing.
    bob = new_user(client, "bob@x.io")
    assert client.get(f"/api/comparisons?conversation_id={conv['id']}", headers=bob).json() == []


def test_explicit_comparison_streams_both_sides(client):
    _, alice, conv = _setup(client)
    r = client.post(
        f"/api/conversations/{conv['id']}/comparisons",
        json={"content": "Which?", "model_b": "other-model", "stream": True},
        headers=alice,
    )
    events = sse_events(r.text)
    sides = {e["side"] for e in events if e["type"] == "comparison_delta"}
    assert sides == {"a", "b"}
    comp = events[-1]["comparison"]
    assert {comp["a"]["content"], comp["b"]["content"]} == {"You said: Which?", OTHER_ANSWER}
    # JSON (not streamed): the comparison itself, as before.
    r = client.post(
        f"/api/conversations/{conv['id']}/comparisons",
        json={"parent_id": comp["parent_message_id"]},
        headers=alice,
    )
    assert r.status_code == 201 and r.json()["parent_message_id"] == comp["parent_message_id"]


def test_a_removed_comparison_model_falls_back_to_two_samples(client, fake_catalog):
    admin, alice, conv = _setup(client)
    client.put(
        "/api/admin/settings",
        json={"comparison_rate": 1.0, "comparison_models": ["fake-model", "other-model"]},
        headers=admin,
    )
    fake_catalog.remove("other-model")
    r = client.post(
        f"/api/conversations/{conv['id']}/messages", json={"content": "Hi"}, headers=alice
    )
    assert r.status_code == 200, r.text
    comp = r.json()["comparison"]
    assert comp["a"]["content"] == comp["b"]["content"] == "You said: Hi"
