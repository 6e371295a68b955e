"""What a training run reads: a dataset snapshot from `tandem.data`, or a JSONL file in TRL's
columns (for data prepared elsewhere).

Either way the run records where the data came from and its content hash, so a model version
names exactly what it was trained on. Columns, as TRL's trainers read them:

    sft         {"messages": [{"role": ..., "content": ...}, ...]}
    preference  {"prompt": [...messages], "chosen": [assistant msg], "rejected": [assistant msg]}
    kto         {"prompt": [...messages], "completion": [assistant msg], "label": true|false}
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tandem.core.jsonl import read_jsonl
from tandem.train.config import ConfigError

COLUMNS = {
    "sft": ("messages",),
    "preference": ("prompt", "chosen", "rejected"),
    "kto": ("prompt", "completion", "label"),
}


@dataclass(frozen=True)
class TrainingData:
    kind: str  # sft | preference | kto
    train_file: Path
    hash: str  # "<algorithm>:<hex>", the snapshot's own hash or the file's sha256
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


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return f"sha256:{digest.hexdigest()}"


def read_rows(path: Path) -> list[dict[str, Any]]:
    try:
        rows = read_jsonl(path)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if not rows:
        raise ConfigError(f"{path} has no examples")
    return rows


def infer_kind(row: dict[str, Any]) -> str:
    for kind, columns in COLUMNS.items():
        if all(c in row for c in columns):
            return kind
    raise ConfigError(
        f"unrecognised columns {sorted(row)}; expected one of "
        + "; ".join(f"{k}: {', '.join(c)}" for k, c in COLUMNS.items())
    )


def _check_rows(path: Path, rows: list[dict[str, Any]], kind: str) -> None:
    """Every row carries the kind's columns: a broken row fails here, with its line number,
    rather than minutes into tokenization."""
    for number, row in enumerate(rows, 1):
        missing = [c for c in COLUMNS[kind] if c not in row]
        if missing:
            raise ConfigError(f"{path}: example {number} lacks {missing} (a {kind} dataset)")


def _from_file(path: Path) -> TrainingData:
    rows = read_rows(path)
    kind = infer_kind(rows[0])
    _check_rows(path, rows, kind)
    return TrainingData(
        kind=kind,
        train_file=path.resolve(),
        hash=file_sha256(path),
        snapshot_id=None,
        source=str(path),
        rows=len(rows),
    )


def _card_summary(snapshot: Any) -> str:
    """The snapshot card's opening, for the model card (the full card stays with the data)."""
    manifest = getattr(snapshot, "manifest", None) or {}
    if manifest.get("summary"):
        return str(manifest["summary"])
    card_file = getattr(snapshot, "card_file", None)
    if card_file is not None and Path(card_file).is_file():
        return Path(card_file).read_text(encoding="utf-8")[:1500]
    return ""


def _from_snapshot(home: Path, ref: str, resolve: Any) -> TrainingData:
    try:
        snapshot = resolve(home, ref)
    except (LookupError, FileNotFoundError, ValueError) as exc:
        raise ConfigError(f"dataset {ref!r}: {exc}") from None
    manifest = dict(getattr(snapshot, "manifest", None) or {})
    train_file = Path(snapshot.train_file)
    rows = read_rows(train_file)
    _check_rows(train_file, rows, snapshot.kind)
    snapshot_id = str(getattr(snapshot, "id", None) or manifest.get("id") or ref)
    return TrainingData(
        kind=snapshot.kind,
        train_file=train_file,
        hash=snapshot.hash,
        # A plain file resolved by tandem.data is not a snapshot; say so by leaving this empty.
        snapshot_id=None if snapshot_id.startswith("file:") else snapshot_id,
        source=ref,
        summary=_card_summary(snapshot)[:2000],
        rows=len(rows),
        test_file=Path(snapshot.test_file) if getattr(snapshot, "test_file", None) else None,
        manifest=manifest,
    )


def resolve_training_data(home: Path, ref: str, expected_kind: str) -> TrainingData:
    """A snapshot id, hash prefix or name, or a JSONL file in TRL's columns. tandem.data
    resolves it when installed (so a file gets the same content hash a snapshot of it would);
    without it, only a file can be read."""
    try:
        from tandem.data.snapshots import resolve_dataset
    except ImportError:
        resolve_dataset = None
    if resolve_dataset is not None:
        data = _from_snapshot(home, ref, resolve_dataset)
    elif Path(ref).expanduser().is_file():
        data = _from_file(Path(ref).expanduser())
    else:
        raise ConfigError(f"no dataset file {ref!r} (snapshots need tandem.data)")
    if data.kind != expected_kind:
        raise ConfigError(f"{ref} is a {data.kind} dataset; this method needs {expected_kind} data")
    return data
