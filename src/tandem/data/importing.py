"""External data in TRL's formats (a public preference set on disk, a hand-written SFT file)
becomes a snapshot like any other, with source `import:<file name>`.

    result = import_file(session, home, Path("prefs.jsonl"), kind="preference")

Public benchmark data (`../shared/data/benchmarks/`) is evaluation-only: a file under that
directory, or with the same bytes as a file there, is refused, so a benchmark can never leak
into training through a copy.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from tandem.core.benchmarks import benchmark_dirs
from tandem.core.errors import InvalidInput, PermissionDenied
from tandem.core.signals import DATASET_COLUMNS, DATASET_KINDS, DatasetKind, is_dataset_kind
from tandem.data.build import BuildResult, finish_snapshot
from tandem.data.builders import Example

MAX_IMPORT_BYTES = 2_000_000_000


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def refuse_benchmark_data(path: Path, dirs: Iterable[Path] | None = None) -> None:
    """PermissionDenied when `path` is benchmark data: under a benchmark directory (symlinks
    resolved), or a byte-identical copy of a file there."""
    resolved = path.expanduser().resolve()
    dirs = list(benchmark_dirs() if dirs is None else dirs)
    for d in dirs:
        if resolved == d or d in resolved.parents:
            raise PermissionDenied(
                f"{path} is public benchmark data ({d}): evaluation-only, never training data"
            )
    size = resolved.stat().st_size
    mine: str | None = None
    for d in dirs:
        if not d.is_dir():
            continue
        for candidate in d.rglob("*"):
            if candidate.is_file() and candidate.stat().st_size == size:
                mine = mine or _sha256(resolved)
                if _sha256(candidate) == mine:
                    raise PermissionDenied(
                        f"{path} has the same bytes as benchmark file {candidate}: "
                        "evaluation-only, never training data"
                    )


def read_rows(path: Path) -> list[dict[str, Any]]:
    """Rows of a JSONL (or .json list) or Parquet file."""
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json" and text.lstrip().startswith("["):
        rows = json.loads(text)
    else:
        rows = []
        for number, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise InvalidInput(f"{path.name}:{number}: not JSON ({exc.msg})") from None
    if not all(isinstance(r, dict) for r in rows):
        raise InvalidInput(f"{path.name}: every row must be a JSON object")
    return rows


def _valid_messages(value: Any) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(
            isinstance(m, dict)
            and isinstance(m.get("role"), str)
            and isinstance(m.get("content"), str)
            for m in value
        )
    )


def validate_rows(rows: list[dict[str, Any]], kind: DatasetKind, name: str) -> list[dict[str, Any]]:
    """Exactly TRL's columns for `kind`; `messages` a message list; the other text columns all
    plain strings or all message lists (a mix would not load as one Arrow column); `label` a
    bool."""
    wanted = DATASET_COLUMNS[kind]
    shapes: dict[str, str] = {}
    out = []
    for number, row in enumerate(rows, 1):
        if set(row) != set(wanted):
            raise InvalidInput(
                f"{name} row {number}: columns {sorted(row)}; a {kind} dataset has exactly "
                f"{list(wanted)}"
            )
        clean: dict[str, Any] = {}
        for column in wanted:
            value = row[column]
            if column == "label":
                if not isinstance(value, bool):
                    raise InvalidInput(f"{name} row {number}: label must be true or false")
                clean[column] = value
                continue
            if isinstance(value, str) and column != "messages":
                shape = "text"
            elif _valid_messages(value):
                shape = "messages"
                value = [{"role": m["role"], "content": m["content"]} for m in value]
            else:
                raise InvalidInput(
                    f"{name} row {number}: {column} must be a string or a list of "
                    '{"role", "content"} messages'
                )
            if shapes.setdefault(column, shape) != shape:
                raise InvalidInput(f"{name} row {number}: {column} mixes text and messages")
            clean[column] = value
        out.append(clean)
    return out


def import_file(
    session: Session,
    home: Path,
    path: Path,
    kind: str,
    *,
    name: str = "",
    test_fraction: float = 0.1,
    near_duplicate_threshold: float = 0.9,
    created_by: str | None = None,
) -> BuildResult:
    """Validate `path` as a `kind` dataset and make it a snapshot (scrubbed and deduplicated
    like every build)."""
    if not is_dataset_kind(kind):
        raise InvalidInput(f"kind must be one of {list(DATASET_KINDS)}")
    path = Path(path)
    if not path.is_file():
        raise InvalidInput(f"{path} is not a file")
    refuse_benchmark_data(path)
    if path.stat().st_size > MAX_IMPORT_BYTES:
        raise InvalidInput(f"{path} is larger than 2 GB")
    if not 0 <= test_fraction < 1:
        raise InvalidInput("test_fraction must be at least 0 and below 1")
    rows = validate_rows(read_rows(path), kind, path.name)
    digest = _sha256(path)
    examples = [
        Example(row, {"import": [f"{digest[:16]}:{i}"]}, None, None, "import")
        for i, row in enumerate(rows, 1)
    ]
    return finish_snapshot(
        session,
        home,
        kind,
        examples,
        test_fraction=test_fraction,
        near_duplicate_threshold=near_duplicate_threshold,
        per_user_cap=None,
        filters={"file": path.name, "file_sha256": digest},
        source=f"import:{path.name}",
        name=name or path.stem,
        created_by=created_by,
    )
