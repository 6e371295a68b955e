"""Improved answers: the rewrite is a sibling of the answer, becomes the current message, is
stored as a signal against the judged generation, and withdrawing keeps the row."""

from conftest import new_user


def _turn(client, headers, content="What is 2+2?"):
    conv = client.post("/api/conversations", json={}, headers=headers).json()
    r = client.post(
        f"/api/conversations/{conv['id']}/messages", json={"content": content}, headers=headers
    )
    return conv, r.json()


def test_improve_creates_a_current_sibling_and_a_signal(client):
    alice = new_user(client, "alice@x.io")
    conv, turn = _turn(client, alice)
    answer = turn["assistant_message"]
    r = client.post(
        f"/api/messages/{answer['id']}/improve", json={"content": "2+2 is 4."}, headers=alice
    )
    assert r.status_code == 201, r.text
    improvement, message = r.json()["improvement"], r.json()["message"]
    assert message["parent_id"] == answer["parent_id"] and message["id"] != answer["id"]
    assert message["role"] == "assistant" and message["generation_id"] is None
    assert message["content"] == "2+2 is 4." and message["improved_from"] == answer["id"]
    assert message["parts"] == [
        {"type": "text", "text": "2+2 is 4.", "data": {"improved_from": answer["id"]}}
    ]
    assert improvement["original_message_id"] == answer["id"]
    assert improvement["original_generation_id"] == turn["generation"]["id"]
    assert improvement["improved_message_id"] == message["id"]
    assert improvement["text"] == "2+2 is 4." and improvement["withdrawn_at"] is None

    tree = client.get(f"/api/conversations/{conv['id']}", headers=alice).json()
    assert tree["conversation"]["current_message_id"] == message["id"]
    by_id = {m["id"]: m for m in tree["messages"]}
    assert by_id[answer["id"]]["improved_from"] is None  # the original is untouched
    branch = client.get(f"/api/conversations/{conv['id']}/branch", headers=alice).json()
    assert [m["content"] for m in branch] == ["What is 2+2?", "2+2 is 4."]
    assert [i["id"] for i in client.get("/api/improvements", headers=alice).json()] == [
        improvement["id"]
    ]


def test_the_next_turn_continues_from_the_improved_answer(client, fake_catalog):
    alice = new_user(client, "alice@x.io")
    conv, turn = _turn(client, alice)
    client.post(
        f"/api/messages/{turn['assistant_message']['id']}/improve",
        json={"content": "Four."},
        headers=alice,
    )
    client.post(
        f"/api/conversations/{conv['id']}/messages", json={"content": "Thanks"}, headers=alice
    )
    seen, _ = fake_catalog.get("fake-model").calls[-1]
    assert [m.content for m in seen] == ["What is 2+2?", "Four.", "Thanks"]


def test_withdraw_keeps_the_row_and_improving_a_rewrite_replaces_it(client):
    alice = new_user(client, "alice@x.io")
    _, turn = _turn(client, alice)
    answer_id = turn["assistant_message"]["id"]
    first = client.post(
        f"/api/messages/{answer_id}/improve", json={"content": "Four."}, headers=alice
    ).json()
    # Rewriting the rewrite still corrects the model's answer, and replaces the first rewrite.
    second = client.post(
        f"/api/messages/{first['message']['id']}/improve",
        json={"content": "It is four."},
        headers=alice,
    ).json()
    assert second["message"]["improved_from"] == answer_id
    assert second["message"]["parent_id"] == turn["assistant_message"]["parent_id"]
    assert second["improvement"]["original_generation_id"] == turn["generation"]["id"]
    active = client.get("/api/improvements", headers=alice).json()
    assert [i["id"] for i in active] == [second["improvement"]["id"]]

    sid = second["improvement"]["id"]
    assert client.delete(f"/api/improvements/{sid}", headers=alice).status_code == 204
    assert client.get("/api/improvements", headers=alice).json() == []
    history = client.get("/api/improvements?history=true", headers=alice).json()
    assert {i["id"] for i in history} == {first["improvement"]["id"], sid}
    assert all(i["withdrawn_at"] is not None for i in history)
    assert client.delete(f"/api/improvements/{sid}", headers=alice).status_code == 404


def test_improve_rejects_bad_targets_and_bodies(client):
    alice = new_user(client, "alice@x.io")
    _, turn = _turn(client, alice)
    user_msg, answer = turn["user_message"]["id"], turn["assistant_message"]["id"]
    r = client.post(f"/api/messages/{user_msg}/improve", json={"content": "x"}, headers=alice)
    assert r.status_code == 422 and "assistant" in r.json()["error"]["message"]
    for body in ({"content": ""}, {}, {"content": "x", "generation_id": "y"}):
        r = client.post(f"/api/messages/{answer}/improve", json=body, headers=alice)
        assert r.status_code == 422
    r = client.post(f"/api/messages/{answer}/improve", json={"content": "   "}, headers=alice)
    assert r.status_code == 422


def test_another_user_cannot_improve_or_withdraw(client):
    alice = new_user(client, "alice@x.io")
    bob = new_user(client, "bob@x.io")
    _, turn = _turn(client, alice)
    answer = turn["assistant_message"]["id"]
    r = client.post(f"/api/messages/{answer}/improve", json={"content": "mine"}, headers=bob)
    assert r.status_code == 404
    imp = client.post(
        f"/api/messages/{answer}/improve", json={"content": "Four."}, headers=alice
    ).json()["improvement"]
    assert client.delete(f"/api/improvements/{imp['id']}", headers=bob).status_code == 404
    assert client.get("/api/improvements", headers=bob).json() == []
    assert client.get("/api/improvements", headers=alice).json()[0]["withdrawn_at"] is None
