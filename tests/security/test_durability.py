"""Class 7, durability: signal writes the server acknowledged survive `kill -9` of the server.

A short run of bench/durability.py (the full one, with the figures, writes
docs/benchmarks/durability.json): a real `tandem serve` subprocess, writer threads rating
answers over loopback HTTP, SIGKILL mid-load, restart, and every acknowledged feedback id
must be listed again with the comment it was written with. Once on SQLite (WAL,
synchronous=FULL) and once on PostgreSQL (the test server from tests/pg.py: fsync is off
there, which does not matter here because it is tandem that is killed, not PostgreSQL; the
benchmark runs PostgreSQL with fsync on).

    .venv/bin/python -m pytest -q -m security_slow tests/security/test_durability.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # `bench` is a top-level package beside `tests`
    sys.path.insert(0, str(ROOT))

from bench.durability import run_one  # noqa: E402

pytestmark = [pytest.mark.security_slow, pytest.mark.model]


def _check(result: dict) -> None:
    assert result["acknowledged_writes"] > 100, result  # the load really ran
    assert result["error_responses"] == {}, result
    assert result["found_after_restart"] == result["acknowledged_writes"], result
    assert result["lost"] == 0 and result["content_mismatches"] == 0, result


def test_acknowledged_ratings_survive_kill_9_on_sqlite(tmp_path: Path, model_home: Path) -> None:
    home = tmp_path / "home"
    url = f"sqlite:///{home / 'tandem.db'}"
    _check(run_one("sqlite", url, home, writers=8, load_s=3.0, models_from=model_home / "models"))


@pytest.mark.postgres
def test_acknowledged_ratings_survive_kill_9_on_postgres(
    tmp_path: Path, model_home: Path, postgres_server: object
) -> None:
    url = postgres_server.create_database()  # type: ignore[attr-defined]
    home = tmp_path / "home"
    _check(run_one("postgres", url, home, writers=8, load_s=3.0, models_from=model_home / "models"))
