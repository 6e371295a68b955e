"""Managing accounts from the admin console's API: make or unmake an admin, disable, reset a
password; and the console pages that show them (/admin, /admin/users)."""

from fastapi.testclient import TestClient

from conftest import new_user

PASSWORD = "password-123"


def _error(r, status):
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"} and body["error"]["message"], body
    return body["error"]["message"]


def _ids(client, admin):
    return {u["email"]: u["id"] for u in client.get("/api/users", headers=admin).json()}


def _login(client, email, password):
    return client.post("/api/auth/login", json={"email": email, "password": password})


def test_only_admins_manage_users_and_anonymous_gets_401(client):
    admin = new_user(client, "admin@x.io")
    bob = new_user(client, "bob@x.io")
    ids = _ids(client, admin)
    bob_id, admin_id = ids["bob@x.io"], ids["admin@x.io"]
    for headers, status in ((bob, 403), ({}, 401)):
        _error(
            client.patch(f"/api/users/{admin_id}", json={"is_admin": False}, headers=headers),
            status,
        )
        _error(
            client.post(
                f"/api/users/{admin_id}/password",
                json={"new_password": "a-new-passphrase"},
                headers=headers,
            ),
            status,
        )
    # Bad input is a clear 4xx: an empty change, a wrong type, an unknown field or user.
    assert "is_disabled" in _error(
        client.patch(f"/api/users/{bob_id}", json={}, headers=admin), 422
    )
    _error(client.patch(f"/api/users/{bob_id}", json={"is_admin": "maybe"}, headers=admin), 422)
    _error(client.patch(f"/api/users/{bob_id}", json={"role": "admin"}, headers=admin), 422)
    _error(client.patch("/api/users/nope", json={"is_admin": True}, headers=admin), 404)
    _error(
        client.post(
            "/api/users/nope/password", json={"new_password": "a-new-passphrase"}, headers=admin
        ),
        404,
    )


def test_make_admin_and_remove_admin_but_never_your_own_role(client):
    admin = new_user(client, "admin@x.io")
    bob = new_user(client, "bob@x.io")
    ids = _ids(client, admin)
    bob_id, admin_id = ids["bob@x.io"], ids["admin@x.io"]

    r = client.patch(f"/api/users/{bob_id}", json={"is_admin": True}, headers=admin)
    assert r.status_code == 200 and r.json()["is_admin"] is True
    assert client.get("/api/users", headers=bob).status_code == 200  # an admin now
    # An admin can't drop their own role (nor disable themselves): 409 with a reason.
    message = _error(
        client.patch(f"/api/users/{bob_id}", json={"is_admin": False}, headers=bob), 409
    )
    assert "own admin role" in message
    message = _error(
        client.patch(f"/api/users/{bob_id}", json={"is_disabled": True}, headers=bob), 409
    )
    assert "own account" in message
    # Another admin can.
    r = client.patch(f"/api/users/{bob_id}", json={"is_admin": False}, headers=admin)
    assert r.json()["is_admin"] is False
    _error(client.get("/api/users", headers=bob), 403)
    assert client.get("/api/auth/me", headers=admin).json()["is_admin"] is True
    # Both fields in one request.
    r = client.patch(
        f"/api/users/{bob_id}", json={"is_admin": True, "is_disabled": True}, headers=admin
    )
    assert r.json()["is_admin"] is True and r.json()["is_disabled"] is True
    listed = {u["id"]: u for u in client.get("/api/users", headers=admin).json()}
    assert listed[admin_id]["is_admin"] and not listed[admin_id]["is_disabled"]


def test_disabling_ends_the_users_web_sessions(client):
    admin = new_user(client, "admin@x.io")
    new_user(client, "bob@x.io")
    bob_id = _ids(client, admin)["bob@x.io"]
    assert _login(client, "bob@x.io", PASSWORD).status_code == 200
    cookies = dict(client.cookies)
    client.cookies.clear()
    client.patch(f"/api/users/{bob_id}", json={"is_disabled": True}, headers=admin)
    client.patch(f"/api/users/{bob_id}", json={"is_disabled": False}, headers=admin)
    # Re-enabled, but the cookie from before the ban does not come back to life.
    _error(client.get("/api/auth/me", cookies=cookies), 401)
    assert _login(client, "bob@x.io", PASSWORD).status_code == 200


def test_reset_password_ends_sessions_and_the_new_one_logs_in(client):
    admin = new_user(client, "admin@x.io")
    bob_key = new_user(client, "bob@x.io")
    bob_id = _ids(client, admin)["bob@x.io"]
    assert _login(client, "bob@x.io", PASSWORD).status_code == 200
    cookies = dict(client.cookies)
    assert client.get("/api/auth/me", cookies=cookies).status_code == 200
    client.cookies.clear()

    r = client.post(
        f"/api/users/{bob_id}/password", json={"new_password": "temporary-pass-42"}, headers=admin
    )
    assert r.status_code == 204, r.text
    _error(client.get("/api/auth/me", cookies=cookies), 401)  # the web session ended
    assert client.get("/api/auth/me", headers=bob_key).status_code == 200  # API keys stay
    _error(_login(client, "bob@x.io", PASSWORD), 401)
    assert _login(client, "bob@x.io", "temporary-pass-42").status_code == 200
    # Bob changes it to his own, which needs the temporary one.
    csrf = {"X-CSRF-Token": client.cookies.get("tandem_csrf")}
    r = client.post(
        "/api/auth/password",
        json={"current_password": "temporary-pass-42", "new_password": "bobs-own-secret-9"},
        headers=csrf,
    )
    assert r.status_code == 204
    client.cookies.clear()
    assert _login(client, "bob@x.io", "bobs-own-secret-9").status_code == 200


def test_reset_password_follows_the_password_rules_and_not_for_yourself(client):
    admin = new_user(client, "admin@x.io")
    new_user(client, "bob@x.io")
    ids = _ids(client, admin)
    url = f"/api/users/{ids['bob@x.io']}/password"
    assert "at least 8" in _error(
        client.post(url, json={"new_password": "short"}, headers=admin), 422
    )
    assert "common" in _error(
        client.post(url, json={"new_password": "password1"}, headers=admin), 422
    )
    _error(client.post(url, json={"new_password": "bob@x.io"}, headers=admin), 422)  # context word
    _error(client.post(url, json={}, headers=admin), 422)
    _error(client.post(url, json={"new_password": "x" * 201}, headers=admin), 422)
    # Nothing changed: the old password still logs in.
    assert _login(client, "bob@x.io", PASSWORD).status_code == 200
    client.cookies.clear()
    own = f"/api/users/{ids['admin@x.io']}/password"
    message = _error(
        client.post(own, json={"new_password": "a-new-passphrase"}, headers=admin), 409
    )
    assert "Settings" in message


def test_console_pages_are_for_admins(client: TestClient):
    r = client.get("/admin", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login?next=/admin"
    assert client.get("/admin/users", follow_redirects=False).status_code == 303
    client.post("/api/auth/signup", json={"email": "admin@x.io", "password": PASSWORD})
    page = client.get("/admin")
    assert page.status_code == 200
    # The overview counts, and the nav to every console page with this one marked.
    assert 'data-stat="users"><span class="value">1</span>' in page.text
    for href in ("/admin/signals", "/admin/datasets", "/admin/models", "/admin/evals"):
        assert f'href="{href}"' in page.text
    assert 'href="/admin" data-nav="overview" aria-current="page"' in page.text
    users = client.get("/admin/users")
    assert users.status_code == 200 and 'data-nav="users" aria-current="page"' in users.text
    assert '<script type="module" src="/static/admin_users.js?v=' in users.text
    # The chat's account menu links to the console for an admin.
    assert 'id="admin-console-link"' in client.get("/").text
    client.post("/api/auth/logout", headers={"X-CSRF-Token": client.cookies.get("tandem_csrf")})
    client.cookies.clear()
    new_user(client, "bob@x.io")
    _login(client, "bob@x.io", PASSWORD)
    assert client.get("/admin").status_code == 403
    assert client.get("/admin/users").status_code == 403
    assert 'id="admin-console-link"' not in client.get("/").text
