"""Rate limits: generation per user and per API key, log-in per account and per client address;
429 with Retry-After and a JSON error; other users unaffected; buckets refill. The limiter's
clock is replaced, so nothing sleeps."""

from __future__ import annotations

import dataclasses

import pytest
from fastapi.testclient import TestClient

from conftest import new_user
from tandem.core.settings import RateLimit, Settings
from tandem.web.app import create_app


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def limited(settings, fake_catalog):
    """An app with small limits: 3 answers a minute per user, 2 per key, 3 log-ins a minute
    per account, 5 per client address."""
    small = dataclasses.replace(
        settings,
        rate_generation=RateLimit(3, 60),
        rate_generation_per_key=RateLimit(2, 60),
        rate_login_per_account=RateLimit(3, 60),
        rate_login_per_ip=RateLimit(5, 60),
    )
    app = create_app(small, fake_catalog)
    clock = Clock()
    with TestClient(app) as client:
        app.state.rate_limiter.clock = clock
        yield client, clock


def _is_429(r) -> bool:
    if r.status_code != 429:
        return False
    error = r.json()["error"]
    assert error["code"] == "rate_limit_exceeded" and error["type"] == "rate_limit_error"
    assert int(r.headers["retry-after"]) >= 1
    return True


def _ask(client, headers, conv: str):
    return client.post(
        f"/api/conversations/{conv}/messages", json={"content": "hi"}, headers=headers
    )


def test_generation_is_limited_per_key_and_per_user_and_refills(limited):
    client, clock = limited
    alice, bob = new_user(client, "alice@x.io"), new_user(client, "bob@x.io")
    key2 = client.post("/api/keys", json={"name": "second"}, headers=alice).json()["key"]
    alice2 = {"Authorization": f"Bearer {key2}"}
    conv = client.post("/api/conversations", json={}, headers=alice).json()["id"]
    assert [_ask(client, alice, conv).status_code for _ in range(2)] == [200, 200]
    r = _ask(client, alice, conv)
    assert _is_429(r)  # the key's own bucket (2/min)
    assert r.headers["retry-after"] == "30"  # one token back after 60 s / 2
    assert _ask(client, alice2, conv).status_code == 200  # her other key still works…
    assert _is_429(_ask(client, alice2, conv))  # …until her user bucket (3/min) is empty
    # Another user is not affected.
    bob_conv = client.post("/api/conversations", json={}, headers=bob).json()["id"]
    assert _ask(client, bob, bob_conv).status_code == 200
    clock.now += 60  # buckets refill
    assert _ask(client, alice, conv).status_code == 200


@pytest.mark.parametrize(
    "route", ["openai", "regenerate", "edit", "compare", "message-with-cookie"]
)
def test_every_generating_route_draws_from_the_bucket(limited, route):
    client, _ = limited
    alice = new_user(client, "alice@x.io")
    conv = client.post("/api/conversations", json={}, headers=alice).json()["id"]
    turn = _ask(client, alice, conv).json()  # 1 of the key's 2 tokens
    answer, question = turn["assistant_message"]["id"], turn["user_message"]["id"]
    headers = alice
    if route == "openai":
        path, body = "/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}]}
    elif route == "regenerate":
        path, body = f"/api/messages/{answer}/regenerate", {}
    elif route == "edit":
        path, body = f"/api/messages/{question}/edit", {"content": "hello"}
    elif route == "compare":
        path, body = f"/api/conversations/{conv}/comparisons", {"content": "hi"}
    else:  # the web app's session cookie: the user bucket (3/min) alone
        login = {"email": "alice@x.io", "password": "password-123"}
        assert client.post("/api/auth/login", json=login).status_code == 200
        headers = {"X-CSRF-Token": client.cookies.get("tandem_csrf")}
        path, body = f"/api/conversations/{conv}/messages", {"content": "hi"}
        assert client.post(path, json=body, headers=headers).status_code == 200
    assert client.post(path, json=body, headers=headers).status_code in (200, 201)
    assert _is_429(client.post(path, json=body, headers=headers))


def test_login_is_limited_per_account(limited):
    client, clock = limited
    new_user(client, "alice@x.io")
    new_user(client, "bob@x.io")
    wrong = {"email": "alice@x.io", "password": "guess-guess"}
    assert [client.post("/api/auth/login", json=wrong).status_code for _ in range(3)] == [401] * 3
    right = {"email": "ALICE@x.io", "password": "password-123"}
    assert _is_429(client.post("/api/auth/login", json=right))  # the right one waits too
    bob = {"email": "bob@x.io", "password": "password-123"}
    assert client.post("/api/auth/login", json=bob).status_code == 200
    clock.now += 20  # one attempt back (3 a minute)
    assert client.post("/api/auth/login", json=right).status_code == 200


def test_login_is_limited_per_client_address_and_forwarded_for_is_not_believed(limited):
    client, clock = limited
    tries = [
        client.post(
            "/api/auth/login",
            json={"email": f"u{i}@x.io", "password": "guess-guess"},
            # A client picking its own address: ignored without TANDEM_TRUSTED_PROXIES.
            headers={"X-Forwarded-For": f"10.0.0.{i}"},
        )
        for i in range(6)
    ]
    assert [r.status_code for r in tries[:5]] == [401] * 5
    assert _is_429(tries[5])
    clock.now += 60
    r = client.post("/api/auth/login", json={"email": "u9@x.io", "password": "guess-guess"})
    assert r.status_code == 401


def test_trusted_proxy_forwarded_for_names_the_client(settings, fake_catalog):
    proxied = dataclasses.replace(
        settings, rate_login_per_ip=RateLimit(2, 60), trusted_proxies=("127.0.0.0/8",)
    )
    app = create_app(proxied, fake_catalog)
    transport_peer = {"client": ("127.0.0.1", 5000)}
    with TestClient(app, **transport_peer) as client:

        def login(forwarded: str):
            return client.post(
                "/api/auth/login",
                json={"email": "nobody@x.io", "password": "guess-guess"},
                headers={"X-Forwarded-For": forwarded},
            )

        # The proxy appends the real peer; whatever the client wrote to the left is ignored.
        assert login("6.6.6.6, 203.0.113.7").status_code == 401
        assert login("7.7.7.7, 203.0.113.7").status_code == 401
        assert _is_429(login("8.8.8.8, 203.0.113.7"))
        assert login("203.0.113.8").status_code == 401  # another client behind the proxy


def test_rates_parse_from_the_environment(tandem_home):
    s = Settings.from_env(
        {
            "TANDEM_HOME": str(tandem_home),
            "TANDEM_RATE_GENERATION": "5/s",
            "TANDEM_RATE_GENERATION_PER_KEY": "off",
            "TANDEM_RATE_LOGIN_PER_ACCOUNT": "1000/hour",
            "TANDEM_TRUSTED_PROXIES": "10.0.0.1, 192.168.0.0/16",
        }
    )
    assert s.rate_generation == RateLimit(5, 1) and s.rate_generation_per_key is None
    assert s.rate_login_per_account == RateLimit(1000, 3600)
    assert s.rate_login_per_ip == RateLimit(30, 60)  # the default
    assert s.trusted_proxies == ("10.0.0.1/32", "192.168.0.0/16")
    for bad in ({"TANDEM_RATE_GENERATION": "lots"}, {"TANDEM_TRUSTED_PROXIES": "proxy.local"}):
        with pytest.raises(ValueError):
            Settings.from_env({"TANDEM_HOME": str(tandem_home), **bad})
