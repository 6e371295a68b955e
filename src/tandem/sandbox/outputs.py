"""What crosses the sandbox boundary: names going in, files coming out.

Everything the sandbox writes is untrusted (the user's code runs in the same process as the
runner): a reported name is reduced to a plain file name and matched against what is
expected, files are opened inside the outputs directory only (`dir_fd`, no symlinks), sizes
are capped before reading, and a chart must start with PNG's magic bytes.
"""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path
from typing import Any

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_UNSAFE = re.compile(r"[^A-Za-z0-9._ -]+")
_FIGURE = re.compile(r"figure-[0-9]{1,3}\.png")


def safe_name(name: str | None, fallback: str = "file") -> str:
    """A plain file name: the last path component, letters, digits and `._ -` only, no
    leading dots, at most 100 characters. `../../etc/passwd` becomes `passwd`."""
    base = re.split(r"[\\/]", name or "")[-1]
    base = _UNSAFE.sub("_", base).strip(" .")
    return base[:100] or fallback


def read_inside(directory: Path, name: str, max_bytes: int) -> bytes | None:
    """The bytes of `directory/name` when it is a regular file (not a link) of at most
    `max_bytes`; None otherwise. `name` must already be a plain file name."""
    if name != safe_name(name):
        return None
    dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dir_fd)
    except OSError:
        return None
    finally:
        os.close(dir_fd)
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            return None
        data = f.read(max_bytes + 1)
    return data if len(data) <= max_bytes else None


class UnreadableOutput(ValueError):
    """An output the sandboxed code wrote that the server will not read; the message, for the
    user, says why."""


def read_json(directory: Path, name: str, max_bytes: int) -> dict[str, Any] | None:
    """The JSON object in `directory/name`; None when it is missing, too big or not a JSON
    object. Raises UnreadableOutput when it nests too deeply to parse (the code can write
    this file: `[[[[…]]]]` a hundred thousand levels deep exhausts the parser's recursion)."""
    data = read_inside(directory, name, max_bytes)
    if data is None:
        return None
    try:
        value = json.loads(data)
    except RecursionError:
        raise UnreadableOutput("it is nested too deeply") from None
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def collect_charts(
    directory: Path, reported: object, max_images: int, max_bytes: int
) -> list[tuple[str, bytes]]:
    """The PNG charts the runner reported, as (name, bytes): only `figure-N.png` names, at
    most `max_images`, each a real PNG of at most `max_bytes`."""
    if not isinstance(reported, list):
        return []
    charts: list[tuple[str, bytes]] = []
    for raw in reported:
        if len(charts) >= max_images or not isinstance(raw, str):
            break
        name = safe_name(raw)
        if name != raw or not _FIGURE.fullmatch(name):
            continue
        data = read_inside(directory, name, max_bytes)
        if data is not None and data.startswith(PNG_MAGIC):
            charts.append((name, data))
    return charts


def clean_tables(raw: object, max_tables: int = 10) -> list[dict[str, Any]]:
    """The runner's tables, kept only when shaped {"columns": [str], "rows": [[cell]]}."""
    tables: list[dict[str, Any]] = []
    for table in raw if isinstance(raw, list) else []:
        if len(tables) >= max_tables:
            break
        if not isinstance(table, dict):
            continue
        columns, rows = table.get("columns"), table.get("rows")
        if not isinstance(columns, list) or not isinstance(rows, list):
            continue
        clean_rows = [
            [c if isinstance(c, (str, int, float, bool)) or c is None else str(c) for c in row]
            for row in rows[:50]
            if isinstance(row, list)
        ]
        total = table.get("total_rows")
        tables.append(
            {
                "columns": [str(c)[:200] for c in columns[:20]],
                "rows": clean_rows,
                "total_rows": total if isinstance(total, int) else len(clean_rows),
            }
        )
    return tables
