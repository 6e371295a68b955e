"""Per-user isolation over HTTP: user B, holding a valid key, tries every operation on user
A's conversation, messages, feedback, comparison, profile, generation, memory, improvement and
upload. Each answers 404 (exactly what a missing id answers), and A's data is unchanged
afterwards. Anonymous requests get 401. Runs on SQLite and PostgreSQL."""

import base64

import pytest

from conftest import new_user


@pytest.fixture
def api_db_url(db_url):
    return db_url


PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


def _snapshot(client, a, conv_id, comp_id):
    return (
        client.get("/api/memories", headers=a).json(),
        client.get("/api/improvements?history=true", headers=a).json(),
        client.get(f"/api/conversations/{conv_id}", headers=a).json(),
        client.get("/api/feedback?history=true", headers=a).json(),
        client.get(f"/api/comparisons/{comp_id}", headers=a).json(),
        client.get("/api/profiles", headers=a).json(),
        client.get("/api/keys", headers=a).json(),
        client.get("/api/custom-instructions", headers=a).json(),
    )


def test_user_b_cannot_touch_user_a_data(client):
    a = new_user(client, "a@x.io")
    b = new_user(client, "b@x.io")
    client.put("/api/custom-instructions", json={"about_user": "A's secret"}, headers=a)
    conv = client.post("/api/conversations", json={"title": "A's secret"}, headers=a).json()
    turn = client.post(
        f"/api/conversations/{conv['id']}/messages", json={"content": "private"}, headers=a
    ).json()
    user_msg, answer = turn["user_message"]["id"], turn["assistant_message"]["id"]
    feedback = client.post(
        f"/api/messages/{answer}/feedback", json={"rating": "up"}, headers=a
    ).json()
    comp = client.post(
        f"/api/conversations/{conv['id']}/comparisons", json={"content": "pick"}, headers=a
    ).json()
    profile = client.post("/api/profiles", json={"name": "A's profile"}, headers=a).json()
    a_key = client.get("/api/keys", headers=a).json()[0]
    v1 = client.post(
        "/v1/chat/completions",
        json={"model": "fake-model", "messages": [{"role": "user", "content": "q"}]},
        headers=a,
    ).json()
    memory = client.post("/api/memories", json={"text": "A's secret"}, headers=a).json()
    upload = client.post(
        "/api/uploads", files={"file": ("a.png", PNG, "image/png")}, headers=a
    ).json()
    # Improve a comparison answer, so the improvement does not move A's current branch.
    improvement = client.post(
        f"/api/messages/{comp['a']['message_id']}/improve", json={"content": "better"}, headers=a
    ).json()["improvement"]
    before = _snapshot(client, a, conv["id"], comp["id"])
    b_conv = client.post("/api/conversations", json={}, headers=b).json()

    cid = conv["id"]
    attempts = [
        ("GET", f"/api/conversations/{cid}", None),
        ("GET", f"/api/conversations/{cid}/branch", None),
        ("PATCH", f"/api/conversations/{cid}", {"title": "pwned"}),
        ("DELETE", f"/api/conversations/{cid}", None),
        ("POST", f"/api/conversations/{cid}/messages", {"content": "hi"}),
        ("POST", f"/api/conversations/{cid}/messages", {"content": "stream", "stream": True}),
        ("POST", f"/api/messages/{answer}/regenerate", {}),
        ("POST", f"/api/messages/{answer}/regenerate", {"stream": True}),
        ("POST", f"/api/messages/{user_msg}/edit", {"content": "edited"}),
        ("POST", f"/api/messages/{answer}/feedback", {"rating": "down"}),
        ("GET", f"/api/messages/{answer}/feedback", None),
        ("DELETE", f"/api/messages/{answer}/feedback", None),
        ("DELETE", f"/api/feedback/{feedback['id']}", None),
        ("POST", f"/api/generations/{turn['generation']['id']}/feedback", {"rating": "down"}),
        ("POST", f"/api/generations/{v1['id']}/feedback", {"rating": "down"}),
        ("DELETE", f"/api/generations/{turn['generation']['id']}/feedback", None),
        ("POST", f"/api/conversations/{cid}/comparisons", {"content": "x"}),
        ("GET", f"/api/comparisons/{comp['id']}", None),
        ("POST", f"/api/comparisons/{comp['id']}/vote", {"verdict": "a"}),
        ("GET", f"/api/profiles/{profile['id']}", None),
        ("PATCH", f"/api/profiles/{profile['id']}", {"name": "pwned"}),
        ("DELETE", f"/api/profiles/{profile['id']}", None),
        ("DELETE", f"/api/keys/{a_key['id']}", None),
        ("PATCH", f"/api/memories/{memory['id']}", {"text": "pwned"}),
        ("DELETE", f"/api/memories/{memory['id']}", None),
        ("POST", f"/api/messages/{answer}/remember", None),
        ("POST", f"/api/messages/{answer}/improve", {"content": "pwned"}),
        ("DELETE", f"/api/improvements/{improvement['id']}", None),
        ("GET", f"/api/uploads/{upload['id']}", None),
        # A's upload attached to B's own conversation.
        (
            "POST",
            f"/api/conversations/{b_conv['id']}/messages",
            {"content": "x", "attachments": [upload["id"]]},
        ),
    ]
    for method, url, body in attempts:
        r = client.request(method, url, json=body, headers=b)
        assert r.status_code == 404, (method, url, r.status_code, r.text)
        assert r.json()["error"]["type"] == "not_found_error"
        # ...and indistinguishable from an id that never existed.
        missing = url.replace(cid, "0" * 32)
        ids = (answer, user_msg, comp["id"], profile["id"], a_key["id"], feedback["id"])
        ids += (memory["id"], improvement["id"], upload["id"])
        ids += (turn["generation"]["id"], v1["id"].removeprefix("chatcmpl-"))
        for ident in ids:
            missing = missing.replace(ident, "0" * 32)
        if missing != url:
            r2 = client.request(method, missing, json=body, headers=b)
            assert r2.status_code == 404 and r2.json() == r.json(), (url, r2.text, r.text)

    # B's listings show none of A's data.
    assert [c["id"] for c in client.get("/api/conversations", headers=b).json()] == [b_conv["id"]]
    assert client.get(f"/api/conversations/{b_conv['id']}", headers=b).json()["messages"] == []
    assert client.get("/api/conversations?q=secret", headers=b).json() == []
    assert client.get("/api/feedback?history=true", headers=b).json() == []
    assert client.get("/api/comparisons", headers=b).json() == []
    assert client.get("/api/profiles", headers=b).json() == []
    assert client.get("/api/memories", headers=b).json() == []
    assert client.get("/api/improvements?history=true", headers=b).json() == []
    assert client.get("/api/custom-instructions", headers=b).json()["about_user"] == ""
    assert len(client.get("/api/keys", headers=b).json()) == 1

    # A's data is exactly as it was.
    assert _snapshot(client, a, conv["id"], comp["id"]) == before
    assert client.get("/api/auth/me", headers=a).status_code == 200


def test_anonymous_requests_get_401(client):
    a = new_user(client, "a@x.io")
    conv = client.post("/api/conversations", json={}, headers=a).json()
    for method, url, body in [
        ("GET", "/api/conversations", None),
        ("GET", f"/api/conversations/{conv['id']}", None),
        ("POST", f"/api/conversations/{conv['id']}/messages", {"content": "hi"}),
        ("DELETE", f"/api/conversations/{conv['id']}", None),
        ("GET", "/api/feedback", None),
        ("GET", "/api/comparisons", None),
        ("GET", "/api/profiles", None),
        ("GET", "/api/custom-instructions", None),
        ("GET", "/api/users", None),
        ("GET", "/api/memories", None),
        ("POST", "/api/memories", {"text": "x"}),
        ("GET", "/api/improvements", None),
        ("POST", "/api/uploads", None),
        ("DELETE", "/api/auth/me/data", None),
        ("GET", "/v1/models", None),
        ("POST", "/v1/chat/completions", {"messages": [{"role": "user", "content": "x"}]}),
    ]:
        r = client.request(method, url, json=body)
        assert r.status_code == 401, (method, url, r.text)
        assert r.json()["error"]["type"] == "authentication_error"
    assert client.get(f"/api/conversations/{conv['id']}", headers=a).status_code == 200
