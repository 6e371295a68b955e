"""The chat page's scripts, without a browser: ES modules split by idea (each small enough to
read in one sitting, none importing in a circle), and the thumbs-down reasons handed to them by
the page from the one vocabulary in tandem.core.signals."""

from __future__ import annotations

import html as html_lib
import json
import re
from pathlib import Path

from tandem.core.signals import FEEDBACK_REASON_LABELS

STATIC = Path(__file__).resolve().parents[1] / "src" / "tandem" / "web" / "static"
CHAT_MODULES = sorted(STATIC.glob("chat*.js"))
MAX_LINES = 400


def _chat_imports(module: Path) -> set[str]:
    return set(re.findall(r'from "\./(chat[\w]*\.js)"', module.read_text(encoding="utf-8")))


def test_chat_modules_are_small_and_import_downward_only():
    assert len(CHAT_MODULES) > 1
    long = {m.name: n for m in CHAT_MODULES if (n := len(m.read_text().splitlines())) > MAX_LINES}
    assert long == {}, f"over {MAX_LINES} lines"
    graph = {m.name: _chat_imports(m) for m in CHAT_MODULES}
    assert set().union(*graph.values()) <= set(graph), "an import names a missing module"
    # Depth-first: a module met again while its own imports are being walked is a cycle.
    done: set[str] = set()

    def walk(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, f"import cycle: {' -> '.join((*path, name))}"
        if name in done:
            return
        for dep in graph[name]:
            walk(dep, (*path, name))
        done.add(name)

    for name in graph:
        walk(name, ())


def test_the_chat_page_hands_its_script_the_feedback_reasons(client):
    r = client.post(
        "/api/auth/signup", json={"email": "ada@example.com", "password": "password-123"}
    )
    assert r.status_code == 201, r.text
    for path in ("/", "/c/some-id"):
        html = client.get(path).text
        found = re.search(r"data-feedback-reasons='([^']*)'", html)
        assert found, path
        reasons = json.loads(html_lib.unescape(found.group(1)))
        assert reasons == [list(pair) for pair in FEEDBACK_REASON_LABELS.items()]
    # Declared once: no script spells a reason's label out again.
    scripts = {p.name: p.read_text(encoding="utf-8") for p in STATIC.glob("*.js")}
    for label in FEEDBACK_REASON_LABELS.values():
        assert [name for name, text in scripts.items() if json.dumps(label) in text] == [], label
