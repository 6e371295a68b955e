"""The CSRF token belongs to one web session.

The finding: the double-submit check compared the `tandem_csrf` cookie with the
`X-CSRF-Token` header and nothing else, so any token passed for any session. An attacker who
can plant a cookie in the victim's browser (a sibling subdomain, a plain-HTTP response on the
same host) could send their own token as cookie and header. Now the token is derived from the
session (an HMAC keyed with the session's secret token), so one session's token is refused in
every other, and a log-out or password change retires it with the session.

    .venv/bin/python -m pytest -q tests/security/test_csrf_binding.py
"""

from __future__ import annotations

from fastapi.testclient import TestClient

PASSWORD = "password-123"


def _signed_in(app, email: str) -> TestClient:
    client = TestClient(app)
    r = client.post("/api/auth/signup", json={"email": email, "password": PASSWORD})
    assert r.status_code == 201, r.text
    return client


def _plant(client: TestClient, token: str) -> None:
    """Replace the client's CSRF cookie, as a cookie set by a sibling subdomain would."""
    client.cookies.delete("tandem_csrf")
    client.cookies.set("tandem_csrf", token)
    assert client.cookies.get("tandem_csrf") == token


def test_a_token_from_another_session_is_refused(app):
    with TestClient(app):  # runs the lifespan once (migrations)
        alice = _signed_in(app, "alice@x.io")
        mallory = _signed_in(app, "mallory@x.io")
        theirs = mallory.cookies.get("tandem_csrf")
        # Mallory's token as cookie and header, with Alice's session: the planted-cookie attack.
        _plant(alice, theirs)
        r = alice.post("/api/memories", json={"text": "planted"}, headers={"X-CSRF-Token": theirs})
        assert r.status_code == 403 and r.json()["error"]["code"] == "csrf_failed"
        # Alice's own session's token still works, from the cookie or from /api/auth/csrf.
        alice.cookies.delete("tandem_csrf")
        own = alice.get("/api/auth/csrf").json()["token"]
        assert own != theirs and alice.cookies.get("tandem_csrf") == own
        r = alice.post("/api/memories", json={"text": "mine"}, headers={"X-CSRF-Token": own})
        assert r.status_code == 201
        texts = [m["text"] for m in alice.get("/api/memories").json()]
        assert texts == ["mine"]


def test_a_second_session_of_the_same_account_has_its_own_token(app):
    with TestClient(app):
        first = _signed_in(app, "alice@x.io")
        second = TestClient(app)
        r = second.post("/api/auth/login", json={"email": "alice@x.io", "password": PASSWORD})
        assert r.status_code == 200
        one, two = first.cookies.get("tandem_csrf"), second.cookies.get("tandem_csrf")
        assert one and two and one != two
        _plant(second, one)  # the first session's token as cookie and header
        r = second.post("/api/memories", json={"text": "x"}, headers={"X-CSRF-Token": one})
        assert r.status_code == 403
        _plant(second, two)
        r = second.post("/api/memories", json={"text": "x"}, headers={"X-CSRF-Token": two})
        assert r.status_code == 201


def test_a_token_dies_with_its_session(app):
    with TestClient(app):
        alice = _signed_in(app, "alice@x.io")
        old = alice.cookies.get("tandem_csrf")
        assert alice.post("/api/auth/logout", headers={"X-CSRF-Token": old}).status_code == 204
        r = alice.post("/api/auth/login", json={"email": "alice@x.io", "password": PASSWORD})
        assert r.status_code == 200
        new = alice.cookies.get("tandem_csrf")
        assert new != old
        _plant(alice, old)  # the old session's token as cookie and header
        r = alice.post("/api/memories", json={"text": "x"}, headers={"X-CSRF-Token": old})
        assert r.status_code == 403
        alice.cookies.delete("tandem_csrf")
        assert alice.get("/api/auth/csrf").json() == {"token": new}
