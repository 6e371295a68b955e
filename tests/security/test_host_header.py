"""Host header and proxies (docs/security.md): no Host, X-Forwarded-* or Forwarded header ever
changes which auth rule applies; no request counts as "local" and trusted. A malformed Host in
the style of Starlette's BadHost advisory (CVE-2026-48710: a Host carrying a path poisoned
`request.url.path`) changes no path-based decision. With TANDEM_ALLOWED_HOSTS set, other
hosts get 400."""

from __future__ import annotations

from fastapi.testclient import TestClient

from conftest import new_user

SPOOFS = [
    {},
    {"Host": "localhost"},
    {"Host": "127.0.0.1:8000"},
    {"Host": "[::1]"},
    {"Host": "evil.example"},
    {"Host": "evil.example/api/auth/csrf?"},  # BadHost: a path in the Host
    {"Host": "localhost/v1/x#"},
    {"Host": "localhost:8000/api/uploads?"},
    {"X-Forwarded-Host": "localhost"},
    {"X-Forwarded-For": "127.0.0.1"},
    {"X-Real-IP": "127.0.0.1"},
    {"Forwarded": "for=127.0.0.1;host=localhost;proto=https"},
    {"Host": "localhost", "X-Forwarded-For": "127.0.0.1", "X-Forwarded-Proto": "https"},
]


def _outcomes(client: TestClient, user: dict, admin: dict, spoof: dict) -> dict[str, object]:
    def get(url: str, auth: dict | None = None):
        return client.get(url, headers={**(auth or {}), **spoof}, follow_redirects=False)

    page = get("/")
    big = client.post(
        "/api/conversations",
        content=b'{"title": "' + b"x" * 300_000 + b'"}',
        headers={"Content-Type": "application/json", **user, **spoof},
    )
    invalid = client.post("/api/conversations", json={"title": 5}, headers={**user, **spoof})
    return {
        "anonymous me": get("/api/auth/me").status_code,
        "anonymous conversations": get("/api/conversations").status_code,
        "anonymous v1": get("/v1/models").status_code,
        "anonymous admin": get("/api/users").status_code,
        "user admin": get("/api/users", user).status_code,
        "user me": get("/api/auth/me", user).json()["email"],
        "admin users": get("/api/users", admin).status_code,
        "anonymous page": (page.status_code, page.headers.get("location")),
        "oversized body": big.status_code,  # the size limit is chosen by path
        "invalid body": invalid.status_code,  # 422 on /api, 400 on /v1: chosen by path
    }


def test_host_and_forwarding_headers_change_no_auth_outcome(client: TestClient):
    admin = new_user(client, "admin@x.io")
    user = new_user(client, "user@x.io")
    expected = {
        "anonymous me": 401,
        "anonymous conversations": 401,
        "anonymous v1": 401,
        "anonymous admin": 401,
        "user admin": 403,
        "user me": "user@x.io",
        "admin users": 200,
        "anonymous page": (303, "/login"),
        "oversized body": 413,
        "invalid body": 422,
    }
    for spoof in SPOOFS:
        assert _outcomes(client, user, admin, spoof) == expected, spoof


def test_a_local_cookie_session_still_needs_the_csrf_header(client: TestClient):
    """No 'requests from localhost are trusted' shortcut: CSRF applies whatever the Host."""
    r = client.post("/api/auth/signup", json={"email": "a@x.io", "password": "password-123"})
    assert r.status_code == 201
    for spoof in SPOOFS:
        r = client.post("/api/conversations", json={}, headers=spoof)
        assert r.status_code == 403 and r.json()["error"]["code"] == "csrf_failed", spoof


def test_allowed_hosts_refuse_other_hosts(settings, fake_catalog):
    from dataclasses import replace

    from tandem.web.app import create_app

    app = create_app(
        replace(settings, allowed_hosts=("tandem.example", "*.tandem.example")), fake_catalog
    )
    with TestClient(app, base_url="http://tandem.example") as client:
        headers = new_user(client, "a@x.io")
        assert client.get("/api/auth/me", headers=headers).status_code == 200
        sub = {**headers, "Host": "chat.tandem.example"}
        assert client.get("/api/auth/me", headers=sub).status_code == 200
        for host in ("evil.example", "localhost", "127.0.0.1", "tandem.example.evil.example"):
            r = client.get("/api/auth/me", headers={**headers, "Host": host})
            assert r.status_code == 400, host
            assert "user" not in r.text


def test_allowed_hosts_setting_from_the_environment(monkeypatch):
    from tandem.core.settings import Settings

    monkeypatch.setenv("TANDEM_ALLOWED_HOSTS", " Tandem.Example, *.tandem.example ,")
    assert Settings.from_env().allowed_hosts == ("tandem.example", "*.tandem.example")
    monkeypatch.delenv("TANDEM_ALLOWED_HOSTS")
    assert Settings.from_env().allowed_hosts == ()  # default: any host (local development)
