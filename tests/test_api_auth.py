"""Auth over HTTP: sign-up/log-in/log-out, cookies, API keys, admin, errors and limits."""

import pytest
from fastapi.testclient import TestClient

from conftest import new_user
from tandem.web.app import create_app


def _error(r, status):
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"} and body["error"]["message"], body
    return body["error"]


def test_signup_login_logout_me_with_cookie(client):
    r = client.post(
        "/api/auth/signup",
        json={"email": "Ada@Example.com", "password": "password-123", "display_name": "Ada"},
    )
    assert r.status_code == 201
    me = r.json()
    assert me["email"] == "ada@example.com" and me["is_admin"]  # the first user is admin
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie
    assert client.get("/api/auth/me").json()["id"] == me["id"]
    csrf = {"X-CSRF-Token": client.cookies.get("tandem_csrf")}

    assert client.post("/api/auth/logout", headers=csrf).status_code == 204
    _error(client.get("/api/auth/me"), 401)
    _error(client.post("/api/auth/login", json={"email": "ada@example.com", "password": "x"}), 401)
    r = client.post(
        "/api/auth/login", json={"email": "ADA@example.com", "password": "password-123"}
    )
    assert r.status_code == 200 and client.get("/api/auth/me").status_code == 200

    csrf = {"X-CSRF-Token": client.cookies.get("tandem_csrf")}  # a new token per session
    r = client.patch(
        "/api/auth/me", json={"use_for_training": False, "display_name": "A."}, headers=csrf
    )
    assert r.json()["use_for_training"] is False and r.json()["display_name"] == "A."


def test_signup_validation_and_duplicates(client):
    _error(client.post("/api/auth/signup", json={"email": "nope", "password": "password-1"}), 422)
    _error(client.post("/api/auth/signup", json={"email": "a@b.co", "password": "short"}), 422)
    err = _error(
        client.post(
            "/api/auth/signup", json={"email": "a@b.co", "password": "password-1", "is_admin": 1}
        ),
        422,
    )
    assert "is_admin" in err["message"]
    new_user(client, "a@b.co")
    _error(client.post("/api/auth/signup", json={"email": "A@B.CO", "password": "password-1"}), 409)


def test_second_user_is_not_admin_and_admin_routes_are_guarded(client):
    admin = new_user(client, "admin@x.io")
    bob = new_user(client, "bob@x.io")
    assert client.get("/api/auth/me", headers=bob).json()["is_admin"] is False
    _error(client.get("/api/users", headers=bob), 403)
    users = client.get("/api/users", headers=admin).json()
    bob_id = next(u["id"] for u in users if u["email"] == "bob@x.io")
    _error(client.patch(f"/api/users/{bob_id}", json={"is_disabled": True}, headers=bob), 403)

    r = client.patch(f"/api/users/{bob_id}", json={"is_disabled": True}, headers=admin)
    assert r.json()["is_disabled"] is True
    _error(client.get("/api/auth/me", headers=bob), 401)  # refused at once
    _error(
        client.post("/api/auth/login", json={"email": "bob@x.io", "password": "password-123"}), 401
    )
    client.patch(f"/api/users/{bob_id}", json={"is_disabled": False}, headers=admin)
    assert client.get("/api/auth/me", headers=bob).status_code == 200
    _error(client.patch("/api/users/nope", json={"is_disabled": True}, headers=admin), 404)


def test_admin_can_close_signup(client):
    admin = new_user(client, "admin@x.io")
    assert client.get("/api/admin/settings", headers=admin).json()["allow_signup"] is True
    client.put("/api/admin/settings", json={"allow_signup": False}, headers=admin)
    err = _error(
        client.post("/api/auth/signup", json={"email": "late@x.io", "password": "password-1"}),
        403,
    )
    assert err["code"] == "signup_closed"


def test_settings_can_close_signup_but_not_for_the_first_user(settings, fake_catalog):
    import dataclasses

    closed = dataclasses.replace(settings, allow_signup=False)
    with TestClient(create_app(closed, fake_catalog)) as client:
        new_user(client, "first@x.io")
        r = client.post("/api/auth/signup", json={"email": "second@x.io", "password": "pw-123456"})
        _error(r, 403)


def test_api_keys_create_list_revoke(client):
    alice = new_user(client, "alice@x.io")
    r = client.post("/api/keys", json={"name": "laptop"}, headers=alice)
    assert r.status_code == 201
    created = r.json()
    key = created["key"]
    assert key.startswith("tk-") and len(key) == 43 and created["prefix"] == key[:11]
    listed = client.get("/api/keys", headers=alice).json()
    assert {k["name"] for k in listed} == {"test", "laptop"} and all("key" not in k for k in listed)
    laptop = {"Authorization": f"Bearer {key}"}
    assert client.get("/api/auth/me", headers=laptop).status_code == 200
    assert client.delete(f"/api/keys/{created['id']}", headers=alice).status_code == 204
    _error(client.get("/api/auth/me", headers=laptop), 401)
    _error(client.delete("/api/keys/unknown", headers=alice), 404)


def test_anonymous_and_malformed_credentials_get_401(client):
    for path in ("/api/auth/me", "/api/conversations", "/api/keys", "/v1/models"):
        assert _error(client.get(path), 401)["type"] == "authentication_error"
    _error(client.get("/api/auth/me", headers={"Authorization": "Basic abc"}), 401)
    _error(client.get("/api/auth/me", headers={"Authorization": "Bearer tk-nope"}), 401)
    client.cookies.set("tandem_session", "forged")
    _error(client.get("/api/auth/me"), 401)


def test_admin_api_key_bootstrap_is_idempotent(settings, fake_catalog):
    import dataclasses

    with_key = dataclasses.replace(settings, admin_api_key="tk-admin-bootstrap-key-for-tests")
    headers = {"Authorization": "Bearer tk-admin-bootstrap-key-for-tests"}
    for _ in range(2):  # two server starts
        with TestClient(create_app(with_key, fake_catalog)) as client:
            me = client.get("/api/auth/me", headers=headers).json()
            assert me["is_admin"] is True
            assert len(client.get("/api/users", headers=headers).json()) == 1


def test_body_limit_json_errors_and_openapi(client):
    alice = new_user(client, "alice@x.io")
    big = "x" * 300_000
    r = client.post(
        "/api/conversations", content=big, headers={**alice, "content-type": "application/json"}
    )
    assert _error(r, 413)["code"] == "body_too_large"
    r = client.post(
        "/api/conversations",
        content=b"{not json",
        headers={**alice, "content-type": "application/json"},
    )
    _error(r, 422)
    _error(client.post("/api/conversations", json={"user_id": "someone"}, headers=alice), 422)
    _error(client.get("/api/nowhere", headers=alice), 404)
    _error(client.put("/api/keys", headers=alice), 405)
    spec = client.get("/openapi.json").json()
    assert "/v1/chat/completions" in spec["paths"] and "/api/conversations" in spec["paths"]


def test_unexpected_errors_are_json_500(app, client, monkeypatch):
    alice = new_user(client, "alice@x.io")

    def boom(*args, **kwargs):
        raise RuntimeError("kaboom")

    monkeypatch.setattr("tandem.store.ConversationRepo.list", boom)
    with TestClient(app, raise_server_exceptions=False) as c:
        err = _error(c.get("/api/conversations", headers=alice), 500)
    assert err["type"] == "server_error" and "kaboom" not in err["message"]


@pytest.mark.parametrize("length", ["abc", "-5"])
def test_bad_content_length_is_a_4xx(client, length):
    r = client.post("/api/auth/login", content=b"{}", headers={"content-length": length})
    assert 400 <= r.status_code < 500
