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
    from fake_engine import FakeEngine
    from tandem.engines import ModelCatalog

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


# -- the Markdown renderer itself (markdown.js: markdown-it, highlight.js, KaTeX, DOMPurify) --

# Renders `source` with the page's own renderMarkdown into a `.markdown` box on the page (so
# assert_inert and the CSP listener see it) and describes what came out.
RENDER = """async (source) => {
  const { renderMarkdown } = await import("/static/markdown.js");
  const box = document.createElement("div");
  box.className = "markdown probe";
  const raw = renderMarkdown(source);
  box.innerHTML = raw;
  document.querySelector("#thread").append(box);
  return {
    raw,
    html: box.innerHTML,
    text: box.textContent,
    links: [...box.querySelectorAll("a")].map((a) => [a.getAttribute("href"), a.textContent,
                                                      a.target, a.rel]),
    tags: [...new Set([...box.querySelectorAll("*")].map((n) => n.localName))],
  };
}"""
# Control characters, and U+FFFD: what the HTML parser makes of a NUL in an attribute.
CONTROL = "".join(map(chr, range(32))) + "\x7f\ufffd"


def render(page, source: str) -> dict:
    return page.evaluate(RENDER, source)


def test_link_urls_never_carry_control_characters(web):
    page = web.signed_in("ada@example.com")
    sources = (
        "[held](https://example.com/`x`/y)",  # the old renderer's NUL placeholders leaked here
        "[nul](https://example.com/a\x00b)",
        "[soh](https://example.com/a\x01b) [bel](https://example.com/\x07)",
        "<https://example.com/a\x1bb> https://example.com/c\x0bd",
        "[del](https://example.com/a\x7fb)",
    )
    for source in sources:
        out = render(page, source)
        assert "\x00" not in out["raw"], source
        for href, _, _, _ in out["links"]:
            assert href.startswith("https://example.com"), (source, href)
            assert not any(c in CONTROL for c in href), (source, href)
    assert_inert(page)


def test_text_after_a_code_span_inside_a_link_is_kept(web):
    page = web.signed_in("ada@example.com")
    out = render(page, "see [a `code` b](https://x.example/) now")
    assert out["links"] == [
        ["https://x.example/", "a code b", "_blank", "noopener noreferrer nofollow"]
    ]
    assert out["text"].strip() == "see a code b now"
    assert "code" in out["tags"]


def test_only_http_and_mailto_links_are_links(web):
    page = web.signed_in("ada@example.com")
    refused = (
        "[a](javascript:alert(1))",
        "[b](JaVaScRiPt:alert(1))",
        "[c](data:text/html,<script>alert(1)</script>)",
        "[d](vbscript:msgbox(1))",
        "<javascript:alert(1)>",
        "[e](/api/auth/logout)",  # relative: not a link either (as before)
    )
    for source in refused:
        out = render(page, source)
        assert out["links"] == [], source
    out = render(page, "[w](https://example.com) <mailto:a@example.com> http://example.org/x")
    assert [href for href, *_ in out["links"]] == [
        "https://example.com",
        "mailto:a@example.com",
        "http://example.org/x",
    ]
    assert {(target, rel) for _, _, target, rel in out["links"]} == {
        ("_blank", "noopener noreferrer nofollow")
    }
    assert_inert(page)


def test_raw_html_is_text_and_images_are_not_fetched(web):
    page = web.signed_in("ada@example.com")
    source = (
        "<img src=x onerror=\"window.__pwned='img'\"> <script>window.__pwned=1</script>\n\n"
        "![a chart](https://example.com/chart.png) ![x](javascript:alert(1))"
    )
    out = render(page, source)
    assert "img" not in out["tags"] and "script" not in out["tags"]
    assert "<img src=x onerror=" in out["text"] and "<script>" in out["text"]
    # An image from elsewhere is a link to it, never loaded; a javascript: one is text.
    assert [href for href, *_ in out["links"]] == ["https://example.com/chart.png"]
    assert "a chart" in out["text"]
    assert_inert(page)


def test_citation_markers_stay_text_for_the_citation_linker(web):
    page = web.signed_in("ada@example.com")
    out = render(page, "Paris is the capital [1], and Lyon is larger than Nice [2][3].")
    assert out["links"] == []
    assert "[1]" in out["text"] and "[2][3]" in out["text"]


def test_math_renders_as_mathml_without_inline_styles(web):
    page = web.signed_in("ada@example.com")
    out = render(page, "Energy $E = mc^2$ and $x^2$; it costs $5 or $10.\n\n$$\\int_0^1 x\\,dx$$")
    assert "math" in out["tags"] and "msup" in out["tags"]
    assert "it costs $5 or $10." in out["text"]  # currency is not math
    box = page.locator(".probe").last
    expect(box.locator("math")).to_have_count(3)
    expect(box.locator("math[display=block]")).to_have_count(1)
    expect(box.locator("math[display=block] mo").first).to_have_text("∫")
    assert "style=" not in out["html"]
    # Unfinished TeX (a formula still streaming) shows its source instead of failing.
    out = render(page, "so $$\\frac{1}{")
    assert "\\frac{1}{" in out["text"] and "math" not in out["tags"]
    assert_inert(page)


def test_fenced_code_is_highlighted_with_a_copy_button_even_unclosed(web):
    page = web.signed_in("ada@example.com")
    render(page, "```python\ndef add(a, b):\n    return a + 2  # sum\n```")
    block = page.locator(".probe .code-block").last
    expect(block.locator(".code-lang")).to_have_text("python")
    expect(block.locator("button.copy-code")).to_have_text("Copy")
    expect(block.locator(".hljs-keyword").first).to_have_text("def")
    expect(block.locator(".hljs-comment")).to_have_text("# sum")
    # An answer still streaming has no closing fence yet.
    out = render(page, "Here:\n\n```js\nconst a = 1;\nconsole.log(a")
    block = page.locator(".probe .code-block").last
    expect(block.locator(".hljs-keyword")).to_have_text("const")
    assert "console.log(a" in out["text"]
    # Tables align by class: the CSP forbids style="".
    out = render(page, "| a | b |\n|:-:|--:|\n| 1 | 2 |")
    expect(page.locator(".probe").last.locator("th.align-center")).to_have_count(1)
    assert "style=" not in out["html"]
    assert_inert(page)


STREAMED = (
    "Area of a circle: $\\pi r^2$, see [1].\n\n"
    "```python\ndef area(r):\n    return 3.14159 * r * r\n```\n\n"
    "$$\n\\int_0^1 x\\,dx = \\frac{1}{2}\n$$\n\n"
    "| r | area |\n|--:|--:|\n| 1 | 3.14 |\n\n"
    "- [x] done\n- [ ] todo"
)


def test_every_prefix_of_an_answer_renders(web):
    """Streaming renders each partial answer: none may throw or leave unsafe markup."""
    page = web.signed_in("ada@example.com")
    failures = page.evaluate(
        """async (text) => {
          const { renderMarkdown } = await import("/static/markdown.js");
          const failures = [];
          for (let i = 0; i <= text.length; i++) {
            try {
              const html = renderMarkdown(text.slice(0, i));
              if (/ style=| on[a-z]+=|<script|<img/i.test(html)) failures.push([i, html]);
            } catch (err) {
              failures.push([i, String(err)]);
            }
          }
          return failures;
        }""",
        STREAMED,
    )
    assert failures == []


def test_a_streamed_answer_renders_markdown_math_and_code(web_with):
    from fake_engine import FakeEngine
    from tandem.engines import ModelCatalog

    catalog = ModelCatalog(default_model="slow")
    catalog.add(FakeEngine("slow", script=[STREAMED], delay_s=0.08))
    web = web_with(catalog)
    page = web.signed_in("ada@example.com")
    send(page, "circles")
    # Mid-stream the partial answer is already rendered (code block before the fence closes
    # or right after), then the stored answer replaces it.
    expect(page.locator(".msg.assistant.streaming .markdown .code-block")).to_have_count(1)
    wait_answered(page, 1)
    answer = answers(page).first.locator(".markdown")
    expect(answer.locator("math")).to_have_count(2)
    expect(answer.locator(".code-block .hljs-keyword").first).to_have_text("def")
    expect(answer.locator("th.align-right")).to_have_count(2)
    expect(answer.locator("input[type=checkbox][disabled]")).to_have_count(2)
    expect(answer).to_contain_text("see [1].")
    assert_inert(page)
