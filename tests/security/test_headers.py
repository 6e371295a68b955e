"""Rendering (issue 7, class 2), the server side: a strict Content-Security-Policy and the other
security headers on every page, and CORS as an exact allowlist (none by default), never `*`.
Hermetic (TestClient)."""

from __future__ import annotations

import dataclasses

import pytest
from fastapi.testclient import TestClient

from conftest import new_user
from tandem.core.settings import Settings, parse_cors_origins

PAGES = (
    "/login",
    "/signup",
    "/",
    "/settings",
    "/profiles",
    "/c/abc",
    "/admin/datasets",
    "/admin/evals",
    "/admin/report",
)


def directives(policy: str) -> dict[str, str]:
    return {d.split()[0]: " ".join(d.split()[1:]) for d in policy.split(";") if d.strip()}


def test_every_page_has_a_strict_policy_and_the_security_headers(client):
    client.post("/api/auth/signup", json={"email": "ada@example.com", "password": "password-123"})
    for path in (*PAGES, "/static/chat.js", "/api/auth/me", "/api/nope"):
        r = client.get(path, follow_redirects=False)
        assert r.status_code < 500, (path, r.status_code)
        csp = directives(r.headers["content-security-policy"])
        assert csp["script-src"] == "'self'", path  # no inline script, no eval, no CDN
        assert csp["style-src"] == "'self'", path  # no inline style either
        assert csp["img-src"] == "'self' data: blob:"
        assert csp["connect-src"] == "'self'"
        assert csp["object-src"] == "'none'"
        assert csp["base-uri"] == "'none'"
        assert csp["frame-ancestors"] == "'none'"
        assert csp["form-action"] == "'self'"
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["x-frame-options"] == "DENY"
        assert r.headers["referrer-policy"] == "same-origin"


def test_templates_carry_no_inline_script_style_or_handler():
    """The policy would refuse them (and the browser tests would fail): keep them out."""
    import re
    from pathlib import Path

    import tandem.web

    templates = Path(tandem.web.__file__).parent / "templates"
    for path in templates.glob("*.html"):
        html = path.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)", html), path.name
        assert "<style" not in html, path.name
        assert not re.search(r"\sstyle=", html), path.name
        assert not re.search(r"\son[a-z]+=", html), path.name


def test_413_and_errors_get_the_headers_too(client):
    r = client.post(
        "/api/conversations", content=b"x" * 300_000, headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 413
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    assert r.headers["x-content-type-options"] == "nosniff"


def test_the_api_docs_get_their_own_narrow_policy(client):
    r = client.get("/docs")
    assert r.status_code == 200
    csp = directives(r.headers["content-security-policy"])
    # Vendored bundles (tests/security/test_api_docs_assets.py): scripts from this origin only.
    assert csp["script-src"] == "'self'"
    assert csp["frame-ancestors"] == "'none'" and csp["object-src"] == "'none'"


def test_without_an_allowlist_no_origin_gets_cors(client):
    headers = new_user(client, "ada@example.com")
    preflight = client.options(
        "/api/conversations",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in preflight.headers
    r = client.get("/api/conversations", headers={**headers, "Origin": "https://evil.example"})
    assert r.status_code == 200
    assert "access-control-allow-origin" not in r.headers


@pytest.fixture
def cors_client(settings, fake_catalog):
    from tandem.web.app import create_app

    allowed = dataclasses.replace(settings, cors_origins=("https://app.example.com",))
    with TestClient(create_app(allowed, fake_catalog)) as c:
        yield c


def test_an_allowed_origin_gets_cors_and_any_other_does_not(cors_client):
    headers = new_user(cors_client, "ada@example.com")
    ask = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type",
    }
    ok = cors_client.options(
        "/api/conversations", headers={"Origin": "https://app.example.com", **ask}
    )
    assert ok.status_code == 200
    assert ok.headers["access-control-allow-origin"] == "https://app.example.com"
    assert "access-control-allow-credentials" not in ok.headers  # API keys, never cookies
    assert "authorization" in ok.headers["access-control-allow-headers"].lower()

    for origin in (
        "https://evil.example",
        "https://app.example.com.evil.example",
        "null",
        "http://app.example.com",
    ):
        bad = cors_client.options("/api/conversations", headers={"Origin": origin, **ask})
        assert bad.status_code == 400, origin
        assert "access-control-allow-origin" not in bad.headers, origin
        r = cors_client.get("/api/conversations", headers={**headers, "Origin": origin})
        assert "access-control-allow-origin" not in r.headers, origin

    r = cors_client.get(
        "/api/conversations", headers={**headers, "Origin": "https://app.example.com"}
    )
    assert r.headers["access-control-allow-origin"] == "https://app.example.com"
    assert r.headers["access-control-allow-origin"] != "*"


@pytest.mark.parametrize(
    "value",
    [
        "*",
        "https://*.example.com",
        "null",
        "app.example.com",
        "https://app.example.com/path",
        "https://a.com, *",
    ],
)
def test_a_wildcard_or_malformed_origin_is_refused_at_startup(value):
    with pytest.raises(ValueError, match="TANDEM_CORS_ORIGINS"):
        Settings.from_env({"TANDEM_HOME": "/tmp/x", "TANDEM_CORS_ORIGINS": value})


def test_origins_are_parsed_exactly():
    assert parse_cors_origins(" https://App.example.com/ ,http://localhost:5173") == (
        "https://app.example.com",
        "http://localhost:5173",
    )
    assert parse_cors_origins("") == ()
