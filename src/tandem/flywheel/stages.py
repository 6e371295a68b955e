"""Timed, resumable stages: each stage's result is one JSON file in the run directory.

    runner = StageRunner(out_dir, restart=False)
    result = runner.run("simulate", lambda: {...})   # skipped when stages/simulate.json exists

A stage whose record exists is not run again (its recorded result and seconds are reused), so
an interrupted turn resumes where it stopped and `tandem flywheel report` can re-render the
report from the records alone. `always` stages (the server) run every time and are recorded
anyway; `restart=True` runs every stage again.

Each record also holds the stage's peak resident memory per watched process (the flywheel
itself, which evaluates in-process, and the server once it runs; training runs in a child
process that records its own peak): Linux's VmHWM,
reset at the stage's start through /proc/PID/clear_refs so each stage reports its own peak.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tandem.core.memory import reset_peak, status_kib

log = logging.getLogger(__name__)

STAGES = ("serve", "simulate", "dataset", "train", "eval", "offline_gate", "online", "promote")
STAGE_DIR = "stages"


@dataclass(frozen=True)
class StageRecord:
    name: str
    seconds: float
    started_at: str
    result: dict[str, Any]
    reused: bool = False  # read from an earlier invocation's record, not run now
    peak_rss_mb: dict[str, float] = field(default_factory=dict)  # per watched process
    finished_at: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "seconds": self.seconds,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "result": self.result,
            "peak_rss_mb": self.peak_rss_mb,
        }


def stage_path(out: Path, name: str) -> Path:
    return out / STAGE_DIR / f"{name}.json"


def read_record(out: Path, name: str) -> StageRecord | None:
    path = stage_path(out, name)
    if not path.exists():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    return StageRecord(
        data["name"],
        data["seconds"],
        data["started_at"],
        data["result"],
        True,
        data.get("peak_rss_mb") or {},
        data.get("finished_at") or "",
    )


def write_record(out: Path, record: StageRecord) -> None:
    """Written to a temporary name and renamed, so a crash mid-write never leaves a record
    that would make a resumed run skip a stage that did not finish."""
    path = stage_path(out, record.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record.to_dict(), indent=2, default=str) + "\n", encoding="utf-8")
    tmp.replace(path)


def read_records(out: Path) -> dict[str, StageRecord]:
    return {n: r for n in STAGES if (r := read_record(out, n)) is not None}


class StageRunner:
    def __init__(self, out: Path, restart: bool = False) -> None:
        self.out = out
        self.restart = restart
        self.records: dict[str, StageRecord] = {}
        # Processes whose peak memory each stage records: {label: pid}.
        self.watched: dict[str, int] = {"flywheel": os.getpid()}

    def run(
        self, name: str, body: Callable[[], dict[str, Any]], always: bool = False
    ) -> dict[str, Any]:
        """The stage's result: from its record when one exists (and neither `always` nor
        restarting), else from running `body`, timed and recorded."""
        if not (always or self.restart):
            done = read_record(self.out, name)
            if done is not None:
                log.info("flywheel: %s already done (%.1f s), reusing it", name, done.seconds)
                self.records[name] = done
                return done.result
        started_at = datetime.now(UTC).isoformat()
        for pid in self.watched.values():
            reset_peak(pid)
        start = time.perf_counter()
        result = body()
        seconds = round(time.perf_counter() - start, 3)
        peaks = {label: status_kib(pid, "VmHWM") for label, pid in self.watched.items()}
        peaks_mb = {label: round(kib / 1024, 1) for label, kib in peaks.items() if kib}
        finished_at = datetime.now(UTC).isoformat()
        record = StageRecord(
            name, seconds, started_at, result, peak_rss_mb=peaks_mb, finished_at=finished_at
        )
        write_record(self.out, record)
        self.records[name] = record
        log.info("flywheel: %s took %.1f s", name, record.seconds)
        return result
