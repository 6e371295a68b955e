"""Rendering (issue 7, class 2): model and user text, tool cards, citations, names and titles
that carry HTML, SVG, `javascript:` links and markdown nesting them are shown as text and never
run, on every page. Browser tests (marker `browser`); the app runs under its CSP, and a CSP
violation fails the test (tests/browser_fixtures.py), so markup that got into the DOM and was
merely blocked still fails.

The basic case (a `<script>` in a chat message) is
tests/test_web_chat.py::test_markup_in_messages_is_shown_as_text_and_never_runs; these extend it
to every place user- or model-controlled text reaches a page.
"""

from __future__ import annotations

from urllib.parse import quote

import pytest
from playwright.sync_api import expect

from test_web_chat import answers, send, wait_answered

pytestmark = pytest.mark.browser

# Every payload sets window.__pwned if it ever runs.
PAYLOADS = (
    "<script>window.__pwned='script'</script>",
    "<svg onload=\"window.__pwned='svg'\"></svg>",
    "<img src=x onerror=\"window.__pwned='img'\">",
    "[a](javascript:window.__pwned='link')",
    "[b](JaVaScRiPt:window.__pwned='mixed-case')",
    "[tab](java\tscript:window.__pwned='tab')",
    "[c](data:text/html,<script>window.__pwned='data'</script>)",
    "![d](javascript:window.__pwned='image')",
    "![e](https://example.com/x.png\" onerror=\"window.__pwned='img-attr')",
    "<javascript:window.__pwned='autolink'>",
    "&lt;img src=x onerror=window.__pwned='entity'&gt; &#60;script&#62;window.__pwned=1",
    "[![f](javascript:window.__pwned='inner')](javascript:window.__pwned='outer')",
    "[`<b onmouseover=x>`](javascript:window.__pwned='code-in-link')",
    "[g](http://a`\" autofocus onfocus=\"window.__pwned='held'`)",
    "http://example.com/\"onmouseover=\"window.__pwned='bare'",
    "<a href=\"javascript:window.__pwned='raw-a'\">raw</a>",
    "| head | <img src=x onerror=window.__pwned='th'> |\n|---|:-:|\n"
    "| <script>window.__pwned='td'</script> | [t](javascript:window.__pwned='td-link') |",
    "- <svg><script>window.__pwned='li'</script></svg>\n  - [n](vbscript:msgbox(1))",
    "> <iframe src=\"javascript:window.__pwned='quote'\"></iframe>\n> **<b>bold</b>**",
    "```html\n<script>window.__pwned='fence'</script>\n```",
    "<math><mtext><table><mglyph><style><img src=x onerror=window.__pwned='mxss'>",
    '<base href="javascript:/"><meta http-equiv="refresh" content="0;javascript:1">',
)
DOCUMENT = "\n\n".join(PAYLOADS)
SHORT = "<img src=x onerror=\"window.__pwned='short'\"><script>window.__pwned=1</script>"
JS_URL = "javascript:window.__pwned='url'"

# What the page must never contain, whatever it shows: handlers, script URLs, foreign scripts,
# frames, plugins, a <base>, a refresh, SVG other than our icons, images from elsewhere.
DOM_PROBLEMS = """() => {
  const problems = [];
  const URL_ATTRS = ["href", "src", "action", "formaction", "xlink:href", "data", "srcdoc"];
  const CONTENT = ".markdown, .bubble, .tool-card, .citation-pop, .sources, .empty, tbody";
  const scheme = (v) => v.replace(/[\\u0000-\\u0020]/g, "").toLowerCase();
  const ours = (url) => { try { return new URL(url, location.href).origin === location.origin; }
                          catch { return false; } };
  for (const node of document.querySelectorAll("*")) {
    const tag = node.tagName.toLowerCase();
    for (const a of node.attributes) {
      const name = a.name.toLowerCase();
      if (name.startsWith("on")) problems.push(`${tag}[${name}]`);
      if (URL_ATTRS.includes(name) && /^(javascript|vbscript|data:text|data:image\\/svg)/
            .test(scheme(a.value)))
        problems.push(`${tag}[${name}=${a.value}]`);
      // Our own code sizes the composer through node.style; rendered text never has style="".
      if (name === "style" && node.closest(CONTENT)) problems.push(`${tag}[style]`);
    }
    if (["iframe", "frame", "object", "embed", "base", "applet", "portal"].includes(tag))
      problems.push(tag);
    if (tag === "meta" && node.httpEquiv) problems.push("meta[http-equiv]");
    const asset = (url) => ours(url) && new URL(url).pathname.startsWith("/static/");
    if (tag === "script" && !(node.src && asset(node.src)))
      problems.push(`script ${node.src || "inline"}`);
    if (tag === "style" || (tag === "link" && node.closest("body"))) problems.push(tag);
    if (tag === "svg" && !node.matches(".icon, .icon-sprite")) problems.push("svg");
    if (tag === "use" && !(node.getAttribute("href") || "").startsWith("#")) problems.push("use");
    if (tag === "img" && !(ours(node.src) || node.src.startsWith("blob:")))
      problems.push(`img ${node.src}`);
    if (tag === "a" && node.hasAttribute("href") && !/^(https?:|mailto:)/.test(node.href))
      problems.push(`a ${node.href}`);
  }
  return problems;
}"""


def assert_inert(page) -> None:
    """Nothing ran, and nothing that could run is on the page."""
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert page.evaluate(DOM_PROBLEMS) == []


def scripted(text: str):
    from tandem.engines import ModelCatalog
    from tandem.engines.fake import FakeEngine

    catalog = ModelCatalog(default_model="scripted")
    catalog.add(FakeEngine("scripted", script=[text] * 4))
    return catalog


def test_model_and_user_text_with_nested_markup_render_inert(web_with):
    web = web_with(scripted(DOCUMENT))
    page = web.signed_in("ada@example.com")
    send(page, DOCUMENT)
    wait_answered(page, 1)
    answer = answers(page).first.locator(".markdown")
    # Shown as text: the payloads' own characters are on the page, not their effects.
    expect(answer).to_contain_text("<script>window.__pwned='script'</script>")
    expect(answer).to_contain_text("<svg onload=")
    expect(answer).to_contain_text("<javascript:window.__pwned='autolink'>")
    expect(answer).to_contain_text("&lt;img src=x onerror")  # entities stay entities
    expect(answer.locator("table td").first).to_contain_text("<script>")
    expect(answer.locator("th.align-center")).to_have_count(1)  # alignment without style=""
    expect(answer.locator("blockquote strong")).to_have_text("<b>bold</b>")
    expect(answer.locator("pre code")).to_contain_text("<script>window.__pwned='fence'</script>")
    expect(answer.locator("a code")).to_have_count(0)  # the javascript: link is only a label
    # The only links are the two plain http ones, escaped into their href.
    for link in answer.locator("a").all():
        assert link.get_attribute("href").startswith("http"), link.get_attribute("href")
    expect(page.locator(".msg.user .bubble")).to_contain_text("<svg onload=")
    assert_inert(page)
    page.reload()  # a stored conversation renders the same way
    wait_answered(page, 1)
    assert_inert(page)


def _insert_tool_answer(web, page) -> str:
    """A conversation whose answer carries tool cards and citations with hostile text, written
    straight to the store (as a tool or a search result could have produced it)."""
    from tandem.core.messages import Message, Part
    from tandem.store import ConversationRepo

    me = web.api(page, "GET", "/api/auth/me")
    conv = web.api(page, "POST", "/api/conversations", {"title": SHORT})
    hostile = {"title": SHORT, "url": JS_URL}
    parts = (
        Part("text", "See [1] and [2]. " + PAYLOADS[2]),
        Part(
            "tool_result",
            data={
                "tool": "web",
                "display": {
                    "query": SHORT,
                    "results": [
                        {**hostile, "snippet": SHORT},
                        {"title": SHORT, "url": "JaVaScRiPt:window.__pwned='r2'", "snippet": ""},
                        {"title": SHORT, "url": "data:text/html,<script>1</script>"},
                    ],
                    "errors": [SHORT],
                },
            },
        ),
        Part(
            "tool_result",
            data={
                "tool": "code",
                "display": {
                    "code": SHORT,
                    "stdout": SHORT,
                    "stderr": SHORT,
                    "value": SHORT,
                    "tables": [{"columns": [SHORT], "rows": [[SHORT]]}],
                    "written_by": "model",
                },
                "error": SHORT,
            },
        ),
        Part("tool_result", data={"tool": "files", "display": {"query": SHORT, "files": [SHORT]}}),
        Part("tool_result", data={"tool": SHORT, "display": {"prompt": SHORT}}),
        Part("citation", data={"index": 1, "kind": "web", **hostile, "passage": SHORT}),
        Part(
            "citation",
            data={
                "index": 2,
                "kind": "file",
                "file_id": '"><img src=x onerror=alert(1)>',
                "title": SHORT,
                "locator": SHORT,
                "passage": DOCUMENT,
            },
        ),
    )
    with web.app.state.session_factory() as session:
        repos = ConversationRepo(session)
        question = repos.add_message(me["id"], conv["id"], Message.text("user", SHORT), None)
        repos.add_message(me["id"], conv["id"], Message("assistant", parts), question.id)
    return conv["id"]


def test_tool_cards_citations_and_chat_titles_render_inert(web):
    page = web.signed_in("ada@example.com")
    conv_id = _insert_tool_answer(web, page)
    page.goto(f"/c/{conv_id}")
    wait_answered(page, 1)
    answer = answers(page).first
    expect(answer.locator(".tool-card")).to_have_count(4)
    expect(answer.locator(".tool-card").first).to_contain_text(SHORT)
    expect(answer.locator(".tool-links a")).to_have_count(0)  # no link to a javascript: URL
    expect(page.locator("#sidebar, nav, aside").first).to_contain_text(SHORT)  # the chat title
    answer.locator("button.cite").first.click()
    popover = page.get_by_role("dialog", name="Source 1")
    expect(popover).to_contain_text(SHORT)
    expect(popover.locator("a")).to_have_count(0)
    assert_inert(page)
    page.keyboard.press("Escape")
    answer.locator(".source-btn").nth(1).click()
    popover = page.get_by_role("dialog", name="Source 2")
    expect(popover).to_contain_text("<script>window.__pwned='script'</script>")
    assert_inert(page)


def test_profiles_starters_and_memories_render_inert(web):
    page = web.signed_in("ada@example.com")
    profile = web.api(
        page,
        "POST",
        "/api/profiles",
        {"name": SHORT, "description": DOCUMENT[:2000], "starters": [SHORT, JS_URL]},
    )
    web.api(page, "POST", "/api/memories", {"text": SHORT})
    page.goto("/profiles")
    expect(page.locator(".page-inner")).to_contain_text(SHORT)
    assert_inert(page)
    conv = web.api(page, "POST", "/api/conversations", {"profile_id": profile["id"]})
    page.goto(f"/c/{conv['id']}")
    expect(page.locator(".starters")).to_contain_text(SHORT)
    expect(page.locator(".empty")).to_contain_text("<script>window.__pwned='script'</script>")
    assert_inert(page)
    page.goto("/settings")
    expect(page.locator(".page-inner")).to_contain_text(SHORT)  # the memory
    assert_inert(page)


def test_admin_pages_render_names_inert(web):
    from tandem.store.evals import EvalItem, EvalRepo

    page = web.signed_in("admin@example.com")  # the first account is the admin
    demo = {
        "messages": [{"role": "user", "content": SHORT}, {"role": "assistant", "content": SHORT}]
    }
    web.api(page, "POST", "/api/datasets", {"kind": "sft", "name": SHORT, "demonstrations": [demo]})
    with web.app.state.session_factory() as session:
        repo = EvalRepo(session)
        run = repo.start_run(SHORT, SHORT, SHORT, {})
        item = EvalItem(
            example_id=SHORT,
            prompt_messages=[],
            response=DOCUMENT,
            passed=False,
            scores={SHORT: 0.5},
            details={},
            generation_id=None,
        )
        repo.finish_run(run.id, [item], {SHORT: SHORT, "pass_rate": 0.5}, 1.0)
    page.goto("/admin/datasets")
    expect(page.locator("#snapshots")).to_contain_text(SHORT)
    assert_inert(page)
    page.goto("/admin/evals")
    expect(page.locator("#runs")).to_contain_text(SHORT)
    page.locator("#runs a").first.click()
    expect(page.locator("#items")).to_contain_text("<script>window.__pwned='script'</script>")
    assert_inert(page)
    page.goto("/admin/report")
    expect(page.locator("body")).to_contain_text(SHORT)
    assert_inert(page)
    echoed = "<svg onload=window.__pwned='query'>"
    page.goto("/admin/report?x=" + quote(echoed))  # a query parameter the page echoes
    expect(page.locator(".error")).to_contain_text(echoed)
    assert_inert(page)


def test_the_policy_refuses_injected_script_and_the_tests_notice(web):
    """Proves the net under every browser test: were markup ever injected, the CSP would
    refuse to run it, and the violation fails the test (tests/browser_fixtures.py)."""
    page = web.signed_in("ada@example.com")
    page.evaluate(
        """() => {
          const s = document.createElement("script");
          s.textContent = "window.__pwned = 'inline'";
          document.body.append(s);
          const d = document.createElement("div");
          d.innerHTML = '<img src="data:," onerror="window.__pwned = 2">';
          document.body.append(d);
        }"""
    )
    expect(page.locator("img[onerror]")).to_have_count(1)
    page.wait_for_timeout(200)
    assert page.evaluate("typeof window.__pwned") == "undefined"
    violations = [e for e in web.errors if "Content Security Policy" in e]
    assert violations, web.errors
    web.errors.clear()  # seen and expected here; anywhere else they fail the test
