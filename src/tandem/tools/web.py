"""The web tool: search, read the best pages, and hand the model passages to cite with links.

    TANDEM_SEARCH=local:/srv/docs tandem serve      # or searxng:http://searx:8888

Switched on, the user's message is the query, and a URL in it is read directly as well; a
model that calls tools passes `query` and optionally `url`. The top `READ_PAGES` hits are read
in parallel (local documents from disk, the rest through `tandem.net.safe_fetch`, which refuses
private addresses), each page's best passage for the query is chosen with BM25 over its
paragraphs, and every page read becomes a numbered citation `[n] title (url)`. A page that
cannot be read (refused, unreachable, not text) is reported in `display["errors"]` and, when
the search gave a snippet for it, cited by that snippet; the turn always goes on.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import Any, ClassVar

import anyio.to_thread

from tandem.core.bm25 import BM25Index
from tandem.core.settings import Settings
from tandem.net.readable import Page, readable
from tandem.net.safe_fetch import FetchError, fetch
from tandem.tools.base import Citation, Tool, ToolContext, ToolResult, register_tool
from tandem.tools.search_providers import (
    SearchError,
    SearchHit,
    SearchProvider,
    provider_from_settings,
)

NOT_CONFIGURED = (
    "No search provider is configured; an admin can set TANDEM_SEARCH (see docs/tools.md)"
)
SEARCH_HITS = 5
READ_PAGES = 3
PAGE_TIMEOUT_S = 10.0
MAX_QUERY_CHARS = 400
# A passage is a few paragraphs: enough context to quote, small enough that four sources
# fit the prompt budget (tools.base.MAX_PROMPT_CHARS).
PASSAGE_CHARS = 700
_URL = re.compile(r"https?://[^\s<>\"'`]+", re.IGNORECASE)
_URL_TRAILER = ".,;:!?)]}>'\""


def urls_in(text: str) -> list[str]:
    """The http(s) URLs in a message, without the punctuation that ends a sentence."""
    return [m.group(0).rstrip(_URL_TRAILER) for m in _URL.finditer(text)]


@dataclass
class _Source:
    title: str
    url: str
    snippet: str = ""
    page: Page | None = None
    error: str | None = None
    passage: str = ""


def _chunks(page: Page) -> list[str]:
    """The page's blocks packed into passages of up to PASSAGE_CHARS, in order; a block
    longer than that is cut."""
    out: list[str] = []
    current = ""
    for block in page.blocks:
        block = block[:PASSAGE_CHARS]
        if current and len(current) + 1 + len(block) > PASSAGE_CHARS:
            out.append(current)
            current = ""
        current = f"{current}\n{block}" if current else block
    if current:
        out.append(current)
    return out


def best_passages(query: str, pages: list[Page]) -> list[str]:
    """Each page's passage that best matches `query` (BM25 over all the pages' passages, so a
    word common to every page counts for little); a page with no match gives its opening."""
    chunks = [_chunks(p) for p in pages]
    flat = [(i, c) for i, page_chunks in enumerate(chunks) for c in page_chunks]
    scores = BM25Index([c for _, c in flat]).scores(query) if flat else []
    best: dict[int, tuple[float, str]] = {}
    for (i, chunk), score in zip(flat, scores, strict=True):
        if i not in best or score > best[i][0]:
            best[i] = (score, chunk)
    return [best[i][1] if i in best else "" for i in range(len(pages))]


@register_tool
class WebTool(Tool):
    name = "web"
    title = "Web"
    description = (
        "Search the web and read the best pages. Returns numbered sources with links; cite "
        "them like [1]. Pass `url` to read one page directly."
    )
    parameters: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {
            "query": {"type": "string", "description": "what to search for"},
            "url": {"type": "string", "description": "an http(s) page to read directly"},
        },
        "required": ["query"],
    }

    def available(self, settings: Settings) -> str | None:
        if not settings.search:
            return NOT_CONFIGURED
        try:
            provider_from_settings(settings)
        except ValueError as exc:
            return str(exc)
        return None

    def arguments_for(self, ctx: ToolContext, user_text: str) -> dict[str, Any]:
        arguments: dict[str, Any] = {"query": user_text}
        found = urls_in(user_text)
        if found:
            arguments["url"] = found[0]
        return arguments

    async def run(self, ctx: ToolContext, arguments: dict[str, Any]) -> ToolResult:
        query = arguments.get("query")
        query = query.strip() if isinstance(query, str) else ""
        url = arguments.get("url")
        url = url.strip() if isinstance(url, str) and url.strip() else None
        display: dict[str, Any] = {"query": query, "results": [], "errors": []}
        if url:
            display["url"] = url
        if not query and not url:
            return ToolResult(self.name, arguments, display=display, error="Web needs a query.")
        provider = provider_from_settings(ctx.settings)
        assert provider is not None  # available() said so

        # The URL is read, not searched for: searching its text finds nothing useful.
        search_query = " ".join(_URL.sub(" ", query).split())[:MAX_QUERY_CHARS]
        hits: list[SearchHit] = []
        if search_query:
            try:
                hits = await provider.search(search_query, SEARCH_HITS)
            except SearchError as exc:
                display["errors"].append(str(exc))
        display["results"] = [h.to_dict() for h in hits]

        sources = [_Source(url, url)] if url else []
        sources += [_Source(h.title, h.url, h.snippet) for h in hits if h.url != url][:READ_PAGES]
        await asyncio.gather(*(self._read(ctx, provider, s) for s in sources))

        for source in sources:
            if source.error:
                display["errors"].append(f"{source.url}: {source.error}")
        read = [s for s in sources if s.page is not None]
        pages = [s.page for s in read if s.page is not None]
        for source, passage in zip(read, best_passages(search_query or query, pages), strict=True):
            source.passage = passage
        citations: list[Citation] = []
        notes: list[str] = []
        for source in sources:
            passage = source.passage or source.snippet
            if not passage:
                if source.error and source.url == url:
                    notes.append(f"The page {url} could not be read: {source.error}.")
                continue
            citations.append(
                Citation(
                    index=ctx.citation_start + len(citations),
                    kind="web",
                    title=source.title,
                    passage=passage,
                    url=source.url,
                )
            )
        if not citations:
            if display["errors"]:
                reasons = "; ".join(display["errors"])
                return ToolResult(self.name, arguments, display=display, error=reasons)
            return ToolResult(
                self.name,
                arguments,
                content=f"The web search found nothing for {search_query!r}.",
                display=display,
            )
        content = "\n\n".join(f"[{c.index}] {c.title} ({c.url})\n{c.passage}" for c in citations)
        if notes:
            content += "\n\n" + "\n".join(notes)
        return ToolResult(
            self.name, arguments, content=content, citations=citations, display=display
        )

    async def _read(self, ctx: ToolContext, provider: SearchProvider, source: _Source) -> None:
        """Fill in `source.page` (a local document or a fetched one) or `source.error`."""
        local = await anyio.to_thread.run_sync(provider.page, source.url)
        if local is not None:
            source.page = local
            return
        try:
            fetched = await fetch(
                source.url,
                allow_private=ctx.settings.fetch_allow_private,
                timeout_s=PAGE_TIMEOUT_S,
            )
        except FetchError as exc:
            source.error = str(exc)
            return
        # Parsing a few megabytes of HTML takes a while: not on the server's event loop.
        page = await anyio.to_thread.run_sync(
            readable, fetched.body, fetched.content_type, fetched.charset
        )
        if not page.blocks:
            source.error = "the page has no readable text"
            return
        source.page = page
        if page.title and source.title == source.url:  # a URL the user gave: name it now
            source.title = page.title
