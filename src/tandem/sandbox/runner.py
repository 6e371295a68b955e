"""Runs the user's code inside the sandbox, like one notebook cell.

Started by the jail as `python -I -S /sandbox/code/runner.py` in /sandbox/work. Prints go
straight to the inherited stdout/stderr pipes (the parent caps them); the value of the last
expression, tables (pandas DataFrames, lists of dicts, `display(x)`) and every open matplotlib
figure are written to /sandbox/outputs (`result.json`, `figure-N.png`) for the jail to copy
out. Everything this file writes is treated as untrusted by the parent: the user's code runs in
this same process.

Standard library only until the user's code imports something (the venv's site-packages are
added to `sys.path` from /sandbox/code/config.json).
"""

from __future__ import annotations

import ast
import errno
import json
import math
import os
import sys
import traceback
from typing import Any

MAIN_PID = os.getpid()
MAX_ROWS = 50
MAX_COLUMNS = 20
MAX_CELL = 200
MAX_VALUE = 10_000

tables: list[dict] = []


def cell(value: object) -> object:
    if value is None or isinstance(value, (bool, int, str)):
        return value if not isinstance(value, str) else value[:MAX_CELL]
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item):
        try:
            return cell(item())
        except (TypeError, ValueError):
            pass
    return str(value)[:MAX_CELL]


def as_table(value: Any) -> dict | None:
    """A DataFrame, a Series or a list of dicts as {"columns", "rows", "total_rows"}. Pandas
    objects are recognised by name and duck typing: the runner does not import pandas."""
    kind = type(value).__name__
    if kind == "Series" and hasattr(value, "to_frame"):
        value = value.to_frame()
        kind = "DataFrame"
    if kind == "DataFrame" and hasattr(value, "itertuples"):
        frame = value.iloc[:MAX_ROWS, :MAX_COLUMNS]
        columns = [str(c) for c in frame.columns]
        index_name = str(frame.index.name) if frame.index.name is not None else ""
        named_index = type(frame.index).__name__ != "RangeIndex"
        if named_index:
            columns = [index_name, *columns]
        rows = [
            [cell(v) for v in (row if named_index else row[1:])]
            for row in frame.itertuples(index=True, name=None)
        ]
        return {"columns": columns, "rows": rows, "total_rows": len(value)}
    if isinstance(value, list) and value and all(isinstance(r, dict) for r in value):
        columns = []
        for row in value[:MAX_ROWS]:
            columns += [str(k) for k in row if str(k) not in columns]
        columns = columns[:MAX_COLUMNS]
        rows = [[cell(r.get(c)) for c in columns] for r in value[:MAX_ROWS]]
        return {"columns": columns, "rows": rows, "total_rows": len(value)}
    return None


def display(value: object) -> None:
    """Show a table (DataFrame, list of dicts) in the chat; anything else is printed."""
    table = as_table(value)
    if table is None:
        print(repr(value))
    elif len(tables) < 10:
        tables.append(table)


def run(source: str, namespace: dict) -> object:
    """Execute the cell; the value of its last line when that line is an expression."""
    tree = ast.parse(source, filename="<code>")
    last = None
    if tree.body and isinstance(final := tree.body[-1], ast.Expr):
        tree.body.pop()
        last = ast.Expression(final.value)
    exec(compile(tree, "<code>", "exec"), namespace)
    if last is not None:
        return eval(compile(last, "<code>", "eval"), namespace)
    return None


def save_figures(limit: int) -> list[str]:
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is None:
        return []
    names = []
    for i, number in enumerate(pyplot.get_fignums()[:limit]):
        name = f"figure-{i}.png"
        pyplot.figure(number).savefig("/sandbox/outputs/" + name, format="png", dpi=100)
        names.append(name)
    return names


def error_kind(exc: BaseException) -> str | None:
    """Which sandbox limit an exception comes from, if any (the parent words the message)."""
    if isinstance(exc, MemoryError):
        return "memory"
    seen: list[BaseException] = []
    todo: list[object] = [exc]
    while todo and len(seen) < 10:
        item = todo.pop()
        if not isinstance(item, BaseException) or item in seen:
            continue
        seen.append(item)
        todo += [item.__cause__, item.__context__, getattr(item, "reason", None)]
        number = getattr(item, "errno", None)
        if type(item).__name__ == "gaierror" or number in (
            errno.ENETUNREACH,
            errno.EHOSTUNREACH,
            errno.EADDRNOTAVAIL,
        ):
            return "network"
        if isinstance(item, BlockingIOError) and number == errno.EAGAIN:
            return "processes"
        if isinstance(item, RuntimeError) and "new thread" in str(item):
            return "processes"
        if number == errno.EFBIG:
            return "file_size"
        if number in (errno.ENOSPC, errno.EDQUOT):
            return "disk"
    return None


def error_record(exc: BaseException) -> dict:
    # The user's frames only, not this runner's.
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename != "<code>":
        tb = tb.tb_next
    lines = traceback.format_exception(type(exc), exc, tb)
    return {
        "type": type(exc).__name__,
        "message": str(exc)[:2000],
        "kind": error_kind(exc),
        "traceback": "".join(lines)[-4000:],
    }


def main() -> None:
    with open("/sandbox/code/config.json") as f:
        config = json.load(f)
    sys.path.extend(config["site_packages"])
    with open("/sandbox/code/code.py", encoding="utf-8") as f:
        source = f.read()
    namespace: dict = {"__name__": "__main__", "display": display}
    value = None
    error: dict[str, Any] | None = None
    try:
        value = run(source, namespace)
    except SystemExit as exc:
        if exc.code not in (None, 0):
            error = {"type": "SystemExit", "message": str(exc.code), "kind": None, "traceback": ""}
    except BaseException as exc:
        if os.getpid() != MAIN_PID:
            os._exit(1)  # a process the code forked: only the original reports
        if isinstance(exc, MemoryError):
            namespace.clear()  # room to write the report
        error = error_record(exc)
        sys.stderr.write(error["traceback"])
    if os.getpid() != MAIN_PID:
        sys.stdout.flush()
        os._exit(0)
    result: dict = {"value": None, "tables": [], "figures": [], "error": error}
    try:
        if value is not None:
            table = as_table(value)
            if table is not None:
                tables.append(table)
            else:
                result["value"] = repr(value)[:MAX_VALUE]
        result["tables"] = tables[:10]
        result["figures"] = save_figures(config["max_images"])
    except Exception as exc:
        result["error"] = result["error"] or error_record(exc)
    sys.stdout.flush()
    sys.stderr.flush()
    with open("/sandbox/outputs/result.json", "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main()
