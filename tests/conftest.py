"""Shared fixtures: a temp TANDEM_HOME per test, database URLs (SQLite and PostgreSQL), a
FakeEngine catalog, API clients, and `live_server(app)` for tests that need a real socket.

    .venv/bin/python -m pytest -m "not model and not postgres and not browser"   # hermetic
    .venv/bin/python -m pytest -m postgres                                         # PostgreSQL
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pg import PostgresServer, find_bindir

# Real-model fixtures (model_home, prepared_model, onnx_engine), browser fixtures (browser,
# web, web_with) and voice fixtures (spoken_wav, mic_browser) live in their own modules.
pytest_plugins = ["model_fixtures", "browser_fixtures", "voice_fixtures"]

# -- environment -------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def tandem_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own data directory, so nothing leaks between tests or into ~."""
    home = tmp_path / "tandem-home"
    home.mkdir()
    monkeypatch.setenv("TANDEM_HOME", str(home))
    monkeypatch.delenv("TANDEM_DATABASE_URL", raising=False)
    monkeypatch.delenv("TANDEM_ADMIN_API_KEY", raising=False)
    return home


@pytest.fixture(autouse=True)
def hermetic_embedder(request: pytest.FixtureRequest) -> Iterator[None]:
    """Files uploaded in hermetic tests are embedded by a hashed bag of words, not MiniLM
    (which takes seconds to load); tests marked `model` get the real ONNX one, prepared once
    into the shared test-model cache."""
    from tandem.retrieval.embeddings import set_embedder

    if request.node.get_closest_marker("model") is None:
        from fake_embedder import HashEmbedder

        set_embedder(HashEmbedder())
    else:
        from model_fixtures import SharedOnnxEmbedder

        set_embedder(SharedOnnxEmbedder())
    yield
    set_embedder(None)


@pytest.fixture(autouse=True)
def hermetic_voice(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Speech in hermetic tests is transcribed and spoken by fakes (tests/fake_voice.py) in
    place of Whisper and Piper; tests marked `model` get the real ones, each loaded once per
    test session (tandem.voice caches them per process)."""
    if request.node.get_closest_marker("model") is None:
        from fake_voice import FakeSynthesizer, FakeTranscriber
        from tandem.voice.speech import SYNTHESIZERS
        from tandem.voice.transcription import TRANSCRIBERS

        monkeypatch.setitem(TRANSCRIBERS, "whisper", FakeTranscriber.from_settings)
        monkeypatch.setitem(SYNTHESIZERS, "piper", FakeSynthesizer.from_settings)


@pytest.fixture(autouse=True)
def fast_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """argon2's production cost (~0.2 s a hash here) would dominate the suite; tests only need
    the same code path, not the same cost."""
    from argon2 import PasswordHasher

    monkeypatch.setattr(
        "tandem.store.users._hasher", PasswordHasher(time_cost=1, memory_cost=64, parallelism=1)
    )


# -- databases ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    bindir = find_bindir()
    if bindir is None:
        # A skipped PostgreSQL run must not pass for a green one: fail loudly instead.
        pytest.fail("PostgreSQL is not installed: run `make test` (it installs it from Debian)")
    server = PostgresServer(bindir).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def sqlite_url(tandem_home: Path) -> str:
    return f"sqlite:///{tandem_home / 'tandem.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tandem_home: Path) -> str:
    """An empty database; tests using it run once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tandem_home / 'tandem.db'}"
    return request.getfixturevalue("postgres_server").create_database()


# -- live server -------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def live_server() -> Iterator[Callable[..., str]]:
    """`live_server(app)` serves an ASGI app with uvicorn on 127.0.0.1 in a background thread
    and returns its base URL ("http://127.0.0.1:PORT"); servers stop when the test ends."""
    import uvicorn

    started: list[tuple[uvicorn.Server, threading.Thread]] = []

    def start(app: object, timeout_s: float = 30.0) -> str:
        port = _free_port()
        config = uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
        thread.start()
        started.append((server, thread))
        deadline = time.monotonic() + timeout_s
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start (see the log above)")
            time.sleep(0.02)
        return f"http://127.0.0.1:{port}"

    yield start
    for server, thread in started:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def session_factory(db_url: str) -> Iterator[object]:
    """A migrated database (SQLite and PostgreSQL) and its session factory."""
    from tandem.store import make_engine, make_session_factory, migrate

    engine = make_engine(db_url)
    migrate(engine)
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture
def session(session_factory: Callable[[], object]) -> Iterator[object]:
    with session_factory() as s:  # type: ignore[attr-defined]
        yield s


@pytest.fixture
def anyio_backend() -> str:
    """Async tests (`@pytest.mark.anyio`) run on asyncio, like uvicorn does."""
    return "asyncio"


# -- the API with fake engines -------------------------------------------------------------

OTHER_ANSWER = "Another answer from the other model."


@pytest.fixture
def fake_catalog() -> object:
    """Two fake models: `fake-model` echoes ("You said: …"), `other-model` is scripted."""
    from fake_engine import FakeEngine
    from tandem.engines import ModelCatalog

    catalog = ModelCatalog(default_model="fake-model")
    catalog.add(FakeEngine("fake-model"))
    catalog.add(FakeEngine("other-model", script=[OTHER_ANSWER]))
    return catalog


@pytest.fixture
def api_db_url(sqlite_url: str) -> str:
    """The API tests' database: SQLite; a module overrides this with `db_url` to run on
    PostgreSQL as well."""
    return sqlite_url


@pytest.fixture
def settings(tandem_home: Path, api_db_url: str) -> object:
    from tandem.core.settings import Settings

    # Titling chats is one more generation per chat: scripted fake engines would answer it
    # with their next line. Tests of titles switch it on. No job worker: a queued job would start
    # a real training or eval process; the job tests start a worker with a stand-in launcher.
    return Settings(
        home=tandem_home,
        database_url=api_db_url,
        max_body_bytes=200_000,
        chat_titles=False,
        job_worker=False,
    )


@pytest.fixture
def app(settings: object, fake_catalog: object) -> object:
    from tandem.web.app import create_app

    return create_app(settings, fake_catalog)  # type: ignore[arg-type]


@pytest.fixture
def client(app: object) -> Iterator[object]:
    from fastapi.testclient import TestClient

    with TestClient(app) as c:  # `with` runs the lifespan: migrations, admin bootstrap
        yield c


def new_user(client: object, email: str, password: str = "password-123") -> dict[str, str]:
    """Sign up through the API and return headers carrying a fresh API key for that user.
    The client's cookie jar is cleared so requests authenticate only with the headers."""
    r = client.post(  # type: ignore[attr-defined]
        "/api/auth/signup", json={"email": email, "password": password}
    )
    assert r.status_code == 201, r.text
    # A write with the session cookie must echo the CSRF cookie (tandem.api.csrf).
    csrf = {"X-CSRF-Token": client.cookies.get("tandem_csrf")}  # type: ignore[attr-defined]
    key = client.post("/api/keys", json={"name": "test"}, headers=csrf).json()["key"]  # type: ignore[attr-defined]
    client.cookies.clear()  # type: ignore[attr-defined]
    return {"Authorization": f"Bearer {key}"}


def log_in_as(client: object, email: str, password: str = "password-123") -> None:
    """The client's cookie jar holds a web session of `email` only (as a browser would)."""
    client.cookies.clear()  # type: ignore[attr-defined]
    r = client.post("/api/auth/login", json={"email": email, "password": password})  # type: ignore[attr-defined]
    assert r.status_code == 200, r.text


def sse_events(text: str) -> list[object]:
    """The JSON payloads of a server-sent-events body (`[DONE]` kept as a string)."""
    import json

    out: list[object] = []
    for line in text.splitlines():
        if line.startswith("data: "):
            data = line[len("data: ") :]
            out.append(data if data == "[DONE]" else json.loads(data))
    return out
