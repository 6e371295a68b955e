"""Markdown rendering in the browser: the vendored libraries (markdown-it, highlight.js, KaTeX,
DOMPurify behind src/tandem/web/static/markdown.js) against the hand-written renderer they
replaced, in one run of Debian's Chromium.

    python -m bench.markdown_render          # writes docs/benchmarks/markdown.json (~30 s)

Measured for each renderer: the bytes the chat page loads for it (raw and gzip -9), the time
to import it, the time to render a long answer (~10 KB: prose, lists, tables, code in three
languages, links, math) into the page (renderMarkdown + innerHTML, median of 30): cold (an
answer never rendered before) and warm (the same answer again, as the thread re-renders its
stored answers); and a simulated stream of such an answer: one render per word, as
chat_stream.js repaints the growing text (total, and the slowest single render). The old
renderer is read from git (`--old-ref`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import gzip
import http.server
import json
import os
import platform
import re
import subprocess
import tempfile
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STATIC = ROOT / "src" / "tandem" / "web" / "static"
OUT = ROOT / "docs" / "benchmarks" / "markdown.json"
OLD_REF = "be9031a"  # the last commit with the hand-written markdown.js

SECTION = """## Part {n}: measuring things ({salt})

Here is **why** this matters ({salt}), with a [link](https://example.com/{n}) and `code`, some
_emphasis_ and a bare URL https://example.org/page/{n}. The area is $\\pi r^2$ and the sum is
$\\sum_{{i=1}}^{{n}} i = \\frac{{n(n+1)}}{{2}}$, as in [1].

1. First, install it ({salt}):
   ```bash
   pip install tandem && tandem serve --port 80{n:02d}
   ```
2. Then check the answer:
   - it is *short*
   - it cites its sources [2]

```python
def mean(values: list[float]) -> float:
    # The arithmetic mean; raises on an empty list.
    if not values:
        raise ValueError("empty")
    return sum(values) / len(values)  # {n} {salt}
```

```javascript
export async function load(url) {{
  const response = await fetch(url, {{ credentials: "same-origin" }});
  return response.ok ? response.json() : null; // part {n} {salt}
}}
```

| metric | before | after |
| --- | ---: | :-: |
| latency | {n}.5 ms | 0.{n} ms |
| errors | 3 | {salt} |

> A quote with **bold** text and a line
> that continues ({salt}).

$$
\\int_0^1 x^{n}\\,dx = \\frac{{1}}{{{n}+1}} + {salt}
$$
"""

PAGE_SCRIPT = """async ([texts, runs]) => {
  const t0 = performance.now();
  const { renderMarkdown } = await import("/markdown.js");
  const importMs = performance.now() - t0;
  const box = document.createElement("div");
  document.body.append(box);
  const paint = (s) => { box.innerHTML = renderMarkdown(s); return box.childElementCount; };
  const median = (xs) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const timed = (s) => {
    const start = performance.now();
    paint(s);
    return performance.now() - start;
  };
  // Cold: an answer never rendered before (each text differs in every block). Warm: the same
  // answer again, as when the thread re-renders its stored answers.
  const text = texts[0];
  paint(text);  // warm up the code paths
  const cold = texts.slice(1, runs + 1).map(timed);
  const warm = Array.from({ length: runs }, () => timed(text));
  const words = texts[runs + 1].split(" ");
  let partial = "";
  let slowest = 0;
  const start = performance.now();
  for (const word of words) {
    partial += (partial ? " " : "") + word;
    const t = performance.now();
    paint(partial);
    slowest = Math.max(slowest, performance.now() - t);
  }
  return {
    import_ms: importMs,
    render_cold_ms_median: median(cold),
    render_warm_ms_median: median(warm),
    stream_renders: words.length,
    stream_total_ms: performance.now() - start,
    stream_slowest_ms: slowest,
  };
}"""


def long_answer(salt: int = 0) -> str:
    return "\n".join(SECTION.format(n=n, salt=f"v{salt}") for n in range(1, 11))


def module_files(root: Path, entry: str) -> list[Path]:
    """`entry` and every module it imports (static imports, relative paths), transitively."""
    seen: list[Path] = []
    todo = [root / entry]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.append(path)
        text = path.read_text(encoding="utf-8")
        for spec in re.findall(r"""(?:import|from)\s*["'](\.{1,2}/[^"']+)["']""", text):
            todo.append((path.parent / spec).resolve())
    return seen


def sizes(files: list[Path]) -> dict[str, int]:
    raw = sum(p.stat().st_size for p in files)
    zipped = sum(len(gzip.compress(p.read_bytes(), 9)) for p in files)
    return {"files": len(files), "bytes": raw, "gzip_bytes": zipped}


def serve(directory: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(directory))
    handler.extensions_map = {".js": "text/javascript", ".mjs": "text/javascript"}
    http.server.SimpleHTTPRequestHandler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old-ref", default=OLD_REF, help="git ref with the old markdown.js")
    parser.add_argument("--runs", type=int, default=30, help="full renders to take the median of")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    old_source = subprocess.run(
        ["git", "show", f"{args.old_ref}:src/tandem/web/static/markdown.js"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    texts = [long_answer(salt) for salt in range(args.runs + 2)]
    load_before = os.getloadavg()[0]
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        old_dir = Path(tmp)
        (old_dir / "markdown.js").write_text(old_source, encoding="utf-8")
        browser = p.chromium.launch(
            executable_path=os.environ.get("TANDEM_CHROMIUM", "/usr/bin/chromium"),
            args=["--headless", "--no-sandbox", "--disable-gpu"],
        )
        for name, directory in (("hand-written", old_dir), ("libraries", STATIC)):
            server, base = serve(directory)
            page = browser.new_page()
            page.goto(base)
            results[name] = {
                **sizes(module_files(directory, "markdown.js")),
                **{
                    k: round(v, 2) if isinstance(v, float) else v
                    for k, v in page.evaluate(PAGE_SCRIPT, [texts, args.runs]).items()
                },
            }
            page.close()
            server.shutdown()
        version = browser.version
        browser.close()
    report = {
        "date": dt.date.today().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "browser": f"Chromium {version} (headless)",
        "answer_chars": len(texts[0]),
        # Other work on the host's cores moves the times; both renderers ran under the same.
        "load_average_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "old_ref": args.old_ref,
        "renderers": results,
    }
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
