"""The database session a CLI command works in: the configured database, migrated first."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.orm import Session

from tandem.core.settings import Settings


@contextmanager
def cli_session() -> Iterator[Session]:
    from tandem.store import make_engine, make_session_factory, migrate

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    engine = make_engine(Settings.from_env().database_url)
    migrate(engine)
    try:
        with make_session_factory(engine)() as session:
            yield session
    finally:
        engine.dispose()
