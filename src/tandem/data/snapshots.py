"""Dataset snapshots on disk: immutable, content-hashed directories that TRL reads unchanged.

    from tandem.data.snapshots import load_snapshot, resolve_dataset
    snap = resolve_dataset(settings.home, "sft-3f2a9c0d1e4b")   # id, "sha256:3f2a…" or a path
    load_dataset("json", data_files={"train": str(snap.train_file), "test": str(snap.test_file)})

Layout of `$TANDEM_HOME/datasets/<snapshot id>/`:

    train.jsonl  test.jsonl       canonical JSONL: keys sorted, no spaces, UTF-8, rows sorted
    train.parquet test.parquet    the same rows
    provenance.jsonl              per row: split, index, row sha256, the signal ids it came from
    card.md                       what a person reads: counts, filters, rules, scrub counts
    manifest.json                 kind, hash, filters, counts, created_at, code version

The hash is `sha256:` + hex of the bytes of train.jsonl, one NUL byte, then test.jsonl, so
`(cat train.jsonl; printf '\\0'; cat test.jsonl) | sha256sum` checks it. Signal ids stay in the
sidecar, never as columns, so SFTTrainer/DPOTrainer/KTOTrainer/RewardTrainer take the files as is.

A snapshot is written into a temporary directory and renamed into place (the rename is atomic on
one filesystem), so a half-written snapshot never appears under its id. Its id is derived from
its hash, so building the same rows twice finds the existing directory and writes nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import tandem
from tandem.core.errors import InvalidInput, NotFound
from tandem.core.jsonl import read_jsonl as read_jsonl_objects
from tandem.core.signals import DATASET_COLUMNS, DATASET_KINDS, DatasetKind

HASH_ALGORITHM = "sha256"
SNAPSHOT_FILES = (
    "train.jsonl",
    "test.jsonl",
    "train.parquet",
    "test.parquet",
    "provenance.jsonl",
    "card.md",
    "manifest.json",
)


@dataclass(frozen=True)
class Snapshot:
    """A dataset TRL can read: `train_file`/`test_file` are JSONL in TRL's column names."""

    id: str
    kind: DatasetKind
    hash: str
    path: Path
    train_file: Path
    test_file: Path | None
    manifest: dict[str, Any] = field(default_factory=dict)

    @property
    def train_parquet(self) -> Path:
        return self.path / "train.parquet"

    @property
    def test_parquet(self) -> Path:
        return self.path / "test.parquet"

    @property
    def provenance_file(self) -> Path:
        return self.path / "provenance.jsonl"

    @property
    def card_file(self) -> Path:
        return self.path / "card.md"

    @property
    def data_files(self) -> dict[str, str]:
        """What `datasets.load_dataset("json", data_files=...)` takes (test only when non-empty)."""
        files = {"train": str(self.train_file)}
        if self.test_file is not None and self.test_file.stat().st_size > 0:
            files["test"] = str(self.test_file)
        return files


def datasets_dir(home: Path) -> Path:
    return Path(home) / "datasets"


def canonical_line(row: Mapping[str, Any]) -> str:
    return json.dumps(row, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def row_sha256(row: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical_line(row).encode()).hexdigest()


def canonical_jsonl(rows: Iterable[Mapping[str, Any]]) -> bytes:
    """Rows as canonical JSONL in sorted order: the same rows always give the same bytes."""
    lines = sorted(canonical_line(r) for r in rows)
    return "".join(line + "\n" for line in lines).encode()


def content_hash(train_jsonl: bytes, test_jsonl: bytes) -> str:
    digest = hashlib.sha256(train_jsonl + b"\0" + test_jsonl).hexdigest()
    return f"{HASH_ALGORITHM}:{digest}"


def in_test_split(row: Mapping[str, Any], test_fraction: float) -> bool:
    """Deterministic held-out split: the row's own hash decides, so a row never changes side
    between builds, whatever else the build contains."""
    if test_fraction <= 0:
        return False
    bucket = int(row_sha256(row)[:15], 16) / float(16**15)
    return bucket < test_fraction


def infer_kind(columns: Iterable[str]) -> DatasetKind | None:
    cols = set(columns)
    for kind, wanted in DATASET_COLUMNS.items():
        if cols == set(wanted):
            return kind
    return None


def _snapshot_id(kind: str, hash_: str) -> str:
    return f"{kind}-{hash_.split(':', 1)[1][:12]}"


def _write_parquet(rows: Sequence[Mapping[str, Any]], path: Path, schema: Any = None) -> Any:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pylist(list(rows), schema=schema)
    pq.write_table(table, path)
    return table.schema


def write_snapshot(
    home: Path,
    kind: str,
    rows: Sequence[tuple[Mapping[str, Any], Mapping[str, Any]]],
    *,
    test_fraction: float,
    manifest: Mapping[str, Any],
    card: Callable[[Mapping[str, Any]], str],
) -> tuple[Snapshot, bool]:
    """Write `rows` (each a (TRL row, sources) pair) as a snapshot; returns (snapshot, created).
    `card` renders card.md from the final manifest (which then holds the hash and counts).

    `created` is False when a snapshot with the same content already exists: nothing is written
    then, and the existing one (with its original manifest) is returned.
    """
    if kind not in DATASET_KINDS:
        raise InvalidInput(f"kind must be one of {DATASET_KINDS}")
    if not rows:
        raise InvalidInput("no examples matched: a snapshot needs at least one row")
    # Identical rows from different signals collapse into one row listing every source.
    by_line: dict[str, tuple[Mapping[str, Any], dict[str, list[str]]]] = {}
    for row, sources in rows:
        line = canonical_line(row)
        merged = by_line.setdefault(line, (row, {}))[1]
        for source_kind, ids in sources.items():
            merged.setdefault(source_kind, [])
            for ident in [ids] if isinstance(ids, str) else ids:
                if ident not in merged[source_kind]:
                    merged[source_kind].append(ident)
    ordered = [by_line[line] for line in sorted(by_line)]
    train = [(r, s) for r, s in ordered if not in_test_split(r, test_fraction)]
    test = [(r, s) for r, s in ordered if in_test_split(r, test_fraction)]
    train_bytes = canonical_jsonl(r for r, _ in train)
    test_bytes = canonical_jsonl(r for r, _ in test)
    hash_ = content_hash(train_bytes, test_bytes)
    snapshot_id = _snapshot_id(kind, hash_)
    root = datasets_dir(home)
    final = root / snapshot_id
    if (final / "manifest.json").exists():
        return load_snapshot(home, snapshot_id), False

    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{snapshot_id}-", dir=root))
    try:
        (tmp / "train.jsonl").write_bytes(train_bytes)
        (tmp / "test.jsonl").write_bytes(test_bytes)
        schema = _write_parquet([r for r, _ in train], tmp / "train.parquet")
        _write_parquet([r for r, _ in test], tmp / "test.parquet", schema if train else None)
        with (tmp / "provenance.jsonl").open("w", encoding="utf-8") as f:
            for split, part in (("train", train), ("test", test)):
                for index, (row, sources) in enumerate(part):
                    entry = {
                        "split": split,
                        "index": index,
                        "row_sha256": row_sha256(row),
                        "sources": {k: sorted(v) for k, v in sorted(sources.items())},
                    }
                    f.write(canonical_line(entry) + "\n")
        full_manifest = {
            **manifest,
            "id": snapshot_id,
            "kind": kind,
            "hash": hash_,
            "columns": list(DATASET_COLUMNS[kind]),
            "counts": {**manifest.get("counts", {}), "train": len(train), "test": len(test)},
            "test_fraction": test_fraction,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "code_version": tandem.__version__,
        }
        (tmp / "card.md").write_text(card(full_manifest), encoding="utf-8")
        # The manifest is written last: its presence means every other file is complete.
        (tmp / "manifest.json").write_text(
            json.dumps(full_manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n",
            encoding="utf-8",
        )
        _seal(tmp)
        try:
            os.rename(tmp, final)
        except OSError:
            # Another build of the same rows won the race; its directory is identical.
            if not (final / "manifest.json").exists():
                raise
            shutil.rmtree(tmp, ignore_errors=True)
            return load_snapshot(home, snapshot_id), False
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return load_snapshot(home, snapshot_id), True


def _seal(directory: Path) -> None:
    """fsync every file and make it read-only: a snapshot is never modified after it appears."""
    for name in SNAPSHOT_FILES:
        path = directory / name
        if path.exists():
            with path.open("rb") as f:
                os.fsync(f.fileno())
            path.chmod(0o444)


def load_snapshot(home: Path, snapshot_id: str) -> Snapshot:
    """The snapshot `snapshot_id` under `$TANDEM_HOME/datasets/`; NotFound when absent."""
    if not snapshot_id or "/" in snapshot_id or snapshot_id.startswith("."):
        raise NotFound("dataset snapshot", snapshot_id)
    path = datasets_dir(home) / snapshot_id
    if not (path / "manifest.json").is_file():
        raise NotFound("dataset snapshot", snapshot_id)
    return _from_directory(path)


def _from_directory(path: Path) -> Snapshot:
    manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
    return Snapshot(
        id=manifest["id"],
        kind=manifest["kind"],
        hash=manifest["hash"],
        path=path,
        train_file=path / "train.jsonl",
        test_file=path / "test.jsonl",
        manifest=manifest,
    )


def list_snapshots(home: Path) -> list[Snapshot]:
    """Every complete snapshot on disk, newest first."""
    root = datasets_dir(home)
    if not root.is_dir():
        return []
    snaps = [
        _from_directory(p)
        for p in root.iterdir()
        if not p.name.startswith(".") and (p / "manifest.json").is_file()
    ]
    return sorted(snaps, key=lambda s: (s.manifest.get("created_at", ""), s.id), reverse=True)


def verify_snapshot(snapshot: Snapshot) -> bool:
    """Recompute the content hash from the files: False means someone edited them."""
    test = snapshot.test_file.read_bytes() if snapshot.test_file else b""
    return content_hash(snapshot.train_file.read_bytes(), test) == snapshot.hash


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    try:
        return read_jsonl_objects(path)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None


def resolve_dataset(home: Path, ref: str | Path) -> Snapshot:
    """A snapshot id, a hash prefix (`sha256:3f2a…` or `3f2a…`, at least 6 hex digits), a path
    to a snapshot/export directory or a JSONL file in TRL's columns, or a snapshot name (the
    newest with that name). NotFound (a LookupError) when nothing matches; InvalidInput when a
    hash prefix is ambiguous or a file's columns are not TRL's."""
    text = str(ref)
    if "/" not in text and not text.endswith(".jsonl"):
        candidate = datasets_dir(home) / text
        if text and not text.startswith(".") and (candidate / "manifest.json").is_file():
            return _from_directory(candidate)
    path = Path(text).expanduser()
    if path.is_dir():
        if (path / "manifest.json").is_file():
            return _from_directory(path)
        if (path / "train.jsonl").is_file():
            test = path / "test.jsonl"
            return _from_files(path / "train.jsonl", test if test.is_file() else None)
        raise NotFound("dataset directory (no manifest.json or train.jsonl)", text)
    if path.is_file():
        return _from_files(path, None)
    prefix = text.removeprefix(f"{HASH_ALGORITHM}:").lower()
    if len(prefix) >= 6 and all(c in "0123456789abcdef" for c in prefix):
        matches = [s for s in list_snapshots(home) if s.hash.split(":", 1)[1].startswith(prefix)]
        if len(matches) > 1:
            raise InvalidInput(f"hash prefix {text!r} matches {len(matches)} snapshots")
        if matches:
            return matches[0]
    # A name is a label, not unique: the newest snapshot carrying it (its hash pins it down).
    named = [s for s in list_snapshots(home) if text and s.manifest.get("name") == text]
    if named:
        return named[0]
    raise NotFound("dataset snapshot", text)


def _from_files(train: Path, test: Path | None) -> Snapshot:
    rows = read_jsonl(train)
    kind = infer_kind(rows[0]) if rows else None
    if kind is None:
        raise InvalidInput(
            f"{train}: columns must be one of "
            + ", ".join(f"{k}: {list(c)}" for k, c in DATASET_COLUMNS.items())
        )
    train_bytes = train.read_bytes()
    test_bytes = test.read_bytes() if test else b""
    hash_ = content_hash(train_bytes, test_bytes)
    return Snapshot(
        id=f"file:{train}",
        kind=kind,
        hash=hash_,
        path=train.parent,
        train_file=train,
        test_file=test,
        manifest={"kind": kind, "hash": hash_, "source": f"file:{train}"},
    )
