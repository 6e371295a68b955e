"""Credentials (docs/security.md, "Authorization matrix"): the one accepted way of presenting
an API key, revocation and disabling that end access at once (open streams included), and the
first-sign-up race that must yield exactly one admin."""

from __future__ import annotations

import json
import threading
import time

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from conftest import new_user


def test_only_bearer_keys_are_accepted(client: TestClient):
    headers = new_user(client, "a@x.io")
    key = headers["Authorization"].removeprefix("Bearer ")
    assert client.get("/api/auth/me", headers=headers).status_code == 200
    assert client.get("/api/auth/me", headers={"Authorization": f"bearer {key}"}).status_code == 200
    refused = [
        {"headers": {"X-API-Key": key}},
        {"headers": {"api-key": key}},
        {"headers": {"Authorization": key}},
        {"headers": {"Authorization": f"Basic {key}"}},
        {"headers": {"Authorization": f"Token {key}"}},
        {"params": {"api_key": key}},
        {"params": {"key": key}},
        {"params": {"access_token": key}},
        {"params": {"token": key}},
    ]
    for way in refused:
        for url in ("/api/auth/me", "/v1/models"):
            r = client.get(url, **way)
            assert r.status_code == 401, (way, url, r.text)
            assert r.json()["error"]["type"] == "authentication_error"


def test_an_unaccepted_key_does_not_fall_back_to_the_cookie(client: TestClient):
    """A request that presents a key in a way tandem refuses is refused, even when the
    browser's session cookie beside it would have been valid."""
    r = client.post("/api/auth/signup", json={"email": "a@x.io", "password": "password-123"})
    assert r.status_code == 201
    assert client.get("/api/auth/me").status_code == 200  # the cookie alone works
    assert client.get("/api/auth/me", headers={"X-API-Key": "tk-whatever"}).status_code == 401
    assert client.get("/api/auth/me", params={"api_key": "tk-whatever"}).status_code == 401
    assert client.get("/api/auth/me", headers={"Authorization": "Bearer nope"}).status_code == 401


# -- revocation and disabling mid-stream -------------------------------------------------------

LONG = " ".join(f"w{i}" for i in range(300))  # echoed word by word: 300 x 20 ms = 6 s


@pytest.fixture
def slow_app(settings):
    from fake_engine import FakeEngine
    from tandem.engines import ModelCatalog
    from tandem.web.app import create_app

    catalog = ModelCatalog(default_model="fake-model")
    catalog.add(FakeEngine("fake-model", delay_s=0.02))
    return create_app(settings, catalog)


def _stream_then(base: str, request: dict, cut, events: list) -> float:
    """Read an SSE stream; call `cut()` after the first text arrives; return the seconds from
    the cut to the end of the stream."""
    cut_at = None
    with httpx.Client(base_url=base, timeout=30) as http, http.stream("POST", **request) as r:
        assert r.status_code == 200, r.read()
        for line in r.iter_lines():
            if not line.startswith("data: "):
                continue
            data = line[len("data: ") :]
            events.append(data if data == "[DONE]" else json.loads(data))
            if cut_at is None and ('"delta"' in data or '"content":"w' in data):
                cut()
                cut_at = time.monotonic()
    assert cut_at is not None
    return time.monotonic() - cut_at


@pytest.mark.parametrize("how", ["revoke key", "disable user"])
@pytest.mark.parametrize("api", ["native", "openai"])
def test_revoking_ends_an_open_stream(slow_app, live_server, how, api):
    from tandem.store.models import StoredGeneration

    base = live_server(slow_app)
    with httpx.Client(base_url=base) as http:
        admin = _signup_with_key(http, "admin@x.io")
        user = _signup_with_key(http, "user@x.io")
        user_id = http.get("/api/auth/me", headers=user).json()["id"]
        key_id = http.get("/api/keys", headers=user).json()[0]["id"]
        spare = http.post("/api/keys", json={"name": "spare"}, headers=user).json()["key"]
        if api == "native":
            conv = http.post("/api/conversations", json={}, headers=user).json()
            url = f"/api/conversations/{conv['id']}/messages"
            body = {"content": LONG, "stream": True}
        else:
            url = "/v1/chat/completions"
            body = {"messages": [{"role": "user", "content": LONG}], "stream": True}

    def cut() -> None:
        with httpx.Client(base_url=base) as http:
            if how == "revoke key":
                r = http.delete(f"/api/keys/{key_id}", headers={"Authorization": f"Bearer {spare}"})
                assert r.status_code == 204
            else:
                r = http.patch(f"/api/users/{user_id}", json={"is_disabled": True}, headers=admin)
                assert r.status_code == 200

    events: list = []
    took = _stream_then(base, {"url": url, "json": body, "headers": user}, cut, events)
    assert took < 2.0, f"the stream ran {took:.1f} s after the {how}"
    last = events[-1]
    assert isinstance(last, dict) and last["error"]["type"] == "authentication_error", events[-3:]
    assert not any(isinstance(e, dict) and e.get("type") == "done" for e in events)
    # The partial answer is stored, as cancelled.
    deadline = time.monotonic() + 5
    with slow_app.state.session_factory() as session:
        while True:
            rows = session.scalars(select(StoredGeneration)).all()
            if (rows and rows[-1].finish_reason == "cancelled") or time.monotonic() > deadline:
                break
            time.sleep(0.05)
            session.expire_all()
        assert [g.finish_reason for g in rows] == ["cancelled"]
    with httpx.Client(base_url=base) as http:
        assert http.get("/api/auth/me", headers=user).status_code == 401


def _signup_with_key(http: httpx.Client, email: str) -> dict[str, str]:
    r = http.post("/api/auth/signup", json={"email": email, "password": "password-123"})
    assert r.status_code == 201, r.text
    csrf = {"X-CSRF-Token": r.cookies["tandem_csrf"]}
    key = http.post("/api/keys", json={"name": "k"}, headers=csrf, cookies=r.cookies).json()
    http.cookies.clear()
    return {"Authorization": f"Bearer {key['key']}"}


# -- the first sign-up race --------------------------------------------------------------------


@pytest.fixture
def api_db_url(db_url):
    return db_url


@pytest.mark.parametrize("round_", range(3))
def test_simultaneous_first_signups_make_one_admin(app, live_server, round_):
    base = live_server(app)
    n = 6
    barrier = threading.Barrier(n)
    results: list[dict] = []

    def sign_up(i: int) -> None:
        with httpx.Client(base_url=base, timeout=30) as http:
            barrier.wait()
            r = http.post(
                "/api/auth/signup", json={"email": f"u{i}@x.io", "password": "password-123"}
            )
            results.append({"status": r.status_code, **r.json()})

    threads = [threading.Thread(target=sign_up, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r["status"] for r in results) == [201] * n, results
    assert sum(r["is_admin"] for r in results) == 1, results
