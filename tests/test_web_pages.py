"""The web app's server side, without a browser: which page a visitor gets, the static assets,
and the endpoint that makes a paged-to branch current."""

from __future__ import annotations

import re

from conftest import new_user


def signed_in_client(client, email: str = "ada@example.com"):
    r = client.post("/api/auth/signup", json={"email": email, "password": "password-123"})
    assert r.status_code == 201, r.text
    return client


def csrf(client) -> dict[str, str]:
    return {"X-CSRF-Token": client.cookies.get("tandem_csrf")}


def test_pages_send_a_visitor_without_a_session_to_login(client):
    for path in ("/", "/settings", "/profiles", "/c/abc"):
        r = client.get(path, follow_redirects=False)
        assert r.status_code == 303, path
        expected = "/login" if path == "/" else f"/login?next={path}"
        assert r.headers["location"] == expected
    assert client.get("/login").status_code == 200
    assert "Create your account" in client.get("/signup").text


def test_signed_in_pages_render_and_login_goes_home(client):
    signed_in_client(client)
    for path in ("/", "/settings", "/profiles", "/c/some-id"):
        r = client.get(path)
        assert r.status_code == 200, path
        assert 'type="module"' in r.text
    assert client.get("/login", follow_redirects=False).headers["location"] == "/"
    # The admin section appears for the first (admin) account only.
    assert 'id="admin"' in client.get("/settings").text


def test_signup_page_says_when_signup_is_closed(client):
    signed_in_client(client)
    r = client.put("/api/admin/settings", json={"allow_signup": False}, headers=csrf(client))
    assert r.status_code == 200, r.text
    client.cookies.clear()
    page = client.get("/signup").text
    assert "Sign-up is closed" in page
    assert 'name="password"' not in page


def test_static_assets_are_served_from_the_package(client):
    for name in ("app.css", "chat.js", "markdown.js", "api.js", "logo.svg"):
        r = client.get(f"/static/{name}")
        assert r.status_code == 200, name
    assert client.get("/static/../pages.py").status_code == 404
    # No page loads anything from another host (the app must work offline).
    signed_in_client(client)
    for path in ("/", "/settings", "/profiles"):
        html = client.get(path).text
        assert not re.search(r"""(src|href)=["']?(https?:)?//""", html), path


def test_paging_makes_the_chosen_branch_current(client):
    headers = new_user(client, "ada@example.com")
    conv = client.post("/api/conversations", json={}, headers=headers).json()
    first = client.post(
        f"/api/conversations/{conv['id']}/messages", json={"content": "one"}, headers=headers
    ).json()
    answer = first["assistant_message"]["id"]
    client.post(f"/api/messages/{answer}/regenerate", json={}, headers=headers)
    r = client.put(
        f"/api/conversations/{conv['id']}/current", json={"message_id": answer}, headers=headers
    )
    assert r.status_code == 200
    assert r.json()["current_message_id"] == answer
    # The next message continues the branch that was made current.
    nxt = client.post(
        f"/api/conversations/{conv['id']}/messages", json={"content": "two"}, headers=headers
    ).json()
    assert nxt["user_message"]["parent_id"] == answer


def test_setting_the_current_message_respects_ownership(client):
    ada = new_user(client, "ada@example.com")
    bob = new_user(client, "bob@example.com")
    conv = client.post("/api/conversations", json={}, headers=ada).json()
    msg = client.post(
        f"/api/conversations/{conv['id']}/messages", json={"content": "hi"}, headers=ada
    ).json()["assistant_message"]["id"]
    other = client.post("/api/conversations", json={}, headers=bob).json()
    # Bob can neither move Ada's conversation nor point his own at Ada's message.
    body = {"message_id": msg}
    r = client.put(f"/api/conversations/{conv['id']}/current", json=body, headers=bob)
    assert r.status_code == 404
    r = client.put(f"/api/conversations/{other['id']}/current", json=body, headers=bob)
    assert r.status_code == 404
    r = client.put(f"/api/conversations/{conv['id']}/current", json={"message_id": ""}, headers=ada)
    assert r.status_code == 422
