"""Class 3, SSRF: every server-side fetch of a URL a user can influence refuses loopback,
private, link-local and metadata addresses in every spelling, redirects to them, and names that
resolve to them; and no API lets a non-admin set a URL the server fetches.

The fetches a user can steer:

* `POST /api/files/from-url` (file by URL): the URL is the user's.
* the web tool: the URL is in the user's message, a model's tool call, or a search result.
* an image backend answering with a URL: the backend (or whoever controls it) picks it, and a
  user's prompt steers the backend.

Engine base URLs (TANDEM_BACKENDS), the search provider and the image backend's own URL are
deployment settings (environment only); `test_no_request_body_carries_a_url_but_file_by_url`
keeps it that way. The spellings are tests/test_net_safe_fetch.py's, imported, so a spelling
added there is driven through every fetch here too.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from conftest import new_user
from fake_site import FakeSite, redirect
from tandem.net import safe_fetch
from tandem.tools import image_backends
from tandem.tools.base import ToolContext, get_tool
from tandem.tools.image_backends import ImageBackendError, OpenAIImagesBackend
from test_net_safe_fetch import BAD_SCHEME_URLS, LOOPBACK_HOSTS, PRIVATE_URLS  # one list

REFUSED = re.compile(r"(private|internal) address|only http and https")
TEXT = b"Tea is a drink made from leaves.\n" * 10


@pytest.fixture
def site() -> Iterator[FakeSite]:
    """A document server on 127.0.0.1: refused under that address, reachable only as
    `public.test` (the admin allowlist), which also redirects to the refused address."""
    with FakeSite({"/doc.txt": (200, {"Content-Type": "text/plain"}, TEXT)}) as s:
        s.routes["/hop"] = redirect(f"http://127.0.0.1:{s.port}/doc.txt")
        yield s


@pytest.fixture
def names(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """A fake DNS for the test names (`public.test` is the site, `sneaky.test` a name that
    resolves to loopback); real resolution for everything else."""
    table = {"public.test": ["127.0.0.1"], "sneaky.test": ["127.0.0.1"]}
    real = safe_fetch.resolve
    monkeypatch.setattr(safe_fetch, "resolve", lambda h, p: table.get(h) or real(h, p))
    return table


def refused_urls(port: int) -> list[str]:
    """Every URL a fetch must refuse: the loopback spellings aimed at the live site, the
    private and metadata addresses, other schemes, a name that resolves to loopback, and an
    allowlisted name that redirects to loopback."""
    return [
        *(f"http://{host}:{port}/doc.txt" for host in LOOPBACK_HOSTS),
        *PRIVATE_URLS,
        *BAD_SCHEME_URLS,
        f"http://sneaky.test:{port}/doc.txt",
        f"http://public.test:{port}/hop",
    ]


def _drive(site: FakeSite, names: dict, attempt: Callable[[str], str | None]) -> list[str]:
    """Run `attempt(url)` (the refusal it reports, or None when it fetched) for every URL;
    answer the URLs that were not refused, or that reached the site."""
    assert names["sneaky.test"] == ["127.0.0.1"]
    wrong = []
    for url in refused_urls(site.port):
        before = len(site.requests)
        why = attempt(url)
        if why is None or not REFUSED.search(why):
            wrong.append(f"{url}: {why}")
        # The redirect's first hop is the allowlisted name; nothing may reach the target.
        reached = [p for p, _ in site.requests[before:] if p != "/hop"]
        if reached:
            wrong.append(f"{url}: reached {reached}")
    return wrong


# -- file by URL ------------------------------------------------------------------------------


@pytest.fixture
def files_client(settings: Any, fake_catalog: Any) -> Iterator[TestClient]:
    from tandem.web.app import create_app

    opened = dataclasses.replace(settings, fetch_allow_private=("public.test",))
    with TestClient(create_app(opened, fake_catalog)) as client:
        yield client


def test_file_by_url_refuses_every_private_spelling(files_client, site, names):
    alice = new_user(files_client, "alice@example.com")

    def attempt(url: str) -> str | None:
        r = files_client.post("/api/files/from-url", json={"url": url}, headers=alice)
        if r.status_code == 201:
            return None
        assert r.status_code == 422 and r.json()["error"]["code"] == "url_refused", r.text
        return r.json()["error"]["message"]

    assert _drive(site, names, attempt) == []
    assert files_client.get("/api/files", headers=alice).json() == []


def test_file_by_url_ingests_a_public_document_like_an_upload(files_client, site, names):
    alice = new_user(files_client, "alice@example.com")
    chat = files_client.post("/api/conversations", json={}, headers=alice).json()["id"]
    r = files_client.post(
        "/api/files/from-url",
        json={"url": f"http://public.test:{site.port}/doc.txt", "conversation_id": chat},
        headers=alice,
    )
    assert r.status_code == 201, r.text
    row = r.json()
    assert (row["filename"], row["mime"], row["size"]) == ("doc.txt", "text/plain", len(TEXT))
    assert row["conversation_id"] == chat
    got = files_client.get(f"/api/files/{row['id']}/content", headers=alice)
    assert got.content == TEXT


def test_file_by_url_checks_the_chat_the_body_and_the_site(files_client, site, names):
    alice = new_user(files_client, "alice@example.com")
    bob = new_user(files_client, "bob@example.com")
    bobs = files_client.post("/api/conversations", json={}, headers=bob).json()["id"]
    url = f"http://public.test:{site.port}/doc.txt"
    post = files_client.post
    # Another user's chat is 404 before anything is fetched.
    before = len(site.requests)
    r = post("/api/files/from-url", json={"url": url, "conversation_id": bobs}, headers=alice)
    assert r.status_code == 404 and len(site.requests) == before
    r = post("/api/files/from-url", json={"url": url, "user_id": "x"}, headers=alice)
    assert r.status_code == 422  # unknown fields are refused, never trusted
    r = post("/api/files/from-url", json={"url": "http://x/" + "a" * 3000}, headers=alice)
    assert r.status_code == 422
    missing = post("/api/files/from-url", json={"url": f"{url}.gone"}, headers=alice)
    assert missing.status_code == 422 and missing.json()["error"]["code"] == "fetch_failed"
    assert post("/api/files/from-url", json={"url": url}).status_code == 401


def test_file_by_url_stops_at_the_upload_size_limit(files_client, site, names, monkeypatch):
    from tandem.api.routes import files

    monkeypatch.setattr(files, "MAX_FILE_BYTES", len(TEXT) - 1)  # 50 MB, scaled down
    alice = new_user(files_client, "alice@example.com")
    url = f"http://public.test:{site.port}/doc.txt"
    r = files_client.post("/api/files/from-url", json={"url": url}, headers=alice)
    assert r.status_code == 422 and r.json()["error"]["code"] == "fetch_failed"
    assert "more than" in r.json()["error"]["message"]
    assert files_client.get("/api/files", headers=alice).json() == []


# -- the web tool -----------------------------------------------------------------------------


def test_the_web_tool_refuses_every_private_spelling(site, names, tandem_home: Path):
    from tandem.core.settings import Settings

    docs = tandem_home / "docs"
    docs.mkdir()
    settings = Settings(
        home=tandem_home,
        database_url="sqlite://",
        search=f"local:{docs}",
        fetch_allow_private=("public.test",),
    )
    ctx = ToolContext("u1", settings, files=None, uploads=None)  # type: ignore[arg-type]
    tool = get_tool("web")

    def attempt(url: str) -> str | None:
        result = asyncio.run(tool.call(ctx, {"query": "", "url": url}))
        return None if result.citations else (result.error or json.dumps(result.display))

    assert _drive(site, names, attempt) == []
    # The allowlisted name itself is read: the refusals above are not a tool that never reads.
    ok = asyncio.run(
        tool.call(ctx, {"query": "", "url": f"http://public.test:{site.port}/doc.txt"})
    )
    assert ok.citations and "Tea is a drink" in ok.citations[0].passage


# -- an image backend that answers with a URL -------------------------------------------------


def test_an_image_url_from_the_backend_refuses_every_private_spelling(
    site, names, monkeypatch: pytest.MonkeyPatch
):
    answer: dict[str, str] = {}

    def images_api(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"data": [{"url": answer["url"]}]})

    real = httpx.AsyncClient
    monkeypatch.setattr(
        image_backends.httpx,
        "AsyncClient",
        lambda **kw: real(transport=httpx.MockTransport(images_api), **kw),
    )
    backend = OpenAIImagesBackend(
        "http://images.test/v1", timeout_s=5, fetch_allow_private=("public.test",)
    )

    def attempt(url: str) -> str | None:
        answer["url"] = url
        try:
            asyncio.run(backend.generate("a lighthouse", "256x256"))
        except ImageBackendError as exc:
            return str(exc)
        return None

    assert _drive(site, names, attempt) == []


# -- who sets the URLs the server fetches ----------------------------------------------------

URLISH = re.compile(r"url|uri|href|endpoint|host|base|backend|server|webhook|callback", re.I)


def _properties(schema: dict, spec: dict) -> Iterator[tuple[str, dict]]:
    """Every property name in a request body schema, nested models and unions included."""
    if "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    for name, sub in schema.get("properties", {}).items():
        yield name, sub
        yield from _properties(sub, spec)
    for key in ("anyOf", "oneOf", "allOf"):
        for sub in schema.get(key, []):
            yield from _properties(sub, spec)
    if "items" in schema:
        yield from _properties(schema["items"], spec)


def test_no_request_body_carries_a_url_but_file_by_url(client):
    """Engine base URLs, the search provider and image backends come from the environment: no
    route, an admin's included, takes a URL-like field, except the file-by-URL fetch that goes
    through safe_fetch. A new one fails here until its fetch is covered above."""
    spec = client.get("/openapi.json").json()
    found = set()
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            for content in op.get("requestBody", {}).get("content", {}).values():
                for name, _ in _properties(content["schema"], spec):
                    if URLISH.search(name):
                        found.add((method.upper(), path, name))
            for param in op.get("parameters", []):
                if URLISH.search(param["name"]):
                    found.add((method.upper(), path, param["name"]))
    # A training job's `base` is a registry version: a name pattern-checked as a directory name
    # ([A-Za-z0-9._-], no ':' or '/'), so no URL gets through it.
    not_urls = {("POST", "/api/admin/jobs/train", "base")}
    base = spec["components"]["schemas"]["TrainJobIn"]["properties"]["base"]
    assert base["pattern"] == "^[A-Za-z0-9][A-Za-z0-9._-]{0,119}$"
    assert found - not_urls == {("POST", "/api/files/from-url", "url")}
