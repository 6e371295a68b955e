"""Fetching a URL that a user (or a model, or a search result) chose, without SSRF.

This is the one way tandem fetches such a URL: web pages for the web tool, images an image
backend points at, files by URL.

    page = await fetch("https://example.org/article")           # FetchRefused / FetchFailed
    page.text()                                                 # decoded with its charset
    data = fetch_sync(url, content_types=IMAGE_TYPES)           # from sync code, no event loop

The rules, each hop of a redirect chain again:

* http and https only; at most `MAX_REDIRECTS` redirects, followed here, not by the client.
* The host is resolved here (`resolve`), and the fetch is refused when ANY of its addresses is
  not globally reachable by tandem's own copy of the IANA special-purpose address registries
  (`tandem.net.special_addresses`, never the standard library's tables, which change between
  Python patch releases): loopback, private (RFC 1918), shared (100.64/10), link-local (cloud
  metadata 169.254.169.254, fe80::/10), unique-local (fc00::/7), multicast, unspecified,
  reserved, documentation, benchmarking, IETF protocol assignments (192.0.0.0/24), IPv6
  outside global unicast, and the IPv6 forms that carry such an IPv4 address (IPv4-mapped
  ::ffff:127.0.0.1, IPv4-compatible, 6to4, Teredo, NAT64). Cloud metadata host names are
  refused by name too. Because the *resolved* address is checked, every spelling of an IPv4 address
  (2130706433, 0177.0.0.1, 0x7f.1, 127.1) ends in the same check.
* The connection goes to the address that was checked (`_PinnedBackend`): the host is never
  resolved a second time, so a DNS answer that changes between the check and the connect
  (DNS rebinding) cannot redirect it. The request still carries the original Host header, and
  TLS uses the original name for SNI and certificate checks, because httpcore takes both from
  the URL while the backend decides where the socket goes.
* Size and time are capped while streaming (gzip is inflated chunk by chunk, never past the
  cap, so a compressed bomb cannot grow), and only allowed content types are read.

`allow_private` (settings: TANDEM_FETCH_ALLOW_PRIVATE) lists CIDRs and host names an admin
opened on purpose, such as an intranet SearXNG.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
import ssl
import urllib.parse
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.to_thread
import httpcore

from tandem.net.special_addresses import IPAddress, globally_reachable

MAX_BYTES = 5_000_000
TIMEOUT_S = 15.0
MAX_REDIRECTS = 5
USER_AGENT = "tandem-fetch/1 (+https://github.com/tandem)"

# What the web tool reads; other callers pass their own (images, JSON).
PAGE_TYPES = frozenset(
    {"text/html", "application/xhtml+xml", "text/plain", "text/markdown", "text/x-markdown"}
)
IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/webp", "image/gif"})
JSON_TYPES = frozenset({"application/json"})

# Names that reach a cloud provider's instance metadata (credentials!) wherever they resolve.
METADATA_HOSTS = frozenset(
    {
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "metadata.azure.internal",
        "instance-data",
        "instance-data.ec2.internal",
    }
)

_REDIRECTS = {301, 302, 303, 307, 308}
_HOST_CHARS = re.compile(r"^[a-z0-9.\-_:]+$")


class FetchError(Exception):
    """A fetch that did not happen; the message is a sentence for the user."""


class FetchRefused(FetchError):
    """Refused by policy: a private address, a forbidden scheme, a forbidden type."""


class FetchFailed(FetchError):
    """Allowed but unsuccessful: unreachable, too slow, too big, an HTTP error."""


@dataclass(frozen=True)
class Fetched:
    url: str  # the final URL, after redirects
    status: int
    content_type: str  # the media type, lower case, without parameters
    charset: str | None
    body: bytes

    def text(self) -> str:
        """The body decoded with its declared charset (UTF-8 when none or unknown)."""
        try:
            return self.body.decode(self.charset or "utf-8", errors="replace")
        except LookupError:
            return self.body.decode("utf-8", errors="replace")


# -- which addresses are public ---------------------------------------------------------------


def is_public_address(ip: IPAddress) -> bool:
    """True only for a globally reachable address (tandem.net.special_addresses)."""
    return globally_reachable(ip)


@dataclass(frozen=True)
class Allowlist:
    """Private networks and host names an admin opened on purpose."""

    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    hosts: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, items: Iterable[str]) -> Allowlist:
        networks, hosts = [], set()
        for item in items:
            item = item.strip().lower()
            if not item:
                continue
            try:
                networks.append(ipaddress.ip_network(item.strip("[]"), strict=False))
            except ValueError:
                hosts.add(item.rstrip("."))
        return cls(tuple(networks), frozenset(hosts))

    def allows(self, ip: IPAddress) -> bool:
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip.version == net.version and ip in net for net in self.networks)


def resolve(host: str, port: int) -> list[str]:
    """The host's addresses, as the system resolver gives them. Tests replace this function to
    map fake names; everything that connects goes through it exactly once per connection."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _parse_address(text: str) -> IPAddress:
    return ipaddress.ip_address(text.split("%", 1)[0])  # drop an IPv6 zone id ("fe80::1%eth0")


async def checked_addresses(host: str, port: int, allow: Allowlist) -> list[str]:
    """Resolve `host` and return its addresses, or raise FetchRefused if any is not public
    (and not allowlisted). One bad address refuses the whole host: a resolver may hand out
    the addresses in any order, and the client would try them in turn."""
    name = host.lower().rstrip(".")
    if name in allow.hosts:
        return await _resolve(host, port)
    if name in METADATA_HOSTS or name == "localhost" or name.endswith(".localhost"):
        raise FetchRefused(f"{host} is an internal address")
    addresses = await _resolve(host, port)
    for text in addresses:
        ip = _parse_address(text)
        if not is_public_address(ip) and not allow.allows(ip):
            literal = text == host or f"[{text}]" == host
            raise FetchRefused(
                f"{host} is a private address"
                if literal
                else f"{host} resolves to a private address"
            )
    return addresses


async def _resolve(host: str, port: int) -> list[str]:
    try:
        # abandon_on_cancel: a resolver stuck on a dead DNS server must not outlive the
        # caller's time limit.
        addresses = await anyio.to_thread.run_sync(resolve, host, port, abandon_on_cancel=True)
    except (OSError, UnicodeError) as exc:
        raise FetchFailed(f"{host} could not be resolved") from exc
    if not addresses:
        raise FetchFailed(f"{host} could not be resolved")
    return addresses


class _PinnedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend with the address check in front: httpcore asks to connect
    to the URL's host, and this connects to that host's checked address instead."""

    def __init__(self, allow: Allowlist) -> None:
        self.allow = allow
        self.inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await checked_addresses(host, port, self.allow)
        last: Exception | None = None
        for address in addresses:  # every one was checked, so falling back is safe
            try:
                return await self.inner.connect_tcp(
                    address,
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        raise last

    async def connect_unix_socket(self, *args: Any, **kwargs: Any) -> httpcore.AsyncNetworkStream:
        raise FetchRefused("unix sockets cannot be fetched")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


# -- URLs -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Target:
    scheme: str
    host: str  # as resolved: lower case, IDNA-encoded, IPv6 without brackets
    port: int
    target: str  # path and query, percent-encoded

    @property
    def netloc(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"

    def __str__(self) -> str:
        return f"{self.scheme}://{self.netloc}{self.target}"


def _parse_url(url: str) -> _Target:
    """Split and normalise a URL; the stdlib parser, because httpx rejects some IPv4 spellings
    (0177.0.0.1) that a resolver accepts, and those must reach the address check."""
    if not isinstance(url, str) or len(url) > 4096 or any(ord(c) < 33 for c in url.strip()):
        raise FetchFailed("not a valid URL")
    try:
        parts = urllib.parse.urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise FetchFailed("not a valid URL") from exc
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise FetchRefused(f"only http and https URLs can be fetched, not {scheme or 'this'}:")
    host = parts.hostname or ""
    try:
        host = host.encode("idna").decode("ascii") if not host.isascii() else host
    except UnicodeError as exc:
        raise FetchFailed("not a valid URL") from exc
    if not host or not _HOST_CHARS.match(host):
        raise FetchFailed("not a valid URL")
    path = urllib.parse.quote(parts.path or "/", safe="/%:@!$&'()*+,;=-._~")
    query = urllib.parse.quote(parts.query, safe="/%:@!$&'()*+,;=-._~?")
    target = path + (f"?{query}" if query else "")
    return _Target(scheme, host, port or (443 if scheme == "https" else 80), target)


# -- fetching -------------------------------------------------------------------------------


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> str | None:
    for key, value in headers:
        if key.lower() == name:
            return value.decode("latin-1").strip()
    return None


def _media_type(value: str | None) -> tuple[str, str | None]:
    if not value:
        return "", None
    media, *params = value.split(";")
    charset = None
    for param in params:
        key, _, val = param.partition("=")
        if key.strip().lower() == "charset":
            charset = val.strip().strip('"') or None
    return media.strip().lower(), charset


def _size(n: int) -> str:
    return f"{n / 1_000_000:g} MB" if n >= 1_000_000 else f"{n / 1000:g} kB"


async def fetch(
    url: str,
    *,
    allow_private: Iterable[str] = (),
    max_bytes: int = MAX_BYTES,
    timeout_s: float = TIMEOUT_S,
    content_types: Iterable[str] = PAGE_TYPES,
    headers: Mapping[str, str] | None = None,
    ssl_context: ssl.SSLContext | None = None,
) -> Fetched:
    """GET `url` under the rules above. Raises FetchRefused (policy) or FetchFailed."""
    allowed_types = frozenset(content_types)
    backend = _PinnedBackend(Allowlist.parse(allow_private))
    current = _parse_url(url)
    extra = [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    # Per-operation limits inside the overall deadline.
    per_op = {"connect": timeout_s, "read": timeout_s, "write": timeout_s, "pool": timeout_s}
    try:
        with anyio.fail_after(timeout_s):
            # A pool per fetch: no connection outlives this call or is shared between users.
            async with httpcore.AsyncConnectionPool(
                ssl_context=ssl_context, network_backend=backend, retries=0, max_connections=2
            ) as pool:
                for _ in range(MAX_REDIRECTS + 1):
                    request_headers = [
                        (b"Host", current.netloc.encode("ascii")),
                        (b"User-Agent", USER_AGENT.encode()),
                        (b"Accept", ", ".join(sorted(allowed_types)).encode() or b"*/*"),
                        (b"Accept-Encoding", b"gzip"),
                        *extra,
                    ]
                    request_url = httpcore.URL(
                        scheme=current.scheme.encode(),
                        host=current.host.encode(),
                        port=current.port,
                        target=current.target.encode(),
                    )
                    async with pool.stream(
                        "GET",
                        request_url,
                        headers=request_headers,
                        extensions={"timeout": per_op},
                    ) as response:
                        if response.status in _REDIRECTS:
                            location = _header(response.headers, b"location")
                            if not location:
                                raise FetchFailed(f"{current.host} redirected nowhere")
                            current = _parse_url(urllib.parse.urljoin(str(current), location))
                            continue
                        return await _read(response, current, allowed_types, max_bytes)
                raise FetchFailed(f"more than {MAX_REDIRECTS} redirects")
    except TimeoutError as exc:
        raise FetchFailed(f"{current.host} took longer than {timeout_s:g} s") from exc
    except httpcore.TimeoutException as exc:
        raise FetchFailed(f"{current.host} took longer than {timeout_s:g} s") from exc
    except httpcore.ConnectError as exc:
        raise FetchFailed(f"could not connect to {current.host}") from exc
    except (httpcore.NetworkError, httpcore.ProtocolError) as exc:
        raise FetchFailed(f"the connection to {current.host} failed") from exc


async def _read(
    response: httpcore.Response, where: _Target, allowed_types: frozenset[str], max_bytes: int
) -> Fetched:
    if response.status >= 400 or response.status < 200:
        raise FetchFailed(f"{where.host} answered HTTP {response.status}")
    media, charset = _media_type(_header(response.headers, b"content-type"))
    if media not in allowed_types:
        raise FetchRefused(f"{where.host} sent {media or 'an untyped body'}, which is not read")
    declared = _header(response.headers, b"content-length")
    too_big = FetchFailed(f"{where.host} sent more than {_size(max_bytes)}")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise too_big
    encoding = (_header(response.headers, b"content-encoding") or "identity").lower()
    if encoding not in ("identity", "gzip", "x-gzip", "deflate"):
        raise FetchFailed(f"{where.host} sent a {encoding}-encoded body, which is not read")
    # zlib with header auto-detection (gzip or zlib); decompressed bytes are what is counted,
    # and never more than the cap is inflated, so a small bomb cannot grow into memory.
    inflate = zlib.decompressobj(zlib.MAX_WBITS | 32) if encoding != "identity" else None
    chunks, size = [], 0
    try:
        async for raw in response.aiter_stream():
            chunk = inflate.decompress(raw, max_bytes + 1 - size) if inflate else raw
            size += len(chunk)
            if size > max_bytes or (inflate is not None and inflate.unconsumed_tail):
                raise too_big
            chunks.append(chunk)
        if inflate is not None:
            tail = inflate.flush()
            if size + len(tail) > max_bytes:
                raise too_big
            chunks.append(tail)
    except zlib.error as exc:
        raise FetchFailed(f"{where.host} sent a corrupt {encoding} body") from exc
    return Fetched(str(where), response.status, media, charset, b"".join(chunks))


def fetch_sync(url: str, **kwargs: Any) -> Fetched:
    """`fetch` for synchronous code (a worker thread, a CLI); not from inside an event loop."""
    return asyncio.run(fetch(url, **kwargs))
