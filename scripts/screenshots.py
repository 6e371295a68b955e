"""Screenshots of the web app for the README and docs, with real answers from the embedded
model, taken in Debian's Chromium (the browser the tests use).

    make screenshots                 # or: .venv/bin/python scripts/screenshots.py [OUT_DIR]

Serves a throwaway instance (temporary TANDEM_HOME, SQLite) on a free port, drives it like a
person would, and writes PNGs into docs/screenshots/: chat, feedback, comparison, settings,
profiles, phone, phone-menu, then every admin console page (scripts/screenshots_admin.py:
admin-<page>.png). The model is prepared once into the test cache
(.cache/test-models, or $TANDEM_TEST_MODEL_HOME), so a second run starts in seconds.
"""

from __future__ import annotations

import os
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # launch_chromium: the tests' browser settings

from browser_fixtures import launch_chromium  # noqa: E402

DESKTOP = {"width": 1280, "height": 820}
PHONE = {"width": 390, "height": 844}
PASSWORD = "password-123"
MODEL_HOME = Path(os.environ.get("TANDEM_TEST_MODEL_HOME") or REPO / ".cache" / "test-models")


def serve(app: object) -> tuple[str, object]:
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return f"http://127.0.0.1:{port}", server


def build_app(home: Path) -> tuple[object, object]:
    from tandem.core.settings import Settings
    from tandem.engines import ModelCatalog
    from tandem.engines.onnx import OnnxEngine
    from tandem.registry.embedded import prepare_embedded_model
    from tandem.web.app import create_app

    MODEL_HOME.mkdir(parents=True, exist_ok=True)
    prepared = prepare_embedded_model(MODEL_HOME)
    engine = OnnxEngine(prepared.onnx_dir, prepared.version)
    catalog = ModelCatalog(default_model=prepared.version)
    catalog.add(engine)
    settings = Settings(home=home, database_url=f"sqlite:///{home / 'tandem.db'}")
    return create_app(settings, catalog), engine


def csrf(page) -> dict[str, str]:
    cookies = {c["name"]: c["value"] for c in page.context.cookies()}
    return {"X-CSRF-Token": cookies.get("tandem_csrf", "")}


def api(page, method: str, path: str, json: object = None) -> object:
    r = page.request.fetch(path, method=method, data=json, headers=csrf(page))
    if not r.ok:
        raise RuntimeError(f"{method} {path}: {r.status} {r.text()}")
    return r.json() if r.status != 204 else None


def send(page, text: str, answers: int) -> None:
    page.wait_for_selector("body[data-ready]")
    box = page.get_by_role("textbox", name="Message")
    box.fill(text)
    box.press("Enter")
    page.locator(".msg.assistant:not(.streaming)").nth(answers - 1).wait_for()
    page.get_by_role("button", name="Send message").wait_for()


def phone_context(browser: Any, base_url: str, signed_in: Any) -> Any:
    """A phone-sized browser context (light, touch, 2x) signed in as `signed_in` is."""
    phone = browser.new_context(
        base_url=base_url,
        viewport=PHONE,
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        color_scheme="light",
        storage_state=signed_in.storage_state(),
    )
    phone.set_default_timeout(60_000)
    return phone


def shoot(page, out: Path, name: str) -> None:
    page.mouse.move(0, 0)  # no hover states in the picture
    page.evaluate("document.getElementById('toast')?.classList.remove('show')")
    page.wait_for_timeout(350)  # let transitions settle
    page.screenshot(path=str(out / f"{name}.png"))
    print(f"wrote {out / name}.png")


def seed_history(page) -> None:
    """A few earlier chats, answered by the model, so the sidebar looks lived in."""
    for question in (
        "Give me three tips for a good night's sleep.",
        "What is the boiling point of water in Fahrenheit?",
        "Suggest a name for a grey cat.",
    ):
        conv = api(page, "POST", "/api/conversations", {})
        api(
            page,
            "POST",
            f"/api/conversations/{conv['id']}/messages",
            {"content": question, "sampling": {"max_tokens": 60, "seed": 1}},
        )


def take(base_url: str, out: Path) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = launch_chromium(p)
        context = browser.new_context(base_url=base_url, viewport=DESKTOP, color_scheme="light")
        context.set_default_timeout(60_000)
        page = context.new_page()

        page.goto("/signup")
        page.get_by_label("Name").fill("Ada")
        page.get_by_label("Email").fill("ada@example.com")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Create account").click()
        page.get_by_role("heading", name="How can I help, Ada?").wait_for()
        seed_history(page)

        # 1. chat: a real streamed answer with markdown and code
        page.get_by_role("link", name="New chat").click()
        page.reload()
        send(page, "What is the capital of France? Answer in one sentence.", 1)
        send(page, "Write a Python function that reverses a string.", 2)
        # A 135M model sometimes drops the opening ``` of its code block; like a person
        # would, regenerate (every answer is kept) until the answer is well formed.
        conv = page.url.rsplit("/", 1)[1]
        for _ in range(6):
            answer = api(page, "GET", f"/api/conversations/{conv}/branch")[-1]["content"]
            if answer.lstrip().startswith("```") and answer.count("```") % 2 == 0:
                break
            page.locator(".msg.assistant").last.get_by_role("button", name="Regenerate").click()
            page.locator(".msg.assistant.streaming").wait_for(state="detached")
            page.get_by_role("button", name="Send message").wait_for()
        page.locator(".msg.assistant").last.scroll_into_view_if_needed()
        shoot(page, out, "chat")

        # 2. feedback: thumbs down, reasons open
        last = page.locator(".msg.assistant").last
        last.get_by_role("button", name="Bad response").click()
        panel = page.get_by_role("dialog", name="Tell us more")
        panel.get_by_role("button", name="Not factually correct").click()
        panel.get_by_label("Comment").fill(
            'Slicing does not return a slice "of the specified length".'
        )
        panel.scroll_into_view_if_needed()
        shoot(page, out, "feedback")
        panel.get_by_role("button", name="Submit").click()

        # 3. comparison: two blind answers, before the vote
        page.get_by_role("link", name="New chat").click()
        box = page.get_by_role("textbox", name="Message")
        box.fill("Give me one tip for learning a new language, in two sentences.")
        page.get_by_role("button", name="Compare").click()
        page.get_by_role("menuitem", name="Two answers from the same model").click()
        page.locator(".comparison .vote").first.wait_for()
        page.evaluate("document.getElementById('scroller').scrollTop = 0")
        shoot(page, out, "comparison")
        page.locator(".comparison").get_by_role("button", name="A is better").click()
        page.get_by_text("The models are revealed.").wait_for()

        # 4. settings
        page.goto("/settings")
        page.locator("#mem-list li").first.wait_for()  # loaded: typing now is not overwritten
        page.get_by_label("What should the assistant know about you?").fill(
            "I'm a software engineer in Lyon. I cook vegetarian."
        )
        page.get_by_label("How should it respond?").fill("Be brief. Use metric units.")
        page.locator("#ci-save").click()
        for memory in ("Prefers Python examples", "Has a grey cat named Pixel"):
            page.get_by_label("New memory").fill(memory)
            page.get_by_role("button", name="Add", exact=True).click()
            page.locator("#mem-list").get_by_text(memory).wait_for()
        page.set_viewport_size({"width": 1280, "height": 1000})
        shoot(page, out, "settings")
        page.set_viewport_size(DESKTOP)

        # 5. profiles
        for profile in (
            {
                "name": "Python tutor",
                "description": "Explains Python step by step, with short runnable examples.",
                "instructions": "Teach patiently; always include a short code example.",
                "starters": ["Explain list comprehensions", "What is a decorator?"],
                "shared": True,
            },
            {
                "name": "Travel planner",
                "description": "Plans weekend trips: where to go, what to see, what it costs.",
                "instructions": "Ask about budget first. Give day-by-day plans.",
                "starters": ["Plan two days in Lyon"],
                "sampling": {"temperature": 0.7},
            },
            {
                "name": "Proofreader",
                "description": "Fixes grammar and spelling without changing your voice.",
                "instructions": "Return the corrected text, then list the changes.",
                "starters": [],
            },
        ):
            api(page, "POST", "/api/profiles", profile)
        page.goto("/profiles")
        page.get_by_role("article", name="Proofreader").wait_for()
        shoot(page, out, "profiles")

        # 6. tools: a chart from an uploaded CSV (code interpreter), then a document's passage
        # opened from the answer's sources (files with citations)
        page.get_by_role("link", name="New chat").click()
        page.wait_for_selector("body[data-ready]")
        csv = Path(tempfile.mkdtemp(prefix="tandem-shot-")) / "rainfall.csv"
        csv.write_text(
            "month,rain_mm\nJan,52\nFeb,41\nMar,48\nApr,63\nMay,71\nJun,58\n"
            "Jul,40\nAug,45\nSep,66\nOct,80\nNov,77\nDec,61\n"
        )
        page.locator("#file-input").set_input_files(str(csv))
        page.locator(".doc-chip.ready").wait_for(timeout=120_000)
        page.locator(".tool-switch[data-tool='files']").click()  # this turn: only the code
        page.locator(".tool-switch[data-tool='code']").click()
        send(
            page,
            "Plot the monthly rainfall:\n```python\nimport csv\nimport matplotlib.pyplot as plt\n"
            "rows = list(csv.DictReader(open('rainfall.csv')))\n"
            "plt.bar([r['month'] for r in rows], [int(r['rain_mm']) for r in rows])\n"
            "plt.title('Rainfall (mm)')\nprint('wettest:', max(rows, key=lambda r: "
            "int(r['rain_mm']))['month'])\n```",
            1,
        )
        page.locator(".msg.assistant .msg-images img").last.scroll_into_view_if_needed()
        shoot(page, out, "tools-code")
        page.locator(".tool-switch[data-tool='code']").click()
        notes = csv.with_name("office-notes.md")
        notes.write_text(
            "# Office notes\n\nThe bike shed opens at 7:30 and the code for its door is 4417.\n\n"
            "Lunch is served from noon to 2 pm on weekdays; the terrace closes at 6 pm.\n"
        )
        page.locator("#file-input").set_input_files(str(notes))
        page.locator(".doc-chip.ready >> nth=1").wait_for(timeout=120_000)
        send(page, "When does the bike shed open?", 2)
        page.locator(".msg.assistant").last.locator(".source-btn").first.click()
        page.locator(".citation-pop").wait_for()
        page.locator(".citation-pop").scroll_into_view_if_needed()
        shoot(page, out, "tools-citations")

        # 7. phone: the chat, then the menu
        phone = phone_context(browser, base_url, context)
        mobile = phone.new_page()
        first = api(page, "GET", "/api/conversations")
        chat = next(c for c in first if c["title"].startswith("What is the capital"))
        mobile.goto(f"/c/{chat['id']}")
        mobile.locator(".msg.assistant").last.wait_for()
        mobile.evaluate("document.getElementById('scroller').scrollTop = 0")
        shoot(mobile, out, "phone")
        mobile.get_by_role("button", name="Open menu").click()
        shoot(mobile, out, "phone-menu")
        browser.close()


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "docs" / "screenshots"
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="tandem-screens-") as tmp:
        app, engine = build_app(Path(tmp))
        base_url, server = serve(app)
        try:
            take(base_url, out)
            from screenshots_admin import take_admin  # imports this file's helpers

            take_admin(base_url, out, app, engine)
        finally:
            server.should_exit = True
            time.sleep(0.3)
            engine.close()


if __name__ == "__main__":
    main()
