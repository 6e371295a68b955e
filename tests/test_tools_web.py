"""The web tool: readable text from real-looking pages, the local index and SearXNG providers,
and the tool end to end against a local fake site and search engine (hermetic), plus one chat
turn with the embedded model (marked `model`)."""

from __future__ import annotations

import json
import urllib.parse
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from conftest import new_user
from fake_engine import FakeEngine
from fake_site import FakeSite, html
from tandem.chat import ChatService
from tandem.core.settings import Settings
from tandem.engines import ModelCatalog
from tandem.net import safe_fetch
from tandem.net.readable import extract_html, extract_text, readable
from tandem.store import ConversationRepo, GenerationRepo, UserRepo
from tandem.tools.base import ToolContext, get_tool
from tandem.tools.search_providers import (
    LocalIndexProvider,
    SearchError,
    SearxngProvider,
    provider_from_settings,
)
from tandem.tools.web import NOT_CONFIGURED, best_passages, urls_in

ARTICLE = """<!doctype html>
<html lang="en"><head>
<meta charset="utf-8">
<title>Frogs &amp; toads | Nature Notes</title>
<link rel="canonical" href="https://nature.example/frogs">
<script>window.dataLayer = []; document.write("<p>tracking</p>");</script>
<style>p { color: green }</style>
</head><body>
<header class="site"><a href="/">Nature Notes</a> <a href="/about">About us</a></header>
<nav><ul><li><a href="/birds">Birds</a><li><a href="/frogs">Frogs</a></ul></nav>
<div class="layout">
  <article>
    <header><h1>Frogs and toads</h1><p class="byline">By Ann Example</p></header>
    <p>Frogs are amphibians   that
       live near water and have smooth, moist skin.
    <p>Toads have dry, <b>warty</b> skin and spend most of their lives on land.
    <h2>Diet</h2>
    <p>Adult frogs eat insects, worms and spiders; tadpoles graze on algae.</p>
    <ul><li>Insects<li>Worms</ul>
    <aside class="related">Related: why cats purr</aside>
    <form action="/subscribe"><input name="email"><button>Subscribe</button></form>
    <div hidden>hidden promo</div><span aria-hidden="true">★</span>
  </article>
  <div class="sidebar" role="complementary">Popular: the best hiking boots</div>
</div>
<footer>© 2024 Nature Notes · Privacy · Cookies</footer>
</body></html>"""


# -- readable text ------------------------------------------------------------------------


def test_readable_keeps_the_article_and_drops_the_chrome():
    page = extract_html(ARTICLE)
    assert page.title == "Frogs & toads | Nature Notes"
    assert page.url == "https://nature.example/frogs"
    assert page.blocks == (
        "Frogs and toads",
        "By Ann Example",
        "Frogs are amphibians that live near water and have smooth, moist skin.",
        "Toads have dry, warty skin and spend most of their lives on land.",
        "Diet",
        "Adult frogs eat insects, worms and spiders; tadpoles graze on algae.",
        "Insects",
        "Worms",
    )
    for junk in ("tracking", "color", "About us", "Birds", "cats purr", "Subscribe", "promo",
                 "★", "hiking boots", "Privacy"):  # fmt: skip
        assert junk not in page.text


def test_readable_without_an_article_uses_main_then_the_body():
    with_main = extract_html(
        "<body><nav>Menu</nav><p>Outside main, a teaser.</p><main><h1>Guide</h1>"
        + "<p>" + "All about sourdough starters and how to feed them. " * 4 + "</p></main></body>"
    )  # fmt: skip
    assert with_main.blocks[0] == "Guide" and "teaser" not in with_main.text
    assert with_main.title == "Guide"  # no <title>: the first heading
    plain = extract_html("<html><body><div>First line<br>same block</div><p>Second</body>")
    assert plain.blocks == ("First line same block", "Second")
    assert plain.title == ""


def test_readable_decodes_the_declared_charset_and_reads_markdown_and_text():
    latin = '<meta charset="iso-8859-1"><p>Caf\xe9 cr\xe8me</p>'.encode("latin-1")
    assert readable(latin, "text/html").blocks == ("Café crème",)
    md = readable(
        b"---\ntitle: Toad facts\nurl: https://docs.example/toads\n---\n# Toads\n\n"
        b"Toads are *warty*.\n\n- they eat slugs\n",
        "text/markdown",
    )
    assert (md.title, md.url) == ("Toad facts", "https://docs.example/toads")
    assert md.blocks == ("Toads", "Toads are *warty*.", "they eat slugs")
    text = extract_text("line one\nline two\n\n\nsecond paragraph")
    assert text.blocks == ("line one line two", "second paragraph")


def test_best_passages_pick_the_paragraph_that_answers_the_query():
    frogs = extract_html(ARTICLE)
    filler = "Nature Notes is a magazine about animals. " * 30
    long_page = extract_text(f"{filler}\n\nTadpoles graze on algae in spring ponds.\n\n{filler}")
    chosen = best_passages("what do tadpoles eat", [frogs, long_page])
    assert "tadpoles graze on algae" in chosen[0]
    assert chosen[1] == "Tadpoles graze on algae in spring ponds."
    # Nothing matches: the page's opening stands in.
    assert best_passages("zebra", [frogs])[0].startswith("Frogs and toads")


def test_urls_in_a_message_lose_their_sentence_punctuation():
    assert urls_in("see https://a.example/x?y=1, and (http://b.example/p).") == [
        "https://a.example/x?y=1",
        "http://b.example/p",
    ]
    assert urls_in("no links, file:///etc/passwd either") == []


# -- providers ------------------------------------------------------------------------------


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    root = tmp_path / "docs"
    (root / "animals").mkdir(parents=True)
    (root / "animals" / "frogs.html").write_text(ARTICLE)
    (root / "toads.md").write_text(
        "---\ntitle: Toad facts\nurl: https://docs.example/toads\n---\n\n"
        "Toads eat slugs and beetles at night.\n\nTheir skin is warty and dry.\n"
    )
    (root / "kettle.txt").write_text("How to descale a kettle\n\nUse vinegar and water.\n")
    (root / ".hidden.md").write_text("toads toads toads secret")
    (root / "picture.png").write_bytes(b"\x89PNG toads")
    return root


@pytest.mark.anyio
async def test_the_local_index_finds_documents_with_their_own_urls(docs):
    provider = LocalIndexProvider(docs)
    hits = await provider.search("what do toads eat", k=5)
    assert hits[0].url == "https://docs.example/toads" and hits[0].title == "Toad facts"
    assert hits[0].snippet == "Toads eat slugs and beetles at night."
    urls = {h.url for h in await provider.search("toads kettle frogs", k=10)}
    # Canonical link, front matter, or a local identifier; never a file: URL; hidden files
    # and other types are not indexed.
    assert urls == {
        "https://nature.example/frogs",
        "https://docs.example/toads",
        "local:kettle.txt",
    }
    assert await provider.search("zebra", k=5) == []
    kettle = provider.page("local:kettle.txt")
    assert kettle.blocks == ("How to descale a kettle", "Use vinegar and water.")
    assert provider.page("https://elsewhere.example/") is None
    # An edited document is re-indexed on the next search.
    (docs / "kettle.txt").write_text("How to descale a kettle\n\nUse citric acid, not toads.\n")
    hits = await provider.search("citric acid", k=5)
    assert [h.url for h in hits] == ["local:kettle.txt"]


def test_search_settings_pick_a_provider_or_say_what_is_wrong(tmp_path):
    base = Settings(home=tmp_path, database_url="sqlite://")
    assert provider_from_settings(base) is None
    local = Settings(home=tmp_path, database_url="sqlite://", search=f"local:{tmp_path}")
    assert isinstance(provider_from_settings(local), LocalIndexProvider)
    searx = Settings(home=tmp_path, database_url="sqlite://", search="searxng:http://s:8888/")
    assert provider_from_settings(searx).base_url == "http://s:8888"
    with pytest.raises(ValueError, match="unknown search provider 'bing'"):
        provider_from_settings(Settings(home=tmp_path, database_url="x", search="bing:key"))
    with pytest.raises(ValueError, match="needs an argument"):
        provider_from_settings(Settings(home=tmp_path, database_url="x", search="local:"))
    env = Settings.from_env(
        {"TANDEM_SEARCH": "local:/srv/docs", "TANDEM_FETCH_ALLOW_PRIVATE": "10.0.0.0/8, searx"}
    )
    assert env.search == "local:/srv/docs"
    assert env.fetch_allow_private == ("10.0.0.0/8", "searx")


def searxng(results: list[dict], seen: list[dict]):
    """A fake SearXNG /search handler answering `results`, recording the query string."""

    def handler(h) -> None:
        query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(h.path).query))
        seen.append(query)
        body = json.dumps({"query": query.get("q"), "results": results}).encode()
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    return handler


@pytest.fixture
def names(monkeypatch):
    """Fake DNS: the test site's names resolve to 127.0.0.1, as public sites would to theirs."""
    table = {"public.test": ["127.0.0.1"], "searx.test": ["127.0.0.1"]}
    real = safe_fetch.resolve
    monkeypatch.setattr(safe_fetch, "resolve", lambda h, p: table.get(h) or real(h, p))
    return table


@pytest.mark.anyio
async def test_searxng_results_come_from_its_json_api(names):
    seen: list[dict] = []
    results = [
        {"title": "Frogs  and toads", "url": "https://nature.example/frogs", "content": "Frogs…"},
        {"title": "dup", "url": "https://nature.example/frogs", "content": "again"},
        {"title": "bad", "url": "javascript:alert(1)", "content": "x"},
        {"title": "Toads", "url": "https://docs.example/toads", "content": "Toads " * 200},
    ]
    with FakeSite({"/search": searxng(results, seen)}) as engine:
        # The admin allowlists the intranet engine by name.
        provider = SearxngProvider(f"http://searx.test:{engine.port}/", ("searx.test",))
        hits = await provider.search("frog food", k=5)
        assert seen == [{"q": "frog food", "format": "json"}]
        assert [(h.title, h.url) for h in hits] == [
            ("Frogs and toads", "https://nature.example/frogs"),
            ("Toads", "https://docs.example/toads"),
        ]
        assert len(hits[1].snippet) <= 300 and hits[1].snippet.endswith("…")
        # Without the allowlist the same engine is a private address like any other.
        with pytest.raises(SearchError, match="private address"):
            await SearxngProvider(f"http://searx.test:{engine.port}").search("x", 5)


# -- the tool end to end ----------------------------------------------------------------------

FROG_PAGE = ARTICLE
TOAD_PAGE = """<html><head><title>All about toads</title></head><body>
<nav>Home · Animals · Shop</nav>
<main><h1>Toads</h1><p>Toads are amphibians of the family Bufonidae.</p>
<p>Toads eat slugs, beetles and other insects, hunting mostly at night.</p>
<p>They can live for ten years or more.</p></main><footer>© toads.example</footer>
</body></html>"""


@pytest.fixture
def web_world(names, tandem_home):
    """A fake SearXNG and a fake site. The search results point at two pages of the site, a
    binary file, and a private address (a poisoned result); the admin allowlisted only the
    site's and the engine's names."""
    seen: list[dict] = []
    with FakeSite({}) as site:
        base = f"http://public.test:{site.port}"
        results = [
            {"title": "Frogs (search title)", "url": f"{base}/frogs", "content": "Frogs…"},
            {"title": "Toads", "url": f"{base}/toads", "content": "Toad snippet"},
            {
                "title": "Internal",
                "url": f"http://127.0.0.1:{site.port}/secret",
                "content": "A snippet the engine wrote",
            },
            {"title": "Download", "url": f"{base}/file.bin", "content": ""},
        ]
        site.routes.update(
            {
                "/search": searxng(results, seen),
                "/frogs": html(FROG_PAGE),
                "/toads": html(TOAD_PAGE),
                "/secret": html("<p>internal admin page</p>"),
                "/file.bin": (200, {"Content-Type": "application/octet-stream"}, b"\0"),
                "/user-page": html("<title>User page</title><p>Newts are salamanders.</p>"),
            }
        )
        settings = Settings(
            home=tandem_home,
            database_url="sqlite://",
            search=f"searxng:http://searx.test:{site.port}",
            fetch_allow_private=("searx.test", "public.test"),
        )
        yield settings, site, base


def _ctx(settings: Settings, start: int = 1) -> ToolContext:
    # The web tool touches no files or uploads.
    return ToolContext("u1", settings, files=None, uploads=None, citation_start=start)  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_the_web_tool_searches_reads_and_cites_pages_with_links(web_world):
    settings, site, base = web_world
    tool = get_tool("web")
    result = await tool.call(_ctx(settings, start=3), {"query": "what do toads eat"})
    assert result.error is None
    # Top three hits were read: two pages, and the private one was refused without a request.
    cited = [(c.index, c.kind, c.url) for c in result.citations]
    assert cited == [
        (3, "web", f"{base}/frogs"),
        (4, "web", f"{base}/toads"),
        (5, "web", f"http://127.0.0.1:{site.port}/secret"),
    ]
    assert "/secret" not in site.paths and "/file.bin" not in site.paths
    frogs, toads, secret = result.citations
    assert frogs.title == "Frogs (search title)"
    assert "Toads have dry, warty skin" in frogs.passage
    assert toads.passage.startswith("Toads\nToads are amphibians") and "eat slugs" in toads.passage
    assert "Shop" not in toads.passage and "©" not in toads.passage
    assert secret.passage == "A snippet the engine wrote"  # the engine's words, not the page's
    assert any("private address" in e for e in result.display["errors"])
    # What the model reads: numbered sources with their links.
    assert result.content.startswith(f"[3] Frogs (search title) ({base}/frogs)\n")
    assert f"[4] Toads ({base}/toads)\nToads\nToads are amphibians" in result.content
    assert result.display["query"] == "what do toads eat"
    assert [r["url"] for r in result.display["results"]][:2] == [f"{base}/frogs", f"{base}/toads"]
    assert set(result.display["results"][0]) == {"title", "url", "snippet"}


@pytest.mark.anyio
async def test_a_url_in_the_message_is_read_directly(web_world):
    settings, site, base = web_world
    tool = get_tool("web")
    arguments = tool.arguments_for(_ctx(settings), f"Summarise {base}/user-page please.")
    assert arguments == {"query": f"Summarise {base}/user-page please.", "url": f"{base}/user-page"}
    result = await tool.call(_ctx(settings), arguments)
    first = result.citations[0]
    assert (first.url, first.title, first.passage) == (
        f"{base}/user-page",
        "User page",
        "Newts are salamanders.",
    )
    # The search ran on the words without the URL.
    searched = [p for p in site.paths if p.startswith("/search")]
    assert searched and "user-page" not in searched[0]


@pytest.mark.anyio
async def test_a_refused_url_is_reported_and_never_crashes_the_turn(web_world):
    settings, site, _ = web_world
    tool = get_tool("web")
    for url in (f"http://127.0.0.1:{site.port}/secret", "file:///etc/passwd"):
        result = await tool.call(_ctx(settings), {"query": "", "url": url})
        assert result.citations == [] and result.error
        assert "private address" in result.error or "only http and https" in result.error
    # With a query as well, the search results still come, and the model is told.
    result = await tool.call(
        _ctx(settings), {"query": "toads", "url": f"http://127.0.0.1:{site.port}/secret"}
    )
    assert result.error is None and result.citations
    assert "could not be read" in result.content
    assert "/secret" not in site.paths


@pytest.mark.anyio
async def test_an_unconfigured_or_unreachable_search_says_so(web_world, tandem_home):
    tool = get_tool("web")
    bare = Settings(home=tandem_home, database_url="sqlite://")
    assert tool.available(bare) == NOT_CONFIGURED
    result = await tool.call(_ctx(bare), {"query": "toads"})
    assert result.error == NOT_CONFIGURED
    dead = Settings(home=tandem_home, database_url="sqlite://", search="searxng:http://10.9.9.9")
    result = await tool.call(_ctx(dead), {"query": "toads"})
    assert "search engine could not be reached" in result.error
    assert "private address" in result.error
    bad = Settings(home=tandem_home, database_url="sqlite://", search="altavista:1")
    assert "unknown search provider" in tool.available(bad)


@pytest.mark.anyio
async def test_a_chat_turn_with_web_stores_cited_sources_and_records_the_call(
    session_factory, tandem_home, docs
):
    catalog = ModelCatalog(default_model="fake-model")
    catalog.add(FakeEngine("fake-model"))
    settings = Settings(home=tandem_home, database_url="sqlite://", search=f"local:{docs}")
    with session_factory() as s:
        alice = UserRepo(s).create("alice@x.io", "pw-123456").id
        conv = ConversationRepo(s).create(alice).id
    service = ChatService(session_factory, catalog, settings=settings)
    turn = await service.send(alice, conv, "What do toads eat?", tools=["web"]).run()
    system = catalog.get("fake-model").calls[-1][0][0].content
    assert "[1] Toad facts (https://docs.example/toads)\nToads eat slugs" in system
    with session_factory() as s:
        stored = ConversationRepo(s).get_message(alice, turn.assistant_message.id).to_message()
        record = GenerationRepo(s).get(alice, turn.generation.id)
    citations = [p.data for p in stored.parts if p.type == "citation"]
    assert citations[0]["kind"] == "web" and citations[0]["url"] == "https://docs.example/toads"
    assert record.tool_calls[0]["tool"] == "web"
    assert record.tool_calls[0]["citations"][0]["url"] == "https://docs.example/toads"


# -- with the embedded model ------------------------------------------------------------------


@pytest.mark.model
def test_the_embedded_model_answers_from_web_sources(
    tandem_home, onnx_engine, prepared_model, docs
):
    from tandem.web.app import create_app

    catalog = ModelCatalog(default_model=prepared_model.version)
    catalog.add(onnx_engine)
    settings = Settings(
        home=tandem_home,
        database_url=f"sqlite:///{tandem_home / 'tandem.db'}",
        search=f"local:{docs}",
    )
    with TestClient(create_app(settings, catalog)) as client:
        headers = new_user(client, "ada@example.com")
        conv = client.post("/api/conversations", json={}, headers=headers).json()["id"]
        r = client.post(
            f"/api/conversations/{conv}/messages",
            json={
                "content": "What do toads eat?",
                "tools": ["web"],
                "sampling": {"max_tokens": 32, "temperature": 0},
            },
            headers=headers,
        )
        assert r.status_code == 200, r.text
        turn = r.json()
        answer = turn["assistant_message"]
        assert answer["content"].strip()
        links = [p["data"]["url"] for p in answer["parts"] if p["type"] == "citation"]
        assert links[0] == "https://docs.example/toads"
        calls = turn["generation"]["tool_calls"]
        assert calls[0]["tool"] == "web" and calls[0]["error"] is None
        assert calls[0]["citations"][0]["passage"].startswith("Toads eat slugs")
        # Reloaded, the conversation still shows the sources.
        tree = client.get(f"/api/conversations/{conv}", headers=headers).json()
        stored = next(m for m in tree["messages"] if m["id"] == answer["id"])
        assert any(p["type"] == "citation" for p in stored["parts"])
