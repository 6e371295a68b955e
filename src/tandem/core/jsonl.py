"""Reading JSON Lines files: one object per line, blank lines skipped, errors name the line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def read_jsonl(path: Path, label: str | None = None) -> list[dict[str, Any]]:
    """The objects of a JSONL file. A malformed line raises ValueError naming `label` (default:
    the path) and the line number, so callers can wrap it in their own error type."""
    label = label or str(path)
    rows = []
    with Path(path).open(encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{label}:{number}: not JSON ({exc.msg})") from None
            if not isinstance(row, dict):
                raise ValueError(f"{label}:{number}: expected a JSON object per line")
            rows.append(row)
    return rows
