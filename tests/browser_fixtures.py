"""Fixtures for browser tests: Playwright driving Debian's Chromium against a live server.

    .venv/bin/python -m pytest -q -m "browser and not postgres"

Never `playwright install`: the browser is /usr/bin/chromium from Debian (`make
system-test-deps` installs it). One browser per test session, a fresh context (cookies,
storage) per test. A JavaScript error or a Content-Security-Policy violation on any page fails
the test that caused it.

    def test_x(web):                                  # web = the app on FakeEngines
        page = web.signed_in("ada@example.com")       # a signed-in page at /
        page.get_by_label("Message").fill("Hello")
    def test_y(web_with):                             # web_with(catalog) for other engines
        web = web_with(my_catalog)
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("TANDEM_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",  # tests run as root in containers, where the sandbox cannot start
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
DESKTOP = {"width": 1280, "height": 860}
PASSWORD = "password-123"
CSP_LISTENER = """document.addEventListener("securitypolicyviolation", (e) =>
  console.error(`Content Security Policy violation: ${e.violatedDirective} ${e.blockedURI}`));"""


def launch_chromium(playwright: Any) -> Any:
    """Debian's Chromium, headless; shared by the tests and `make screenshots`."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        # A skipped browser stage must not pass for a green one.
        pytest.fail(
            f"{CHROMIUM} is missing: run `make system-test-deps` (installs Debian's chromium)"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = launch_chromium(p)
        yield browser
        browser.close()


@dataclass
class Web:
    """A live server plus browser contexts against it."""

    base_url: str
    app: Any
    browser: Any
    contexts: list[Any] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def new_page(self, viewport: dict[str, int] | None = None) -> Any:
        context = self.browser.new_context(base_url=self.base_url, viewport=viewport or DESKTOP)
        context.set_default_timeout(15_000)
        self.contexts.append(context)
        # A Content-Security-Policy violation fails the test like a JavaScript error: the
        # app must work under its policy, and markup a page refused to run was injected.
        context.add_init_script(CSP_LISTENER)
        page = context.new_page()
        page.on("pageerror", lambda exc: self.errors.append(f"{page.url}: {exc}"))
        page.on(
            "console",
            lambda msg: (
                self.errors.append(f"{page.url}: {msg.text}")
                if msg.type == "error" and "Content Security Policy" in msg.text
                else None
            ),
        )
        return page

    def signed_in(self, email: str, viewport: dict[str, int] | None = None, path: str = "/") -> Any:
        """A page whose context signed up `email` through the API (sign-up itself is tested
        through the form once), then opened `path`."""
        page = self.new_page(viewport)
        r = page.request.post(
            "/api/auth/signup", data={"email": email, "password": PASSWORD, "display_name": ""}
        )
        assert r.status == 201, r.text()
        page.goto(path)
        page.wait_for_selector("#thread .empty, .page-inner, #thread .msg")
        return page

    def api(self, page: Any, method: str, path: str, json: Any = None) -> Any:
        """Call the API as the page's user (its cookies, its CSRF token); returns the JSON."""
        cookies = {c["name"]: c["value"] for c in page.context.cookies()}
        headers = {"X-CSRF-Token": cookies.get("tandem_csrf", "")}
        r = page.request.fetch(path, method=method, data=json, headers=headers)
        assert r.ok, f"{method} {path}: {r.status} {r.text()}"
        return r.json() if r.status != 204 else None

    def close(self) -> None:
        for context in self.contexts:
            context.close()


@pytest.fixture
def web_with(
    browser: Any, settings: Any, live_server: Callable[..., str]
) -> Iterator[Callable[[Any], Web]]:
    """`web_with(catalog, **changes)`: the app with that model catalog (and `changes` to the
    test settings, e.g. `chat_titles=True`), served live, and a browser."""
    import dataclasses

    from tandem.web.app import create_app

    made: list[Web] = []

    def make(catalog: Any, **changes: Any) -> Web:
        app = create_app(dataclasses.replace(settings, **changes), catalog)
        web = Web(live_server(app), app, browser)
        made.append(web)
        return web

    yield make
    for web in made:
        web.close()
    errors = [e for web in made for e in web.errors]
    assert not errors, "JavaScript errors on the page:\n" + "\n".join(errors)


@pytest.fixture
def web(web_with: Callable[[Any], Web], fake_catalog: Any) -> Web:
    """The app on the fake engines (`fake-model` echoes, `other-model` is scripted)."""
    return web_with(fake_catalog)
