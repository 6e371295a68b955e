"""The vendored browser libraries (src/tandem/web/static/vendor/): each folder has its license
and a row in vendor/README.md, every module the pages import exists and is served as
JavaScript, and the wheel ships all of it.

    .venv/bin/python -m pytest -q tests/test_web_vendor.py
"""

from __future__ import annotations

import glob
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "src" / "tandem"
STATIC = PACKAGE / "web" / "static"
VENDOR = STATIC / "vendor"
IMPORT = re.compile(r"""(?:^|\n)\s*(?:import|export)\b[^"';]*?["'](\.{1,2}/[^"']+)["']""")


def module_graph() -> set[Path]:
    """Every file reached by relative imports from the pages' own modules."""
    seen: set[Path] = set()
    todo = list(STATIC.glob("*.js"))
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for spec in IMPORT.findall(path.read_text(encoding="utf-8")):
            target = (path.parent / spec.split("?")[0]).resolve()
            assert target.is_file(), f"{path.name} imports {spec}, which does not exist"
            todo.append(target)
    return seen


def test_each_vendored_library_has_its_license_and_a_readme_row():
    readme = (VENDOR / "README.md").read_text(encoding="utf-8")
    folders = [p for p in VENDOR.iterdir() if p.is_dir()]
    assert folders
    for folder in folders:
        assert re.fullmatch(r"[a-z0-9.@_-]+-\d+\.\d+\.\d+", folder.name), folder.name
        assert list(folder.glob("LICENSE*")), f"{folder.name} has no LICENSE"
        assert f"`{folder.name}/`" in readme, f"{folder.name} is not listed in vendor/README.md"


def test_imported_modules_exist_and_are_served_as_javascript(client):
    vendored = [p for p in module_graph() if VENDOR in p.parents]
    assert {p.parent.name for p in vendored} >= {
        "markdown-it-15.0.3",
        "highlight.js-11.12.0",
        "katex-0.19.1",
        "dompurify-3.5.0",
        "eventsource-parser-4.1.3",
    }
    for path in vendored:
        url = "/static/" + path.relative_to(STATIC).as_posix()
        r = client.get(url)
        assert r.status_code == 200, url
        # A module script with any other type is refused (X-Content-Type-Options: nosniff).
        assert "javascript" in r.headers["content-type"], (url, r.headers["content-type"])


def test_the_wheel_ships_every_static_file():
    """setuptools matches package-data with glob (recursive for `**`); `web/static/*` alone
    left vendor/ out of the wheel."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"]["tandem"]
    shipped = {
        Path(f) for pattern in patterns for f in glob.glob(str(PACKAGE / pattern), recursive=True)
    }
    missing = [
        p.relative_to(STATIC).as_posix()
        for p in STATIC.rglob("*")
        if p.is_file() and p not in shipped
    ]
    assert missing == []
