"""CSRF (double-submit cookie): a write authenticated by the session cookie must echo the
`tandem_csrf` cookie in `X-CSRF-Token`; API-key requests and sign-up/log-in are exempt."""

from conftest import new_user


def _signup(client, email="ada@x.io"):
    r = client.post("/api/auth/signup", json={"email": email, "password": "password-123"})
    assert r.status_code == 201, r.text
    return r


def test_signup_sets_a_readable_csrf_cookie_next_to_the_httponly_session(client):
    r = _signup(client)
    cookies = {c.split("=", 1)[0]: c.lower() for c in r.headers.get_list("set-cookie")}
    assert "httponly" in cookies["tandem_session"]
    csrf = cookies["tandem_csrf"]
    assert "httponly" not in csrf and "samesite=lax" in csrf and "path=/" in csrf
    token = client.cookies.get("tandem_csrf")
    assert token and client.get("/api/auth/csrf").json() == {"token": token}


def test_cookie_writes_need_the_header_reads_do_not(client):
    _signup(client)
    token = client.cookies.get("tandem_csrf")
    assert client.get("/api/conversations").status_code == 200  # reads are exempt

    for method, url, body in [
        ("POST", "/api/conversations", {"title": "x"}),
        ("PATCH", "/api/auth/me", {"display_name": "Eve"}),
        ("POST", "/api/memories", {"text": "x"}),
        ("PUT", "/api/custom-instructions", {"about_user": "x"}),
        ("DELETE", "/api/auth/me/data", None),
        ("POST", "/api/auth/logout", None),
    ]:
        r = client.request(method, url, json=body)
        assert r.status_code == 403, (method, url, r.text)
        assert r.json()["error"]["code"] == "csrf_failed"
        r = client.request(method, url, json=body, headers={"X-CSRF-Token": "wrong"})
        assert r.status_code == 403, (method, url, r.text)
    # Nothing above happened: the conversation list is still empty, still logged in.
    assert client.get("/api/conversations").json() == []
    assert client.get("/api/auth/me").json()["display_name"] == "ada"

    ok = {"X-CSRF-Token": token}
    assert client.post("/api/conversations", json={"title": "x"}, headers=ok).status_code == 201
    r = client.patch("/api/auth/me", json={"display_name": "Eve"}, headers=ok)
    assert r.status_code == 200 and r.json()["display_name"] == "Eve"
    assert client.post("/api/auth/logout", headers=ok).status_code == 204
    assert client.get("/api/auth/me").status_code == 401


def test_api_key_requests_need_no_csrf_token(client):
    alice = new_user(client, "alice@x.io")
    r = client.post("/api/conversations", json={"title": "scripted"}, headers=alice)
    assert r.status_code == 201
    r = client.delete(f"/api/conversations/{r.json()['id']}", headers=alice)
    assert r.status_code == 204


def test_login_is_exempt_and_issues_a_fresh_token(client):
    _signup(client)
    first = client.cookies.get("tandem_csrf")
    client.cookies.clear()
    r = client.post("/api/auth/login", json={"email": "ada@x.io", "password": "password-123"})
    assert r.status_code == 200
    second = client.cookies.get("tandem_csrf")
    assert second and second != first
    headers = {"X-CSRF-Token": second}
    assert client.post("/api/memories", json={"text": "hi"}, headers=headers).status_code == 201


def test_csrf_endpoint_sets_the_cookie_when_missing(client):
    _signup(client)
    client.cookies.delete("tandem_csrf")
    token = client.get("/api/auth/csrf").json()["token"]
    assert client.cookies.get("tandem_csrf") == token
    headers = {"X-CSRF-Token": token}
    assert client.post("/api/memories", json={"text": "hi"}, headers=headers).status_code == 201


def test_cookies_are_secure_over_https(app):
    from fastapi.testclient import TestClient

    with TestClient(app, base_url="https://testserver") as client:
        r = _signup(client)
    cookies = {c.split("=", 1)[0]: c.lower() for c in r.headers.get_list("set-cookie")}
    assert "secure" in cookies["tandem_session"] and "secure" in cookies["tandem_csrf"]
