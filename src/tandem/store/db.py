"""Connecting to the database and bringing its schema up to date.

engine = make_engine("sqlite:///tandem.db")     # or postgresql+psycopg://user:pw@host/db
migrate(engine)                                  # alembic upgrade head, from the package
Session = make_session_factory(engine)
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from tandem.core.settings import make_private_dir

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
SessionFactory = sessionmaker[Session]


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers proceed while one writer writes; FULL makes a commit survive power loss;
    # SQLite leaves foreign keys off unless asked, per connection.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _private_sqlite_file(path: Path) -> None:
    """Create the database file 0600 (in a 0700 folder when the folder is new) before SQLite
    opens it; SQLite gives its -wal and -shm files the database file's mode. Files an older
    install left readable by others are tightened."""
    if not path.parent.exists():
        make_private_dir(path.parent)
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        try:
            info = file.stat()
        except FileNotFoundError:
            continue
        if info.st_uid == os.geteuid() and info.st_mode & 0o077:
            os.chmod(file, 0o600)


def make_engine(url: str, **kwargs: Any) -> Engine:
    """A SQLAlchemy engine for `url`, configured for tandem (WAL and foreign keys on SQLite)."""
    # Statement parameters (password hashes, key hashes, what users wrote) stay out of
    # exception messages, and so out of logs and tracebacks.
    kwargs.setdefault("hide_parameters", True)
    in_memory = url in ("sqlite://", "sqlite:///:memory:")
    if not in_memory:
        # Requests run in a pool of 40 threads (anyio's default), each holding a connection
        # while it works. SQLAlchemy's default pool keeps 5 and closes the rest on return, so
        # under load every request past the 5th opened a fresh connection (and, on SQLite, ran
        # the pragmas again): ~10% of a rating's cost in bench/durability.py. Keep 20 open.
        kwargs.setdefault("pool_size", 20)
        kwargs.setdefault("max_overflow", 20)
    if url.startswith("sqlite"):
        if url.startswith("sqlite:///") and not in_memory:
            _private_sqlite_file(Path(url.removeprefix("sqlite:///").split("?")[0]).expanduser())
        # Requests run in a thread pool; each connection is used by one thread at a time.
        connect_args = {"check_same_thread": False, "timeout": 30}
        engine = create_engine(url, connect_args=connect_args, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, **kwargs)


def alembic_config() -> Config:
    """Alembic's config pointing at the migrations shipped inside the package (no alembic.ini)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


def migrate(target: str | Engine, revision: str = "head") -> None:
    """Run `alembic upgrade <revision>` on a URL or an engine; safe to call on every start."""
    engine = make_engine(target) if isinstance(target, str) else target
    try:
        with engine.begin() as connection:
            cfg = alembic_config()
            cfg.attributes["connection"] = connection
            command.upgrade(cfg, revision)
    finally:
        if isinstance(target, str):
            engine.dispose()


def make_session_factory(engine: Engine) -> SessionFactory:
    # expire_on_commit=False: rows returned by a repository stay readable after its commit.
    return sessionmaker(engine, expire_on_commit=False)
