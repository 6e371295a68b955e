"""Memory: CRUD, "remember that …" saved before the answer and listed in the system message
the model sees, the per-chat and per-user switches, and "remember this message"."""

from conftest import new_user, sse_events

HEADING = "Things the user asked you to remember:"


def _system_seen(fake_catalog) -> str:
    """The system message of the fake model's latest call ("" when it got none)."""
    messages, _ = fake_catalog.get("fake-model").calls[-1]
    return next((m.content for m in messages if m.role == "system"), "")


def _chat(client, headers, **fields):
    r = client.post("/api/conversations", json=fields, headers=headers)
    assert r.status_code == 201, r.text
    return r.json()


def _send(client, headers, conv_id, content, **extra):
    r = client.post(
        f"/api/conversations/{conv_id}/messages",
        json={"content": content, **extra},
        headers=headers,
    )
    assert r.status_code == 200, r.text
    return r


def test_memory_crud_and_limits(client):
    alice = new_user(client, "alice@x.io")
    r = client.post("/api/memories", json={"text": "  I live in Lyon  "}, headers=alice)
    assert r.status_code == 201
    mem = r.json()
    assert mem["text"] == "I live in Lyon"
    client.post("/api/memories", json={"text": "I have a cat"}, headers=alice)
    assert [m["text"] for m in client.get("/api/memories", headers=alice).json()] == [
        "I live in Lyon",
        "I have a cat",
    ]
    r = client.patch(f"/api/memories/{mem['id']}", json={"text": "I live in Nice"}, headers=alice)
    assert r.json()["text"] == "I live in Nice"
    assert client.delete(f"/api/memories/{mem['id']}", headers=alice).status_code == 204
    assert [m["text"] for m in client.get("/api/memories", headers=alice).json()] == [
        "I have a cat"
    ]
    assert client.delete(f"/api/memories/{mem['id']}", headers=alice).status_code == 404
    for bad in ({"text": ""}, {"text": "x" * 1001}, {"text": "ok", "user_id": "x"}, {}):
        assert client.post("/api/memories", json=bad, headers=alice).status_code == 422
    r = client.post("/api/memories", json={"text": "   "}, headers=alice)
    assert r.status_code == 422 and r.json()["error"]["message"]


def test_remember_that_is_saved_and_reaches_the_prompt_of_the_same_turn(client, fake_catalog):
    alice = new_user(client, "alice@x.io")
    client.put("/api/custom-instructions", json={"about_user": "I am a nurse."}, headers=alice)
    conv = _chat(client, alice)
    turn = _send(client, alice, conv["id"], "Please remember that my cat is called Tom").json()
    saved = turn["memory_saved"]
    assert saved["text"] == "my cat is called Tom"
    assert [m["id"] for m in client.get("/api/memories", headers=alice).json()] == [saved["id"]]
    system = _system_seen(fake_catalog)
    # After the custom instructions, as a list.
    assert system.index("About the user: I am a nurse.") < system.index(HEADING)
    assert f"{HEADING}\n- my cat is called Tom" in system

    # Every later chat sees it too; an ordinary message saves nothing.
    other = _chat(client, alice)
    turn = _send(client, alice, other["id"], "What is my cat called?").json()
    assert turn["memory_saved"] is None
    assert "- my cat is called Tom" in _system_seen(fake_catalog)
    assert len(client.get("/api/memories", headers=alice).json()) == 1


def test_remember_forms_and_the_streamed_final_event(client, fake_catalog):
    alice = new_user(client, "alice@x.io")
    conv = _chat(client, alice)
    for content, expected in [
        ("REMEMBER: I prefer metric units", "I prefer metric units"),
        ("remember I am allergic to nuts", "I am allergic to nuts"),
        ("Oh, and don't forget that my birthday is 3 May", "my birthday is 3 May"),
    ]:
        r = _send(client, alice, conv["id"], content, stream=True)
        done = sse_events(r.text)[-1]
        assert done["type"] == "done" and done["memory_saved"]["text"] == expected, done
    texts = [m["text"] for m in client.get("/api/memories", headers=alice).json()]
    assert texts == ["I prefer metric units", "I am allergic to nuts", "my birthday is 3 May"]
    assert "- my birthday is 3 May" in _system_seen(fake_catalog)


def test_a_chat_with_memory_off_neither_sees_nor_saves_memories(client, fake_catalog):
    alice = new_user(client, "alice@x.io")
    client.post("/api/memories", json={"text": "I live in Lyon"}, headers=alice)
    private = _chat(client, alice, use_memory=False)
    assert private["use_memory"] is False
    turn = _send(client, alice, private["id"], "remember that I hate olives").json()
    assert turn["memory_saved"] is None
    assert HEADING not in _system_seen(fake_catalog)
    assert len(client.get("/api/memories", headers=alice).json()) == 1

    # Switching it back on for that chat brings the memories in.
    r = client.patch(
        f"/api/conversations/{private['id']}", json={"use_memory": True}, headers=alice
    )
    assert r.json()["use_memory"] is True
    _send(client, alice, private["id"], "hello")
    assert "- I live in Lyon" in _system_seen(fake_catalog)


def test_the_user_switch_turns_memory_off_everywhere(client, fake_catalog):
    alice = new_user(client, "alice@x.io")
    assert client.get("/api/auth/me", headers=alice).json()["memory_enabled"] is True
    client.post("/api/memories", json={"text": "I live in Lyon"}, headers=alice)
    r = client.patch("/api/auth/me", json={"memory_enabled": False}, headers=alice)
    assert r.json()["memory_enabled"] is False
    conv = _chat(client, alice)
    assert conv["use_memory"] is True  # the chat's own switch is still on
    turn = _send(client, alice, conv["id"], "remember that I hate olives").json()
    assert turn["memory_saved"] is None and HEADING not in _system_seen(fake_catalog)
    client.patch("/api/auth/me", json={"memory_enabled": True}, headers=alice)
    _send(client, alice, conv["id"], "hi")
    assert "- I live in Lyon" in _system_seen(fake_catalog)


def test_remember_a_message(client):
    alice = new_user(client, "alice@x.io")
    conv = _chat(client, alice)
    turn = _send(client, alice, conv["id"], "x" * 1500).json()
    r = client.post(f"/api/messages/{turn['user_message']['id']}/remember", headers=alice)
    assert r.status_code == 201 and r.json()["text"] == "x" * 1000
    r = client.post(f"/api/messages/{turn['assistant_message']['id']}/remember", headers=alice)
    assert r.json()["text"].startswith("You said: xxx")
    assert len(client.get("/api/memories", headers=alice).json()) == 2
    assert client.post(f"/api/messages/{'0' * 32}/remember", headers=alice).status_code == 404
