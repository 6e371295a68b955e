"""The interactive API docs load nothing from another origin.

The finding: /docs and /redoc were FastAPI's stock pages, which load unpinned Swagger UI and
ReDoc bundles from a CDN (whatever `swagger-ui-dist@5` and `redoc@2` resolve to that day) and
start them with an inline script, so the pages' policy had to allow the CDN and inline script
on the app's own origin. Now Swagger UI is vendored at a pinned version with its license
(src/tandem/web/static/vendor/swagger-ui-dist-<version>/) and starts from a static script, so
/docs gets the app's own policy; /redoc (ReDoc needs inline styles and always loads a logo
from its vendor's CDN) sends readers to /docs.

    .venv/bin/python -m pytest -q tests/security/test_api_docs_assets.py
    .venv/bin/python -m pytest -q -m browser tests/security/test_api_docs_assets.py
"""

from __future__ import annotations

import fnmatch
import re
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "src" / "tandem"
VENDOR = PACKAGE / "web" / "static" / "vendor"


def directives(header: str) -> dict[str, str]:
    parts = (d.strip().split(None, 1) for d in header.split(";") if d.strip())
    return {p[0]: (p[1] if len(p) > 1 else "") for p in parts}


def _assets(html: str) -> list[str]:
    return re.findall(r"""(?:src|href|spec-url)=["']([^"']+)["']""", html)


def test_the_docs_page_uses_local_pinned_assets_only(client):
    r = client.get("/docs")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    html = r.text
    assert not re.search(r"<script(?![^>]*\bsrc=)", html), "no inline script"
    assert "<style" not in html and not re.search(r"\sstyle=", html)
    assets = _assets(html)
    assert any(a.startswith("/static/vendor/") for a in assets), assets
    for asset in assets:
        assert asset.startswith("/"), f"{asset} is not on this origin"
        assert not asset.startswith("//")
        if asset.startswith("/static/vendor/"):
            folder = asset.removeprefix("/static/vendor/").split("/", 1)[0]
            assert re.fullmatch(r"[a-z][a-z0-9.-]*-\d+\.\d+\.\d+", folder), folder
        served = client.get(asset)
        assert served.status_code == 200, asset


def test_the_docs_policy_allows_this_origin_only(client):
    csp = directives(client.get("/docs").headers["content-security-policy"])
    everything = " ".join(csp.values())
    assert "http:" not in everything and "https:" not in everything, csp
    assert "'unsafe-inline'" not in everything and "'unsafe-eval'" not in everything, csp
    assert csp["script-src"] == csp["style-src"] == csp["default-src"] == "'self'"
    assert csp["frame-ancestors"] == "'none'" and csp["object-src"] == "'none'"
    assert csp["base-uri"] == "'none'"


def test_redoc_sends_readers_to_the_docs(client):
    r = client.get("/redoc", follow_redirects=False)
    assert r.status_code == 308 and r.headers["location"] == "/docs"


def test_vendored_docs_bundles_are_licensed_and_packaged(client):
    folders = {
        asset.removeprefix("/static/vendor/").split("/", 1)[0]
        for asset in _assets(client.get("/docs").text)
        if asset.startswith("/static/vendor/")
    }
    assert {f.rsplit("-", 1)[0] for f in folders} == {"swagger-ui-dist"}, folders
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["tandem"]
    for folder in folders:
        files = [p for p in (VENDOR / folder).iterdir() if p.is_file()]
        assert (VENDOR / folder / "LICENSE").is_file(), folder
        for file in files:  # a wheel carries every vendored file
            relative = str(file.relative_to(PACKAGE))
            assert any(fnmatch.fnmatch(relative, p) for p in patterns), relative


@pytest.mark.browser
@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_the_docs_render_in_a_browser_under_the_app_policy(web, path):
    """Chromium under the real policy: a CSP violation or a script error fails the test
    (tests/browser_fixtures.py), and the operations are listed."""
    page = web.new_page()
    page.goto(path)
    page.wait_for_selector(".opblock-summary-path", timeout=30_000)
    assert page.url.endswith("/docs")
    assert "/v1/chat/completions" in page.content()
