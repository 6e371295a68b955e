"""SSRF rules of tandem.net.safe_fetch: every spelling of a private address is refused before
any connection, redirects are re-checked each hop, the connection goes to the checked address
(no second resolution), and size, time and type are capped.

The test site listens on 127.0.0.1, which the rules refuse; tests reach it as `public.test`,
a name the admin allowlist opens (as an admin would for an intranet SearXNG), and check that
the same server under its real address stays refused."""

from __future__ import annotations

import functools
import gzip
import ipaddress
import shutil
import ssl
import subprocess
from pathlib import Path

import pytest

from fake_site import FakeSite, endless_text, html, redirect, slow
from tandem.net import safe_fetch
from tandem.net.safe_fetch import (
    Allowlist,
    FetchFailed,
    FetchRefused,
    _PinnedBackend,
    fetch,
    fetch_sync,
    is_public_address,
)

pytestmark = pytest.mark.anyio

GZIP_TEXT = {"Content-Type": "text/html", "Content-Encoding": "gzip"}


@functools.cache
def _bomb() -> bytes:
    return gzip.compress(b"\0" * 50_000_000, compresslevel=9)


@pytest.fixture
def site():
    routes = {
        "/page": html("<title>Hello</title><p>hello world</p>"),
        "/host": lambda h: _echo_host(h),
        "/binary": (200, {"Content-Type": "application/octet-stream"}, b"\x00\x01"),
        "/big": (200, {"Content-Type": "text/plain"}, b"a" * (safe_fetch.MAX_BYTES + 1)),
        "/endless": endless_text(),
        "/slow": slow(2.0),
        "/loop": redirect("/loop"),
        "/untyped": (200, {}, b"what am I"),
        "/gzip": (200, GZIP_TEXT, gzip.compress(b"<p>squeezed</p>")),
        # 50 MB of zeros in about 50 kB: only a cap on the inflated size stops it.
        "/bomb": (200, GZIP_TEXT, _bomb()),
        "/brotli": (200, {**GZIP_TEXT, "Content-Encoding": "br"}, b"??"),
    }
    with FakeSite(routes) as s:
        yield s


def _echo_host(h) -> None:
    body = h.headers.get("Host", "").encode()
    h.send_response(200)
    h.send_header("Content-Type", "text/plain")
    h.send_header("Content-Length", str(len(body)))
    h.end_headers()
    h.wfile.write(body)


@pytest.fixture
def names(monkeypatch):
    """A fake DNS: `names["x.test"] = ["1.2.3.4"]`; real resolution for anything else.
    Records every lookup."""
    table: dict[str, list[str]] = {"public.test": ["127.0.0.1"]}
    real = safe_fetch.resolve
    lookups: list[str] = []

    def resolve(host: str, port: int) -> list[str]:
        lookups.append(host)
        entry = table.get(host)
        if callable(entry):
            return entry()
        return list(entry) if entry is not None else real(host, port)

    monkeypatch.setattr(safe_fetch, "resolve", resolve)
    table["_lookups"] = lookups  # type: ignore[assignment]
    return table


# Every spelling of loopback; tests/security/test_ssrf_surface.py drives each fetch with these.
LOOPBACK_HOSTS = [
    "127.0.0.1",
    "localhost",
    "LOCALHOST.",
    "app.localhost",
    "2130706433",  # decimal
    "0177.0.0.1",  # octal
    "0x7f.1",  # hex, short
    "0x7f000001",
    "017700000001",
    "127.1",  # short
    "127.0.0.2",
    "0.0.0.0",
    "0",
    "[::1]",
    "[::ffff:127.0.0.1]",  # IPv4-mapped IPv6
    "[::ffff:7f00:1]",
    "[0:0:0:0:0:ffff:127.0.0.1]",
]


# Private, link-local, metadata and other non-public addresses, IPv6 forms included.
PRIVATE_URLS = [
    "http://10.0.0.1/",
    "http://10.255.255.254:8080/admin",
    "http://172.16.0.1/",
    "http://172.31.255.255/",
    "http://192.168.1.1/",
    "http://169.254.169.254/latest/meta-data/iam/",  # cloud metadata
    "http://100.64.0.1/",  # carrier-grade NAT
    "http://100.100.100.200/",  # Alibaba metadata, inside 100.64/10
    "http://224.0.0.1/",  # multicast
    "http://240.0.0.1/",  # reserved
    "http://255.255.255.255/",
    "http://[fd00::1]/",  # unique local
    "http://[fd00:ec2::254]/",  # AWS metadata over IPv6
    "http://[fe80::1]/",  # link-local
    "http://[ff02::1]/",  # multicast
    "http://[::]/",
    "http://[::ffff:10.0.0.1]/",
    "http://[::ffff:169.254.169.254]/",
    "http://[::10.0.0.1]/",  # IPv4-compatible
    "http://[2002:7f00:1::1]/",  # 6to4 of 127.0.0.1
    "http://[2002:a00:1::1]/",  # 6to4 of 10.0.0.1
    "http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/",  # Teredo, client 127.0.0.1
    "http://[64:ff9b::a00:1]/",  # NAT64 of 10.0.0.1
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://metadata/",
    "http://public.test@10.0.0.1/",  # userinfo does not make a host
]


BAD_SCHEME_URLS = [
    "file:///etc/passwd",
    "gopher://127.0.0.1:70/_GET",
    "ftp://example.org/file",
    "dict://127.0.0.1:11211/",
    "javascript:alert(1)",
    "data:text/html,<p>x</p>",
    "//example.org/",
]


PUBLIC = ("public.test",)  # the admin allowlist that opens the test site under that name


async def test_an_allowlisted_name_is_fetched_with_its_own_host_header(site, names):
    page = await fetch(f"http://public.test:{site.port}/host", allow_private=PUBLIC)
    assert page.status == 200 and page.content_type == "text/plain"
    # The socket went to 127.0.0.1, the request still names the host the URL named.
    assert page.text() == f"public.test:{site.port}"
    assert page.url == f"http://public.test:{site.port}/host"


@pytest.mark.parametrize("host", LOOPBACK_HOSTS)
async def test_loopback_in_every_spelling_is_refused_before_connecting(site, host):
    with pytest.raises(FetchRefused, match=r"(private|internal) address"):
        await fetch(f"http://{host}:{site.port}/page")
    assert site.requests == []


@pytest.mark.parametrize("url", PRIVATE_URLS)
async def test_private_link_local_and_metadata_addresses_are_refused(url):
    with pytest.raises(FetchRefused):
        await fetch(url, timeout_s=2)


@pytest.mark.parametrize(
    "address", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "2a00:1450:4001::200e"]
)
def test_public_addresses_are_public(address):
    assert is_public_address(ipaddress.ip_address(address))


@pytest.mark.parametrize("url", BAD_SCHEME_URLS)
async def test_schemes_other_than_http_and_https_are_refused(url):
    with pytest.raises(FetchRefused, match="only http and https"):
        await fetch(url)


async def test_a_name_resolving_to_a_private_address_is_refused(site, names):
    names["intranet.test"] = ["10.1.2.3"]
    names["sneaky.test"] = ["127.0.0.1"]
    # One private address among public ones is enough: the client might try it.
    names["mixed.test"] = ["93.184.216.34", "192.168.0.10"]
    for host in ("intranet.test", "sneaky.test", "mixed.test"):
        with pytest.raises(FetchRefused, match=f"{host} resolves to a private address"):
            await fetch(f"http://{host}:{site.port}/page")
    assert site.requests == []


async def test_a_redirect_to_loopback_is_refused_at_that_hop(site, names):
    site.routes["/to-ip"] = redirect(f"http://127.0.0.1:{site.port}/page")
    site.routes["/to-localhost"] = redirect(f"http://localhost:{site.port}/page")
    site.routes["/to-decimal"] = redirect(f"http://2130706433:{site.port}/page")
    site.routes["/to-metadata"] = redirect("http://169.254.169.254/latest/meta-data/")
    site.routes["/to-file"] = redirect("file:///etc/passwd")
    for hop in ("/to-ip", "/to-localhost", "/to-decimal", "/to-metadata", "/to-file"):
        with pytest.raises(FetchRefused):
            await fetch(f"http://public.test:{site.port}{hop}", allow_private=PUBLIC)
    # The public-looking first hops were served; the loopback targets never were.
    assert "/page" not in site.paths
    assert site.paths == ["/to-ip", "/to-localhost", "/to-decimal", "/to-metadata", "/to-file"]


async def test_an_allowed_redirect_is_followed_and_the_final_url_reported(site, names):
    site.routes["/moved"] = redirect("/page", status=301)
    page = await fetch(f"http://public.test:{site.port}/moved", allow_private=PUBLIC)
    assert b"hello world" in page.body
    assert page.url == f"http://public.test:{site.port}/page"


async def test_redirects_stop_after_five(site, names):
    with pytest.raises(FetchFailed, match="more than 5 redirects"):
        await fetch(f"http://public.test:{site.port}/loop", allow_private=PUBLIC)
    assert len(site.paths) == 6


async def test_dns_rebinding_cannot_move_the_connection(site, names):
    """The resolver answers an allowed address first and a private one afterwards, as a
    rebinding attacker's DNS would. The fetch resolves once and connects to what it checked;
    a client that resolved again to connect would land on 10.0.0.1 (or fail)."""
    answers = [["127.0.0.1"], ["10.0.0.1"], ["10.0.0.1"]]
    names["rebind.test"] = lambda: answers.pop(0)
    allow = ("127.0.0.1/32",)  # the "public" address of this test
    page = await fetch(f"http://rebind.test:{site.port}/host", allow_private=allow)
    assert page.text() == f"rebind.test:{site.port}"
    assert names["_lookups"].count("rebind.test") == 1

    # A new connection is a new check: now the private answer is seen, and refused.
    with pytest.raises(FetchRefused):
        await fetch(f"http://rebind.test:{site.port}/host", allow_private=allow)


async def test_the_pinned_backend_connects_to_the_checked_address(site, names):
    names["pinned.test"] = ["127.0.0.1"]
    backend = _PinnedBackend(Allowlist.parse(["127.0.0.0/8"]))
    stream = await backend.connect_tcp("pinned.test", site.port)
    try:
        assert stream.get_extra_info("server_addr") == ("127.0.0.1", site.port)
    finally:
        await stream.aclose()
    assert names["_lookups"] == ["pinned.test"]


async def test_size_is_capped_by_header_and_while_streaming(site, names):
    with pytest.raises(FetchFailed, match="more than 5 MB"):
        await fetch(f"http://public.test:{site.port}/big", allow_private=PUBLIC)
    # No Content-Length: counted as it streams in, and cut off at the cap.
    with pytest.raises(FetchFailed, match="more than 100 kB"):
        await fetch(
            f"http://public.test:{site.port}/endless", allow_private=PUBLIC, max_bytes=100_000
        )


async def test_gzip_is_inflated_and_a_gzip_bomb_stops_at_the_cap(site, names):
    page = await fetch(f"http://public.test:{site.port}/gzip", allow_private=PUBLIC)
    assert page.body == b"<p>squeezed</p>"
    with pytest.raises(FetchFailed, match="more than 5 MB"):
        await fetch(f"http://public.test:{site.port}/bomb", allow_private=PUBLIC)
    with pytest.raises(FetchFailed, match="br-encoded body"):
        await fetch(f"http://public.test:{site.port}/brotli", allow_private=PUBLIC)


async def test_time_is_capped(site, names):
    with pytest.raises(FetchFailed, match=r"took longer than 0\.3 s"):
        await fetch(f"http://public.test:{site.port}/slow", allow_private=PUBLIC, timeout_s=0.3)


async def test_only_allowed_content_types_are_read(site, names):
    for path in ("/binary", "/untyped"):
        with pytest.raises(FetchRefused, match="not read"):
            await fetch(f"http://public.test:{site.port}{path}", allow_private=PUBLIC)
    page = await fetch(
        f"http://public.test:{site.port}/binary",
        allow_private=PUBLIC,
        content_types={"application/octet-stream"},
    )
    assert page.body == b"\x00\x01"


async def test_http_errors_and_unreachable_hosts_fail_cleanly(site, names):
    with pytest.raises(FetchFailed, match="answered HTTP 404"):
        await fetch(f"http://public.test:{site.port}/missing", allow_private=PUBLIC)
    names["gone.test"] = ["127.0.0.1"]
    closed = FakeSite({})
    closed.server.server_close()  # a port nothing listens on
    with pytest.raises(FetchFailed, match="could not connect"):
        await fetch(f"http://gone.test:{closed.port}/", allow_private=("gone.test",))
    names["nxdomain.test"] = []
    with pytest.raises(FetchFailed, match="could not be resolved"):
        await fetch("http://nxdomain.test/")


def test_allowlisted_networks_open_only_those_addresses(names):
    allow = Allowlist.parse(["10.0.0.0/8", " searx.intranet ", ""])
    assert allow.allows(ipaddress.ip_address("10.2.3.4"))
    assert allow.allows(ipaddress.ip_address("::ffff:10.2.3.4"))
    assert not allow.allows(ipaddress.ip_address("192.168.0.1"))
    assert allow.hosts == {"searx.intranet"}


def test_fetch_sync_for_code_without_an_event_loop(site, names):
    page = fetch_sync(f"http://public.test:{site.port}/page", allow_private=PUBLIC)
    assert page.content_type == "text/html" and page.charset == "utf-8"


def _self_signed(tmp: Path, name: str) -> tuple[Path, Path]:
    key, cert = tmp / "key.pem", tmp / "cert.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1",
            "-subj", f"/CN={name}", "-addext", f"subjectAltName=DNS:{name}",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return key, cert


async def test_https_keeps_the_name_for_sni_and_certificate_checks(tmp_path, names):
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a certificate")
    key, cert = _self_signed(tmp_path, "public.test")
    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_tls.load_cert_chain(cert, key)
    sni: list[str | None] = []
    server_tls.sni_callback = lambda sock, name, ctx: sni.append(name)
    client_tls = ssl.create_default_context(cafile=str(cert))
    with FakeSite({"/page": html("<p>secure</p>")}, tls=server_tls) as site:
        page = await fetch(
            f"https://public.test:{site.port}/page", allow_private=PUBLIC, ssl_context=client_tls
        )
        assert b"secure" in page.body
        # Connected to 127.0.0.1, yet the TLS name was the URL's: SNI and the certificate
        # check (which would fail for "127.0.0.1") both used public.test.
        assert sni == ["public.test"]
        names["other.test"] = ["127.0.0.1"]
        with pytest.raises(FetchFailed, match="could not connect"):  # wrong name: cert fails
            await fetch(
                f"https://other.test:{site.port}/page",
                allow_private=("other.test",),
                ssl_context=client_tls,
            )
