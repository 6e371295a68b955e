"""A page's title and main text, for a model to read and a citation to quote.

    page = readable(body_bytes, "text/html", charset=None)
    page.title, page.blocks          # ("Frogs", ("Frogs", "Frogs are amphibians...", ...))

HTML goes through the standard library's tolerant parser (no lxml or BeautifulSoup needed for
this much): scripts, styles, navigation, headers and footers outside the article, asides,
forms and hidden elements are dropped; an <article> (or <main>) is preferred to the whole body
when it holds real text; headings, paragraphs, list items, cells and preformatted text become
blocks with their whitespace collapsed. Markdown and plain text split into blocks at blank
lines; Markdown front matter may give the `title:` and `url:`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html.parser import HTMLParser

# Subtrees that are never the content: code, chrome, navigation, forms, embedded media.
_SKIP = frozenset(
    {
        "script",
        "style",
        "noscript",
        "template",
        "svg",
        "math",
        "nav",
        "footer",
        "aside",
        "form",
        "iframe",
        "button",
        "select",
        "textarea",
        "canvas",
        "object",
        "dialog",
        "menu",
    }
)
_SKIP_ROLES = frozenset({"navigation", "banner", "contentinfo", "complementary", "search"})
_BLOCKS = frozenset(
    {
        "p",
        "div",
        "section",
        "article",
        "main",
        "header",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "ul",
        "ol",
        "li",
        "dl",
        "dt",
        "dd",
        "pre",
        "blockquote",
        "table",
        "thead",
        "tbody",
        "tr",
        "td",
        "th",
        "figure",
        "figcaption",
        "hr",
        "br",
        "address",
        "details",
        "summary",
        "body",
        "caption",
    }
)
_HEADINGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
_VOID = frozenset(
    {
        "area",
        "base",
        "br",
        "col",
        "embed",
        "hr",
        "img",
        "input",
        "link",
        "meta",
        "param",
        "source",
        "track",
        "wbr",
    }
)
# Enough article text to trust it over the whole body (a teaser card is not the page).
_MIN_REGION_CHARS = 140
_SPACE = re.compile(r"\s+")
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?([\w-]+)""", re.IGNORECASE)


@dataclass(frozen=True)
class Page:
    title: str
    blocks: tuple[str, ...]  # headings and paragraphs, in reading order
    url: str | None = None  # the page's own idea of its address (canonical link, front matter)

    @property
    def text(self) -> str:
        return "\n\n".join(self.blocks)


def _collapse(text: str) -> str:
    return _SPACE.sub(" ", text).strip()


@dataclass
class _Open:
    tag: str
    skip: bool
    region: str | None  # "article" or "main" when this element starts one


class _Extractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[_Open] = []
        self.buffer: list[str] = []
        self.blocks: list[tuple[str, str, bool]] = []  # (region, text, is_heading)
        self.title_parts: list[str] = []
        self.in_title = False
        self.og_title: str | None = None
        self.canonical: str | None = None

    # -- state -----------------------------------------------------------------------------

    @property
    def skipping(self) -> bool:
        return bool(self.stack) and self.stack[-1].skip

    def _region(self) -> str:
        regions = {o.region for o in self.stack if o.region}
        return "article" if "article" in regions else "main" if "main" in regions else "body"

    def _flush(self) -> None:
        text = _collapse("".join(self.buffer))
        self.buffer = []
        if text:
            heading = any(o.tag in _HEADINGS for o in self.stack)
            self.blocks.append((self._region(), text, heading))

    def _pop_to(self, tag: str) -> None:
        while self.stack:
            if self.stack.pop().tag == tag:
                return

    # -- parser callbacks --------------------------------------------------------------------

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = {k.lower(): (v or "") for k, v in attrs}
        if tag == "title":
            self.in_title = True
            return
        if tag in _VOID:
            self._void(tag, attr)
            return
        if tag in _BLOCKS and not self.skipping:
            self._flush()
        # Implied end tags that matter for structure: a block closes an open paragraph, a
        # list item closes the previous one.
        if self.stack and self.stack[-1].tag == "p" and tag in _BLOCKS:
            self._pop_to("p")
        if tag == "li" and any(o.tag == "li" for o in self.stack):
            lists = [i for i, o in enumerate(self.stack) if o.tag in ("ul", "ol")]
            items = [i for i, o in enumerate(self.stack) if o.tag == "li"]
            if not lists or items[-1] > lists[-1]:
                del self.stack[items[-1] :]
        role = attr.get("role", "").lower()
        hidden = (
            "hidden" in attr
            or attr.get("aria-hidden", "").lower() == "true"
            or "display:none" in attr.get("style", "").replace(" ", "").lower()
        )
        inside_content = any(o.region for o in self.stack)
        skip = (
            self.skipping
            or tag in _SKIP
            or role in _SKIP_ROLES
            or hidden
            # A page header is chrome; an article's header holds its headline.
            or (tag == "header" and not inside_content)
        )
        region = (
            "article" if tag == "article" else "main" if tag == "main" or role == "main" else None
        )
        self.stack.append(_Open(tag, skip, region))

    def _void(self, tag: str, attr: dict[str, str]) -> None:
        if tag == "link" and "canonical" in attr.get("rel", "").lower().split():
            self.canonical = self.canonical or attr.get("href") or None
        elif tag == "meta" and attr.get("property", "").lower() == "og:title":
            self.og_title = self.og_title or _collapse(attr.get("content", "")) or None
        elif tag in ("br", "hr") and not self.skipping:
            self.buffer.append(" " if tag == "br" else "")
            if tag == "hr":
                self._flush()

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _VOID:
            self._void(tag, {k.lower(): (v or "") for k, v in attrs})
        # A self-closed non-void element (<div/>) opens and closes nothing worth keeping.

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self.in_title = False
            return
        if not any(o.tag == tag for o in self.stack):
            return  # a stray end tag
        closes_block = tag in _BLOCKS or any(o.tag in _BLOCKS for o in self._above(tag))
        if closes_block and not self.skipping:
            self._flush()
        self._pop_to(tag)

    def _above(self, tag: str) -> list[_Open]:
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i].tag == tag:
                return self.stack[i:]
        return []

    def handle_data(self, data: str) -> None:
        if self.in_title:
            self.title_parts.append(data)
        elif not self.skipping:
            self.buffer.append(data)

    def close(self) -> None:
        super().close()
        if not self.skipping:
            self._flush()


def extract_html(html: str) -> Page:
    """Title and main text of an HTML document."""
    parser = _Extractor()
    try:
        parser.feed(html)
        parser.close()
    except AssertionError:  # html.parser's last word on truly broken markup; keep what we have
        pass
    blocks = parser.blocks
    chosen = blocks
    for region in ("article", "main"):
        inside = [b for b in blocks if b[0] == region or (region == "main" and b[0] == "article")]
        if sum(len(b[1]) for b in inside) >= _MIN_REGION_CHARS:
            chosen = inside
            break
    texts: list[str] = []
    for _, text, _heading in chosen:
        if not texts or texts[-1] != text:  # the same line twice in a row is layout, not text
            texts.append(text)
    headings = [t for _, t, h in chosen if h]
    title = _collapse("".join(parser.title_parts)) or parser.og_title or (headings or [""])[0]
    return Page(title=title, blocks=tuple(texts), url=parser.canonical)


_FRONT_MATTER = re.compile(r"\A---\s*\n(.*?)\n---\s*(?:\n|\Z)", re.DOTALL)


def extract_text(text: str, markdown: bool = False) -> Page:
    """Blocks of a plain-text or Markdown document; Markdown front matter may name its `title`
    and `url`, and its first `# heading` is the title otherwise."""
    meta: dict[str, str] = {}
    if markdown and (m := _FRONT_MATTER.match(text)):
        for line in m.group(1).splitlines():
            key, sep, value = line.partition(":")
            if sep:
                meta[key.strip().lower()] = value.strip().strip("\"'")
        text = text[m.end() :]
    blocks = []
    for chunk in re.split(r"\n\s*\n", text):
        if markdown:
            chunk = re.sub(r"(?m)^\s{0,3}(#{1,6}|[-*+]|>)\s+", "", chunk)
        chunk = _collapse(chunk)
        if chunk:
            blocks.append(chunk)
    title = meta.get("title", "")
    if not title and markdown:
        heading = re.search(r"(?m)^\s{0,3}#\s+(.+)$", text)
        title = _collapse(heading.group(1)) if heading else ""
    return Page(title=title, blocks=tuple(blocks), url=meta.get("url") or None)


def decode(body: bytes, content_type: str, charset: str | None = None) -> str:
    """Bytes to text: the declared charset, else an HTML <meta charset>, else UTF-8."""
    if charset is None and "html" in content_type:
        found = _META_CHARSET.search(body[:4096])
        charset = found.group(1).decode("ascii") if found else None
    try:
        return body.decode(charset or "utf-8", errors="replace")
    except LookupError:
        return body.decode("utf-8", errors="replace")


def readable(body: bytes, content_type: str, charset: str | None = None) -> Page:
    """The readable page for a fetched or local document of `content_type`."""
    text = decode(body, content_type, charset)
    if content_type in ("text/html", "application/xhtml+xml"):
        return extract_html(text)
    return extract_text(text, markdown=content_type in ("text/markdown", "text/x-markdown"))
