"""A flywheel run's directory and home: where turns are recorded, which home (database and
trained versions) a run uses, whether a resumed run may reuse its records, and database
sessions on that home for one block of work.

    home = resolve_home(out, home=None, restart=False)   # the run's own home when resuming
    with Database(home) as session: ...
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from tandem.core.settings import Settings
from tandem.flywheel.config import FlywheelConfig
from tandem.flywheel.stages import read_records

RUN_FILE = "run.json"
TURNS_DIR = "turns"


class TurnMismatch(ValueError):
    """The run directory's records belong to a run on another home."""


def home_settings(home: Path) -> Settings:
    return Settings.from_env({"TANDEM_HOME": str(home)})


def _session_factory(settings: Settings) -> Any:
    from tandem.store import make_engine, make_session_factory, migrate

    engine = make_engine(settings.database_url)
    migrate(engine)
    return engine, make_session_factory(engine)


class Database:
    """Sessions on the home's database for one block of work (disposed after it)."""

    def __init__(self, home: Path) -> None:
        self.settings = home_settings(home)

    def __enter__(self) -> Any:
        self.engine, sessions = _session_factory(self.settings)
        self.session = sessions()
        return self.session

    def __exit__(self, *exc: object) -> None:
        self.session.close()
        self.engine.dispose()


def turn_dir(out: Path, turn: int) -> Path:
    return out / TURNS_DIR / str(turn)


def resolve_home(out: Path, home: Path | None, restart: bool) -> Path:
    """The home given, else the one this run directory used before (a resumed run must find
    its database and trained versions again), else a fresh one under $TANDEM_HOME's runs."""
    run_file = out / RUN_FILE
    recorded = None
    if run_file.exists():
        recorded = json.loads(run_file.read_text(encoding="utf-8")).get("home")
    if home is None and recorded and Path(recorded).exists() and not restart:
        home = Path(recorded)
    if home is None:
        home = Path(tempfile.mkdtemp(prefix="tandem-flywheel-"))
    home = home.resolve()
    started = read_records(out) or (out / TURNS_DIR).exists()
    if run_file.exists() and not restart and started and recorded != str(home):
        # The records describe a run on another home: resuming here would mix two runs.
        raise TurnMismatch(
            f"{out} holds a run on {recorded}; resume it with --home {recorded}, "
            "or start a new run with --restart (or another --out)"
        )
    return home


def check_resumed_config(out: Path, config: FlywheelConfig, restart: bool) -> None:
    """A resumed run reuses records made under run.json's config: any other option than
    --turns (more turns extend a run) would mix two recipes in one report."""
    run_file = out / RUN_FILE
    if restart or not run_file.exists() or not (out / TURNS_DIR).exists():
        return
    recorded = json.loads(run_file.read_text(encoding="utf-8")).get("config") or {}
    mine, theirs = _flat(config.to_dict()), _flat(FlywheelConfig.from_dict(recorded).to_dict())
    changed = sorted(
        k for k in mine.keys() | theirs.keys() if k != "turns" and mine.get(k) != theirs.get(k)
    )
    if changed:
        raise TurnMismatch(
            f"{out} holds a run made with other options ({', '.join(changed)}); resume it "
            "with the same options, or start again with --restart (or another --out)"
        )


def _flat(config: dict[str, Any]) -> dict[str, Any]:
    return {
        f"{group}.{key}" if isinstance(values, dict) else group: value
        for group, values in config.items()
        for key, value in (values.items() if isinstance(values, dict) else [(None, values)])
    }
