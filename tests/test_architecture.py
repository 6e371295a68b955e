"""The layer table in docs/architecture.md holds: no module imports a package its row does not
allow, and no two modules of src/tandem import each other, directly or around a cycle.

Imports are read from the source (ast), so an import inside a function or under TYPE_CHECKING
counts the same as one at the top of the module.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
TABLE = ROOT / "docs" / "architecture.md"
# Every module must stay readable in one sitting.
MAX_LINES = 450


def module_files() -> dict[str, Path]:
    modules = {}
    for path in (SRC / "tandem").rglob("*.py"):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def imported_modules(name: str, path: Path, known: set[str]) -> Iterator[str]:
    """The tandem modules `name` imports; `from pkg import sub` names the submodule."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            targets = [module, *(f"{module}.{alias.name}" for alias in node.names)]
        else:
            continue
        for target in targets:
            if target in known and target != name:
                yield target


def import_graph() -> dict[str, set[str]]:
    modules = module_files()
    known = set(modules)
    return {name: set(imported_modules(name, path, known)) for name, path in modules.items()}


def layer_rules() -> dict[str, set[str]]:
    """Row name → the packages it may import, read from the table between the markers."""
    text = TABLE.read_text()
    block = text.split("<!-- layers:start -->", 1)[1].split("<!-- layers:end -->", 1)[0]
    rows: list[tuple[str, str]] = []
    for line in block.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].startswith("`tandem"):
            rows.append((cells[0].strip("`"), cells[2]))
    rules: dict[str, set[str]] = {}
    for index, (row, allowed) in enumerate(rows):
        above = re.fullmatch(r"every package above(?: `(tandem[\w.]*)`)?", allowed)
        if above:
            limit = next((i for i, (r, _) in enumerate(rows) if r == above[1]), index)
            rules[row] = {r for r, _ in rows[:limit]}
        else:
            rules[row] = set(re.findall(r"`(tandem[\w.]*)`", allowed))
    return rules


def row_of(module: str, rules: dict[str, set[str]]) -> str:
    """The most specific row naming `module` or a package that contains it."""
    candidates = [row for row in rules if module == row or module.startswith(row + ".")]
    if not candidates:
        raise AssertionError(f"{module} has no row in docs/architecture.md's layer table")
    return max(candidates, key=len)


def test_the_layer_table_is_read() -> None:
    rules = layer_rules()
    assert rules["tandem.core"] == set()
    assert rules["tandem.store"] == {"tandem.core"}
    assert "tandem.api" not in rules["tandem.flywheel"] and "tandem.web" not in rules["tandem.api"]
    assert rules["tandem.train.__main__"] == {"tandem.train", "tandem.cli"}


def test_no_import_crosses_the_layer_table() -> None:
    rules = layer_rules()
    crossings = []
    for module, targets in sorted(import_graph().items()):
        row = row_of(module, rules)
        for target in sorted(targets):
            target_row = row_of(target, rules)
            if target_row == row or target_row.startswith(row + "."):
                continue
            # A module row (tandem.train.__main__) may always import its own package.
            if row.startswith(target_row + "."):
                continue
            if not any(target == a or target.startswith(a + ".") for a in rules[row]):
                crossings.append(f"{module} -> {target}")
    assert not crossings, "imports the layer table forbids:\n" + "\n".join(crossings)


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    cycles.append(sorted(component))
    return cycles


def test_find_cycles_finds_one() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycles(graph) == [["a", "b", "c"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles() -> None:
    cycles = find_cycles(import_graph())
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_no_module_is_longer_than_the_limit() -> None:
    """Python modules and the web app's own JavaScript modules (vendored libraries aside)."""
    static = SRC / "tandem" / "web" / "static"
    files = [*(SRC / "tandem").rglob("*.py"), *static.glob("*.js")]
    lengths = {str(path.relative_to(ROOT)): len(path.read_text().splitlines()) for path in files}
    too_long = {path: n for path, n in lengths.items() if n > MAX_LINES}
    assert not too_long, f"over {MAX_LINES} lines: {too_long}"


def test_vocabularies_are_declared_once() -> None:
    """Feedback reasons, dataset columns and the method → dataset kind map are spelled out in
    core/signals.py only; everything else (Python, templates, JavaScript) imports or receives
    them."""
    from tandem.core.signals import DATASET_COLUMNS, FEEDBACK_REASON_LABELS, FEEDBACK_REASONS

    telltales = {
        "feedback reasons": re.compile(
            r"[\"']\s*,\s*[\"']".join(map(re.escape, FEEDBACK_REASONS[:2]))
        ),
        "reason labels": re.compile(re.escape(FEEDBACK_REASON_LABELS["refused"])),
        **{
            f"{kind} columns": re.compile(r"[\"']\s*,\s*[\"']".join(map(re.escape, columns)))
            for kind, columns in DATASET_COLUMNS.items()
            if len(columns) > 1
        },
        "method to kind": re.compile(r"[\"']dpo[\"']\s*:\s*[\"']preference[\"']"),
    }
    home = SRC / "tandem" / "core" / "signals.py"
    files = [p for ext in ("py", "js", "html") for p in (SRC / "tandem").rglob(f"*.{ext}")]
    found = {
        name: sorted(
            str(p.relative_to(ROOT)) for p in files if p != home and rx.search(p.read_text())
        )
        for name, rx in telltales.items()
    }
    assert all(rx.search(home.read_text()) for rx in telltales.values())
    assert not any(found.values()), found
