"""Delete my data: every conversation, message, generation record, feedback, comparison,
improvement, memory and upload (files too) of the caller goes; the account and other users'
data stay. Runs on SQLite and PostgreSQL."""

import base64

import pytest

from conftest import new_user

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


@pytest.fixture
def api_db_url(db_url):
    return db_url


def _activity(client, headers):
    """One of everything: 2 conversations (one deleted), signals (a copy too), a memory, an
    upload, /v1."""
    up = client.post(
        "/api/uploads", files={"file": ("a.png", PNG, "image/png")}, headers=headers
    ).json()
    conv = client.post("/api/conversations", json={}, headers=headers).json()
    url = f"/api/conversations/{conv['id']}/messages"
    turn = client.post(
        url,
        json={"content": "remember that I like tea", "attachments": [up["id"]]},
        headers=headers,
    ).json()
    answer = turn["assistant_message"]["id"]
    client.post(f"/api/messages/{answer}/feedback", json={"rating": "up"}, headers=headers)
    client.post(f"/api/messages/{answer}/signals", json={"kind": "copy"}, headers=headers)
    client.post(f"/api/messages/{answer}/improve", json={"content": "Noted."}, headers=headers)
    client.post(
        f"/api/conversations/{conv['id']}/comparisons", json={"content": "pick"}, headers=headers
    )
    gone = client.post("/api/conversations", json={}, headers=headers).json()
    client.post(f"/api/conversations/{gone['id']}/messages", json={"content": "x"}, headers=headers)
    client.delete(f"/api/conversations/{gone['id']}", headers=headers)
    client.post(
        "/v1/chat/completions",
        json={"model": "fake-model", "messages": [{"role": "user", "content": "q"}]},
        headers=headers,
    )
    return up


def test_delete_my_data_counts_and_spares_others(client, tandem_home):
    alice = new_user(client, "alice@x.io")
    bob = new_user(client, "bob@x.io")
    _activity(client, alice)
    bob_upload = _activity(client, bob)
    bob_before = (
        client.get("/api/conversations", headers=bob).json(),
        client.get("/api/feedback?history=true", headers=bob).json(),
        client.get("/api/comparisons", headers=bob).json(),
        client.get("/api/improvements", headers=bob).json(),
        client.get("/api/memories", headers=bob).json(),
    )
    me = client.get("/api/auth/me", headers=alice).json()
    assert (tandem_home / "uploads" / me["id"]).is_dir()

    r = client.delete("/api/auth/me/data", headers=alice)
    assert r.status_code == 200, r.text
    # Messages: 2 (turn) + 1 improved + 1 question & 2 answers (comparison) + 2 (deleted chat).
    # Generations: 1 + 2 + 1 + 1 (/v1).
    assert r.json() == {
        "deleted": {
            "conversations": 2,
            "messages": 8,
            "generations": 5,
            "feedback": 1,
            "comparisons": 1,
            "improvements": 1,
            "implicit_signals": 1,
            "memories": 1,
            "uploads": 1,
            "files": 0,
        }
    }
    assert client.get("/api/auth/me", headers=alice).json()["id"] == me["id"]  # account stays
    for url in ("/api/conversations", "/api/feedback?history=true", "/api/comparisons"):
        assert client.get(url, headers=alice).json() == []
    assert client.get("/api/improvements?history=true", headers=alice).json() == []
    assert client.get("/api/memories", headers=alice).json() == []
    assert not (tandem_home / "uploads" / me["id"]).exists()
    # A second call finds nothing left.
    assert set(client.delete("/api/auth/me/data", headers=alice).json()["deleted"].values()) == {0}

    bob_after = (
        client.get("/api/conversations", headers=bob).json(),
        client.get("/api/feedback?history=true", headers=bob).json(),
        client.get("/api/comparisons", headers=bob).json(),
        client.get("/api/improvements", headers=bob).json(),
        client.get("/api/memories", headers=bob).json(),
    )
    assert bob_after == bob_before
    r = client.get(f"/api/uploads/{bob_upload['id']}", headers=bob)
    assert r.status_code == 200 and r.content == PNG


def test_use_for_training_switch_stays_on_me(client):
    alice = new_user(client, "alice@x.io")
    assert client.get("/api/auth/me", headers=alice).json()["use_for_training"] is True
    r = client.patch("/api/auth/me", json={"use_for_training": False}, headers=alice)
    assert r.json()["use_for_training"] is False
    client.delete("/api/auth/me/data", headers=alice)
    assert client.get("/api/auth/me", headers=alice).json()["use_for_training"] is False
