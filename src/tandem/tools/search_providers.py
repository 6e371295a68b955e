"""Where the web tool searches: SearXNG by URL, a local document index for offline use, and
whatever else registers here.

    TANDEM_SEARCH=searxng:http://searx.intranet:8888     # its JSON API must be enabled
    TANDEM_SEARCH=local:/srv/docs                        # .html/.htm/.md/.txt files, BM25

    provider = provider_from_settings(settings)          # None when TANDEM_SEARCH is unset
    hits = await provider.search("frog diet", k=5)       # [SearchHit(title, url, snippet)]

A provider that holds its pages itself (the local index) hands them out with `page(url)`, so
they are read from disk, never fetched; for the others `page` returns None and the web tool
fetches the URL through `tandem.net.safe_fetch`.

A new provider is a class with `search` and `page`, registered by name:

    @register_search_provider("mine")
    def _mine(argument: str, settings: Settings) -> SearchProvider:
        return MyProvider(argument)
"""

from __future__ import annotations

import json
import os
import urllib.parse
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import anyio.to_thread

from tandem.core.bm25 import BM25Index, tokenize
from tandem.core.settings import Settings
from tandem.net.readable import Page, readable
from tandem.net.safe_fetch import JSON_TYPES, FetchError, FetchRefused, fetch

SNIPPET_CHARS = 300


@dataclass(frozen=True)
class SearchHit:
    title: str
    url: str
    snippet: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class SearchError(Exception):
    """The provider could not search; the message is a sentence for the user."""


class SearchProvider(Protocol):
    async def search(self, query: str, k: int) -> list[SearchHit]:
        """The `k` best hits for `query`, best first. Raises SearchError."""
        ...

    def page(self, url: str) -> Page | None:
        """The page behind one of this provider's hits when the provider holds it (a local
        document); None means: fetch the URL."""
        ...


ProviderFactory = Callable[[str, Settings], SearchProvider]
SEARCH_PROVIDERS: dict[str, ProviderFactory] = {}


def register_search_provider(kind: str) -> Callable[[ProviderFactory], ProviderFactory]:
    """Decorator: `TANDEM_SEARCH=<kind>:<argument>` builds a provider with this factory."""

    def register(factory: ProviderFactory) -> ProviderFactory:
        SEARCH_PROVIDERS[kind] = factory
        return factory

    return register


def provider_from_settings(settings: Settings) -> SearchProvider | None:
    """The configured provider; None when none is. Raises ValueError for a setting that
    names an unknown provider or leaves out its argument."""
    if not settings.search:
        return None
    kind, _, argument = settings.search.partition(":")
    kind = kind.strip().lower()
    if kind not in SEARCH_PROVIDERS:
        known = ", ".join(sorted(SEARCH_PROVIDERS))
        raise ValueError(f"TANDEM_SEARCH names an unknown search provider {kind!r}; known: {known}")
    if not argument.strip():
        raise ValueError(f"TANDEM_SEARCH needs an argument after '{kind}:'")
    return SEARCH_PROVIDERS[kind](argument.strip(), settings)


def _snippet(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= SNIPPET_CHARS else text[: SNIPPET_CHARS - 1].rstrip() + "…"


# -- SearXNG --------------------------------------------------------------------------------


class SearxngProvider:
    """A SearXNG instance's JSON API (`/search?q=…&format=json`; the instance must list `json`
    under `search.formats` in its settings.yml). Its base URL comes from the admin, and is
    fetched like any other URL: a SearXNG on a private address needs its host or network in
    TANDEM_FETCH_ALLOW_PRIVATE."""

    def __init__(self, base_url: str, allow_private: tuple[str, ...] = ()) -> None:
        self.base_url = base_url.rstrip("/")
        self.allow_private = allow_private

    async def search(self, query: str, k: int) -> list[SearchHit]:
        url = f"{self.base_url}/search?" + urllib.parse.urlencode({"q": query, "format": "json"})
        try:
            answer = await fetch(
                url,
                allow_private=self.allow_private,
                content_types=JSON_TYPES,
                max_bytes=2_000_000,
                timeout_s=10,
            )
            data = json.loads(answer.text())
        # The engine's address is the admin's business: users hear what went wrong, not where.
        except FetchRefused as exc:
            raise SearchError(
                "The search engine could not be reached: it is on a private address; an admin "
                "can allow it with TANDEM_FETCH_ALLOW_PRIVATE."
            ) from exc
        except FetchError as exc:
            why = str(exc).replace(urllib.parse.urlsplit(self.base_url).hostname or "\0", "it")
            raise SearchError(f"The search engine could not be reached: {why}.") from exc
        except ValueError as exc:
            raise SearchError("The search engine's answer was not JSON.") from exc
        results = data.get("results") if isinstance(data, dict) else None
        hits: list[SearchHit] = []
        seen: set[str] = set()
        for item in results if isinstance(results, list) else []:
            if not isinstance(item, dict):
                continue
            link = item.get("url")
            # Only web pages: a result may point at magnet:, ftp: or javascript: links.
            if not isinstance(link, str) or not link.lower().startswith(("http://", "https://")):
                continue
            if link in seen:
                continue
            seen.add(link)
            title, content = item.get("title"), item.get("content")
            title = title if isinstance(title, str) else link
            content = content if isinstance(content, str) else ""
            hits.append(SearchHit(" ".join(title.split()) or link, link, _snippet(content)))
            if len(hits) >= k:
                break
        return hits

    def page(self, url: str) -> Page | None:
        return None


@register_search_provider("searxng")
def _searxng(argument: str, settings: Settings) -> SearchProvider:
    return SearxngProvider(argument, settings.fetch_allow_private)


# -- a local index --------------------------------------------------------------------------

_LOCAL_TYPES = {
    ".html": "text/html",
    ".htm": "text/html",
    ".md": "text/markdown",
    ".markdown": "text/markdown",
    ".txt": "text/plain",
}
MAX_LOCAL_FILES = 5000
MAX_LOCAL_FILE_BYTES = 2_000_000


@dataclass(frozen=True)
class _LocalDoc:
    url: str
    page: Page


class _LocalIndex:
    def __init__(self, docs: list[_LocalDoc]) -> None:
        self.docs = docs
        self.by_url = {d.url: d for d in docs}
        self.bm25 = BM25Index([f"{d.page.title}\n{d.page.text}" for d in docs])


# Built once per directory and rebuilt when a file changes: the tool makes a provider per
# call, and parsing every document per search would be wasted work.
_INDEXES: dict[Path, tuple[tuple[Any, ...], _LocalIndex]] = {}


class LocalIndexProvider:
    """An offline index of the .html, .htm, .md and .txt files under a directory the admin
    names, searched with BM25. A document's URL is its own `<link rel="canonical">` or
    front-matter `url:` when it has one, else `local:<path relative to the directory>` (never
    a file: URL, so nothing of the server's layout leaks and nothing can be opened by it)."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory).expanduser()

    def _files(self) -> list[Path]:
        found: list[Path] = []
        for root, dirs, files in os.walk(self.directory):  # symlinked directories not followed
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(files):
                path = Path(root) / name
                if path.suffix.lower() in _LOCAL_TYPES and not name.startswith("."):
                    found.append(path)
                    if len(found) >= MAX_LOCAL_FILES:
                        return found
        return found

    def _index(self) -> _LocalIndex:
        if not self.directory.is_dir():
            raise SearchError("The local search index's directory does not exist.")
        files = self._files()
        stats = [(p, p.stat()) for p in files]
        signature = tuple((str(p), s.st_mtime_ns, s.st_size) for p, s in stats)
        key = self.directory.resolve()
        cached = _INDEXES.get(key)
        if cached is not None and cached[0] == signature:
            return cached[1]
        docs = []
        for path, stat in stats:
            if stat.st_size > MAX_LOCAL_FILE_BYTES:
                continue
            page = readable(path.read_bytes(), _LOCAL_TYPES[path.suffix.lower()])
            own = page.url if page.url and page.url.startswith(("http://", "https://")) else None
            url = own or "local:" + path.relative_to(self.directory).as_posix()
            title = page.title or path.stem.replace("-", " ").replace("_", " ")
            docs.append(_LocalDoc(url, Page(title, page.blocks, url)))
        index = _LocalIndex(docs)
        _INDEXES[key] = (signature, index)
        return index

    def _search(self, query: str, k: int) -> list[SearchHit]:
        index = self._index()
        terms = set(tokenize(query))
        hits = []
        for i, _score in index.bm25.search(query, k):
            doc = index.docs[i]
            # The snippet is the block that shares the most words with the query.
            best = max(doc.page.blocks, key=lambda b: len(terms & set(tokenize(b))), default="")
            hits.append(SearchHit(doc.page.title, doc.url, _snippet(best)))
        return hits

    async def search(self, query: str, k: int) -> list[SearchHit]:
        return await anyio.to_thread.run_sync(self._search, query, k)

    def page(self, url: str) -> Page | None:
        try:
            doc = self._index().by_url.get(url)
        except SearchError:
            return None
        return doc.page if doc else None


@register_search_provider("local")
def _local(argument: str, settings: Settings) -> SearchProvider:
    return LocalIndexProvider(argument)
