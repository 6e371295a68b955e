"""What a training run reads: a dataset snapshot from `tandem.data`, or a JSONL file in TRL's
columns (for data prepared elsewhere), resolved by `tandem.data` either way so a file gets the
content hash a snapshot of it would.

The run records where the data came from and its content hash, so a model version names exactly
what it was trained on. Columns (`tandem.core.signals.DATASET_COLUMNS`), as TRL's trainers read
them:

    sft         {"messages": [{"role": ..., "content": ...}, ...]}
    preference  {"prompt": [...messages], "chosen": [assistant msg], "rejected": [assistant msg]}
    kto         {"prompt": [...messages], "completion": [assistant msg], "label": true|false}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tandem.core.jsonl import read_jsonl
from tandem.core.signals import DATASET_COLUMNS, DatasetKind
from tandem.data import Snapshot, resolve_dataset
from tandem.train.config import ConfigError


@dataclass(frozen=True)
class TrainingData:
    kind: DatasetKind
    train_file: Path
    hash: str  # "<algorithm>:<hex>", the snapshot's own hash or the file's
    snapshot_id: str | None  # None for a plain file
    source: str  # what the user named
    summary: str = ""  # the snapshot card's summary, for the model card
    rows: int = 0
    test_file: Path | None = None
    manifest: dict[str, Any] = field(default_factory=dict)

    def provenance(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "snapshot_id": self.snapshot_id,
            "hash": self.hash,
            "kind": self.kind,
            "rows": self.rows,
        }


def read_rows(path: Path) -> list[dict[str, Any]]:
    try:
        rows = read_jsonl(path)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if not rows:
        raise ConfigError(f"{path} has no examples")
    return rows


def _check_rows(path: Path, rows: list[dict[str, Any]], kind: DatasetKind) -> None:
    """Every row carries the kind's columns: a broken row fails here, with its line number,
    rather than minutes into tokenization."""
    for number, row in enumerate(rows, 1):
        missing = [c for c in DATASET_COLUMNS[kind] if c not in row]
        if missing:
            raise ConfigError(f"{path}: example {number} lacks {missing} (a {kind} dataset)")


def _card_summary(snapshot: Snapshot) -> str:
    """The snapshot card's opening, for the model card (the full card stays with the data)."""
    if snapshot.manifest.get("summary"):
        return str(snapshot.manifest["summary"])
    if snapshot.card_file.is_file():
        return snapshot.card_file.read_text(encoding="utf-8")[:1500]
    return ""


def resolve_training_data(home: Path, ref: str, expected_kind: DatasetKind) -> TrainingData:
    """A snapshot id, hash prefix or name, or a JSONL file in TRL's columns, checked to be
    `expected_kind` data with every row complete."""
    try:
        snapshot = resolve_dataset(home, ref)
    except (LookupError, FileNotFoundError, ValueError) as exc:
        raise ConfigError(f"dataset {ref!r}: {exc}") from None
    rows = read_rows(snapshot.train_file)
    _check_rows(snapshot.train_file, rows, snapshot.kind)
    if snapshot.kind != expected_kind:
        raise ConfigError(
            f"{ref} is a {snapshot.kind} dataset; this method needs {expected_kind} data"
        )
    return TrainingData(
        kind=snapshot.kind,
        train_file=snapshot.train_file,
        hash=snapshot.hash,
        # A plain file resolved by tandem.data is not a snapshot; say so by leaving this empty.
        snapshot_id=None if snapshot.id.startswith("file:") else snapshot.id,
        source=ref,
        summary=_card_summary(snapshot)[:2000],
        rows=len(rows),
        test_file=snapshot.test_file,
        manifest=dict(snapshot.manifest),
    )
