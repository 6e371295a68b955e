"""No secret, password hash or API key in logs, error bodies, API responses, exports or reprs;
no start with a guessable admin key outside development mode."""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from conftest import _free_port, new_user
from tandem.cli.main import app as cli
from tandem.core.settings import BackendConfig, ImageBackendConfig, Settings
from tandem.store.credentials import WeakSecret, weak_secret_reason
from tandem.web.app import create_app

PASSWORD = "a secret passphrase 7"
ADMIN_KEY = "tk-admin-Qm9vWmF0aGVyLTZ1bmtJc2FTZWNyZXQ"
BACKEND_KEY = "sk-backend-secret-9f8e7d6c5b4a"
IMAGE_KEY = "sk-image-secret-0a1b2c3d4e5f"
DB_PASSWORD = "pg-secret-pw-31337"


@pytest.fixture
def secret_settings(settings):
    return dataclasses.replace(
        settings,
        admin_api_key=ADMIN_KEY,
        backends=(BackendConfig("vllm", "http://gpu:8000/v1", api_key=BACKEND_KEY),),
        image_backend=ImageBackendConfig("openai", "http://img:9000/v1", api_key=IMAGE_KEY),
    )


def test_settings_repr_hides_every_secret(tandem_home):
    s = Settings.from_env(
        {
            "TANDEM_HOME": str(tandem_home),
            "TANDEM_DATABASE_URL": f"postgresql+psycopg://tandem:{DB_PASSWORD}@db/tandem",
            "TANDEM_ADMIN_API_KEY": ADMIN_KEY,
            "TANDEM_BACKENDS": json.dumps(
                [{"name": "v", "base_url": "http://gpu/v1", "api_key": BACKEND_KEY}]
            ),
            "TANDEM_IMAGE_BACKEND": json.dumps({"base_url": "http://img/v1", "api_key": IMAGE_KEY}),
        }
    )
    text = repr(s) + str(s)
    for secret in (DB_PASSWORD, ADMIN_KEY, BACKEND_KEY, IMAGE_KEY):
        assert secret not in text
    assert "http://gpu/v1" in text  # the rest is still there to debug with


@pytest.mark.parametrize(
    "key", ["changeme", "admin", "tk-changeme", "short-but-random-Xy7", "x" * 40, "0123456789" * 3]
)
def test_weak_admin_keys_are_refused_outside_development(settings, fake_catalog, key, caplog):
    assert weak_secret_reason(key) is not None
    with pytest.raises(WeakSecret) as refused:
        create_app(dataclasses.replace(settings, admin_api_key=key), fake_catalog)
    assert key not in str(refused.value) and "TANDEM_ENV=development" in str(refused.value)
    # Development mode serves with it, and says so in the log (without the key).
    caplog.set_level(logging.WARNING)
    dev = dataclasses.replace(settings, admin_api_key=key, env="development")
    with TestClient(create_app(dev, fake_catalog)) as client:
        me = client.get("/api/auth/me", headers={"Authorization": f"Bearer {key}"})
        assert me.json()["is_admin"] is True
    assert "too weak" in caplog.text and key not in caplog.text


def test_strong_admin_key_serves_in_production(settings, fake_catalog):
    assert weak_secret_reason(ADMIN_KEY) is None
    strong = dataclasses.replace(settings, admin_api_key=ADMIN_KEY)
    with TestClient(create_app(strong, fake_catalog)) as c:
        assert c.get("/api/auth/me", headers={"Authorization": f"Bearer {ADMIN_KEY}"}).is_success


def test_serve_refuses_a_weak_key_before_preparing_the_model(tandem_home, monkeypatch):
    monkeypatch.setenv("TANDEM_ADMIN_API_KEY", "changeme")
    started = time.monotonic()
    r = CliRunner().invoke(cli, ["serve"])
    assert r.exit_code == 2 and "too weak" in r.output and "changeme" not in r.output
    assert time.monotonic() - started < 5  # no model was prepared
    monkeypatch.setenv("TANDEM_ENV", "staging")
    with pytest.raises(ValueError):
        Settings.from_env()


def test_a_race_on_sign_up_is_a_409_and_leaks_no_hash(app, client, caplog, monkeypatch):
    """Two sign-ups with one email, the second committing between the first's check and its
    insert: the database refuses the row; the answer is a 409, and neither the log nor the
    body carries the password or its hash (SQLAlchemy's error text would have both)."""
    from tandem.store import users
    from tandem.store.models import User

    new_user(client, "first@x.io")  # not the first account: that one has its own claim
    real = users._hasher
    hashes: list[str] = []

    class RacingHasher:
        def hash(self, password: str) -> str:
            digest = real.hash(password)
            hashes.append(digest)
            with app.state.session_factory() as other:  # the other request wins the race
                other.add(User(email="ada@x.io", password_hash=digest, display_name="ada"))
                other.commit()
            return digest

    monkeypatch.setattr(users, "_hasher", RacingHasher())
    caplog.set_level(logging.DEBUG)
    r = client.post("/api/auth/signup", json={"email": "ada@x.io", "password": PASSWORD})
    assert r.status_code == 409, r.text
    for text in (r.text, caplog.text):
        assert PASSWORD not in text and hashes[0] not in text


def _serve_with_access_log(app) -> tuple[str, uvicorn.Server]:
    """uvicorn with its access log on, logging through the root logger (so caplog sees it)."""
    port = _free_port()
    config = uvicorn.Config(app, port=port, log_level="info", log_config=None, access_log=True)
    server = uvicorn.Server(config)
    threading.Thread(target=server.run, daemon=True).start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    return f"http://127.0.0.1:{port}", server


def test_no_secret_in_logs_responses_or_exports(secret_settings, fake_catalog, caplog):
    caplog.set_level(logging.DEBUG)
    app = create_app(secret_settings, fake_catalog)
    base, server = _serve_with_access_log(app)
    bodies: list[str] = []
    try:
        with httpx.Client(base_url=base, timeout=30) as web:

            def call(method: str, path: str, shows_key: bool = False, **kw) -> httpx.Response:
                r = web.request(method, path, **kw)
                assert r.status_code < 500, (path, r.text)
                if not shows_key:
                    bodies.append(r.text + json.dumps(dict(r.headers)))
                return r

            signup = {"email": "ada@x.io", "password": PASSWORD}
            assert call("POST", "/api/auth/signup", json=signup).status_code == 201
            csrf = {"X-CSRF-Token": web.cookies.get("tandem_csrf")}
            # The one response that shows a key, once, by design.
            r = call("POST", "/api/keys", shows_key=True, json={"name": "k"}, headers=csrf)
            key = r.json()["key"]
            web.cookies.clear()
            auth = {"Authorization": f"Bearer {key}"}
            admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
            # Failed log-ins, a bad key, secrets where they do not belong.
            call("POST", "/api/auth/login", json={"email": "ada@x.io", "password": PASSWORD + "x"})
            call("POST", "/api/auth/login", json={"email": "nobody@x.io", "password": PASSWORD})
            call("POST", "/api/auth/login", json={"email": PASSWORD, "password": PASSWORD})
            call("POST", "/api/auth/signup", json={"email": "b@x.io", "password": PASSWORD * 20})
            call("GET", "/api/auth/me", headers={"Authorization": f"Bearer {key}x"})
            call("GET", "/api/auth/me", headers={"Authorization": f"Basic {key}"})
            call("GET", f"/api/conversations?api_key={key}&token={ADMIN_KEY}")
            call("GET", f"/api/conversations?{key}", headers=auth)
            call("POST", "/api/keys", json={"name": "n", "key": key}, headers=auth)
            call("PATCH", "/api/auth/me", json={"password": PASSWORD}, headers=auth)
            call("POST", "/api/auth/login", json={"email": "ada@x.io", "password": PASSWORD})
            # Normal use, including the user pasting their key into a chat that is rated up
            # and exported in a dataset.
            conv = call("POST", "/api/conversations", json={}, headers=auth).json()["id"]
            text = f"my key is {key} and my password is {PASSWORD}"
            turn = call(
                "POST", f"/api/conversations/{conv}/messages", json={"content": text}, headers=auth
            ).json()
            mid = turn["assistant_message"]["id"]
            call("POST", f"/api/messages/{mid}/feedback", json={"rating": "up"}, headers=auth)
            call("GET", "/api/auth/me", headers=auth)
            call("GET", "/api/keys", headers=auth)
            call("GET", "/api/users", headers=admin)
            call("GET", "/openapi.json")
            snap = call("POST", "/api/datasets", json={"kind": "sft"}, headers=admin).json()
            for url in snap["files"].values():
                assert call("GET", url, headers=admin).status_code == 200
            call("DELETE", "/api/auth/me/data", headers=auth)
            call("POST", "/api/auth/logout", headers=auth)
    finally:
        server.should_exit = True
    from sqlalchemy import select

    from tandem.store.models import User

    with app.state.session_factory() as s:
        password_hash = s.scalar(select(User.password_hash).where(User.email == "ada@x.io"))
    assert password_hash and any("GET /api/conversations?" in m for m in caplog.messages)
    leaks = {
        "password": PASSWORD,
        "password hash": password_hash,
        "api key": key,
        "api key body": key[3:],
        "admin key": ADMIN_KEY,
        "backend key": BACKEND_KEY,
        "image key": IMAGE_KEY,
    }
    logs = "\n".join(
        f"{r.name} {r.getMessage()} {r.exc_text or ''}"
        for r in caplog.records
        if not r.name.startswith(("httpx", "httpcore"))  # this test's own client
    )
    for what, secret in leaks.items():
        assert secret not in logs, f"the {what} is in the log"
        # The chat itself may echo what the user typed; exports, errors and listings may not.
        for body in bodies:
            if secret in body and "You said:" not in body and '"role"' not in body:
                pytest.fail(f"the {what} is in a response: {body[:300]}")
    exported = "".join(
        p.read_text(errors="replace")
        for p in (secret_settings.home / "datasets").rglob("*")
        if p.is_file()
    )
    assert "[API_KEY]" in exported  # the pasted key was found and replaced
    assert key not in exported and key[3:] not in exported


def test_api_responses_never_carry_hashes(client):
    alice = new_user(client, "alice@x.io")
    for path in ("/api/auth/me", "/api/keys", "/api/users"):
        body = client.get(path, headers=alice).text
        assert "argon2" not in body and "key_hash" not in body and "password" not in body
