"""Files and paths (issue 7, class 4), and uploaded active content (class 2): hostile upload
names never become paths, types come from the bytes, HTML/SVG is never served inline from our
origin, and size limits hold at the middleware and at the route. Hermetic.

File names the code sandbox returns are covered by tests/test_sandbox.py
(test_a_chart_name_never_leads_outside_the_outputs,
test_outputs_are_read_inside_their_directory_only).
"""

from __future__ import annotations

import io
import socket
import zipfile
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from conftest import new_user

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(64)
HOSTILE_NAMES = (
    "../../../../etc/passwd",
    "/etc/cron.d/evil",
    "..\\..\\windows\\system32\\evil.dll",
    "C:\\Users\\x\\evil.txt",
    "a\x00.txt",
    "x" * 4000 + ".txt",
    "evil\u202etxt.exe",  # right-to-left override: shows as "evilexe.txt"
    "..",
    "./.hidden",
    'quote"; filename="other.html',
    "new\r\nline: header",
)


def _stored_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def _assert_safe_name(name: str) -> None:
    assert name and len(name) <= 200
    assert "/" not in name and "\\" not in name and "\x00" not in name
    assert not name.startswith(".")
    assert name.isascii() and "\u202e" not in name
    assert '"' not in name and "\r" not in name and "\n" not in name


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_hostile_image_names_are_stored_under_ids_in_the_users_dir(client, tandem_home, name):
    alice = new_user(client, "alice@x.io")
    me = client.get("/api/auth/me", headers=alice).json()["id"]
    r = client.post("/api/uploads", files={"file": (name, PNG, "image/png")}, headers=alice)
    assert r.status_code == 201, r.text
    row = r.json()
    _assert_safe_name(row["filename"])
    # On disk: exactly one file, named by its id, inside this user's directory.
    assert _stored_files(tandem_home / "uploads") == [tandem_home / "uploads" / me / row["id"]]
    got = client.get(f"/api/uploads/{row['id']}", headers=alice)
    assert got.status_code == 200 and got.content == PNG
    assert got.headers["content-disposition"] == f'inline; filename="{row["filename"]}"'


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_hostile_document_names_are_stored_under_ids_in_the_users_dir(client, tandem_home, name):
    alice = new_user(client, "alice@x.io")
    me = client.get("/api/auth/me", headers=alice).json()["id"]
    r = client.post(
        "/api/files", files={"file": (name, b"plain words", "text/plain")}, headers=alice
    )
    assert r.status_code == 201, r.text
    row = r.json()
    _assert_safe_name(row["filename"])
    stored = [p for p in _stored_files(tandem_home / "files") if not p.name.startswith(".")]
    assert len(stored) == 1
    assert stored[0].parent == tandem_home / "files" / me
    assert stored[0].resolve().is_relative_to((tandem_home / "files" / me).resolve())
    assert row["id"] in stored[0].name
    got = client.get(f"/api/files/{row['id']}/content", headers=alice)
    assert got.headers["content-disposition"] == f'attachment; filename="{row["filename"]}"'


def test_a_name_too_long_for_the_multipart_header_is_a_400_that_stores_nothing(client, tandem_home):
    alice = new_user(client, "alice@x.io")
    for route in ("/api/uploads", "/api/files"):
        r = client.post(route, files={"file": ("x" * 20_000, PNG, "image/png")}, headers=alice)
        assert r.status_code == 400, r.text
    assert _stored_files(tandem_home / "uploads") == []
    assert [p for p in _stored_files(tandem_home / "files") if p.is_file()] == []


SVG = (
    b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(document.domain)">'
    b"<script>alert(1)</script></svg>"
)
HTML = b"<!doctype html><html><script>fetch('/api/keys',{method:'POST'})</script></html>"
ACTIVE = ("text/html", "image/svg+xml", "application/xhtml+xml", "text/xml")


@pytest.mark.parametrize(
    "name,data",
    [
        ("x.svg", SVG),
        ("cat.png", SVG),  # an SVG in a PNG's name
        ("cat.png", b"<?xml version='1.0'?>" + SVG),
        ("page.html", HTML),
        ("cat.jpg", HTML),
        ("cat.gif", b"\n\n" + HTML),
    ],
)
def test_svg_and_html_are_never_accepted_as_images(client, tandem_home, name, data):
    alice = new_user(client, "alice@x.io")
    for content_type in ("image/png", "image/svg+xml", "text/html"):
        r = client.post("/api/uploads", files={"file": (name, data, content_type)}, headers=alice)
        assert r.status_code in (415, 422), r.text
    assert _stored_files(tandem_home / "uploads") == []


def test_a_gif_html_polyglot_is_served_as_a_gif_that_cannot_render_as_a_page(client):
    alice = new_user(client, "alice@x.io")
    polyglot = b"GIF89a/*" + bytes(10) + b"*/=1;<html><script>alert(1)</script></html>"
    row = client.post(
        "/api/uploads", files={"file": ("x.html", polyglot, "text/html")}, headers=alice
    ).json()
    assert row["mime"] == "image/gif" and row["filename"] == "x.html"
    r = client.get(f"/api/uploads/{row['id']}", headers=alice)
    assert r.headers["content-type"] == "image/gif"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["content-security-policy"] == "default-src 'none'"


@pytest.mark.parametrize(
    "name,data",
    [
        ("page.html", HTML),
        ("notes.txt", HTML),  # HTML in a text file's name
        ("report.pdf", HTML),
        ("drawing.svg", SVG),
        ("drawing.txt", SVG),
        ("x.md", b"<div>markdown or html?</div><script>alert(1)</script>"),
    ],
)
def test_documents_are_downloads_never_pages(client, name, data):
    alice = new_user(client, "alice@x.io")
    r = client.post("/api/files", files={"file": (name, data, "text/html")}, headers=alice)
    assert r.status_code == 201, r.text
    got = client.get(f"/api/files/{r.json()['id']}/content", headers=alice)
    assert got.status_code == 200 and got.content == data
    assert got.headers["content-disposition"].startswith("attachment;")
    assert got.headers["content-type"].split(";")[0] not in ACTIVE
    assert got.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in got.headers["content-security-policy"]


def _zip(members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as z:
        for member, data in members.items():
            z.writestr(member, data)
    return buf.getvalue()


@pytest.mark.parametrize(
    "name,data",
    [
        ("report.pdf", b"MZ\x90\x00" + bytes(400)),  # a Windows executable
        ("report.docx", b"MZ\x90\x00" + bytes(400)),
        ("report.pdf", b"\x7fELF\x02\x01\x01" + bytes(400)),
        ("report.docx", _zip({"evil.exe": b"MZ" + bytes(100)})),  # any zip is not a DOCX
        ("report.pdf", _zip({"readme.txt": b"hi"})),
        ("photo.txt", PNG),  # an image is not a document
    ],
)
def test_documents_are_typed_by_their_bytes(client, tandem_home, name, data):
    alice = new_user(client, "alice@x.io")
    r = client.post("/api/files", files={"file": (name, data, "application/pdf")}, headers=alice)
    assert r.status_code == 415, r.text
    assert [p for p in _stored_files(tandem_home / "files") if p.is_file()] == []


def test_a_zip_bomb_docx_is_refused_before_it_is_unpacked(client, tandem_home):
    from tandem.retrieval.parsers import MAX_DOCX_UNPACKED_BYTES

    # 300 MiB of zeros compress to ~300 KiB: small upload, huge in memory once parsed.
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.writestr("[Content_Types].xml", b"<Types/>")
        with z.open("word/document.xml", "w", force_zip64=True) as member:
            zeros = bytes(1 << 20)
            for _ in range((MAX_DOCX_UNPACKED_BYTES >> 20) + 100):
                member.write(zeros)
    alice = new_user(client, "alice@x.io")
    r = client.post(
        "/api/files",
        files={"file": ("bomb.docx", bomb.getvalue(), "application/zip")},
        headers=alice,
    )
    assert r.status_code == 415 and "unpacks to more than" in r.json()["error"]["message"]
    assert _stored_files(tandem_home / "files") == []


# -- size limits: the middleware refuses before reading, the route counts what arrives --------


def _raw(base_url: str, head: str, body_parts: list[bytes] = (), read_first: bool = False) -> int:
    """Send a hand-written request; returns the response status."""
    host, port = urlsplit(base_url).hostname, urlsplit(base_url).port
    with socket.create_connection((host, port), timeout=10) as s:
        s.sendall(head.encode())
        if read_first:  # the answer must come before any body is sent
            return int(s.recv(4096).split(b" ", 2)[1])
        try:
            for part in body_parts:
                s.sendall(part)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed early: what we want
        return int(s.recv(4096).split(b" ", 2)[1])


@pytest.fixture
def server(app, live_server, client):
    return live_server(app)


def _key(client) -> str:
    return new_user(client, "alice@x.io")["Authorization"]


@pytest.mark.parametrize("path", ["/api/uploads", "/api/files", "/api/conversations"])
def test_an_oversized_content_length_is_413_before_any_body_is_read(server, client, path):
    auth = _key(client)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\n"
        "Content-Type: multipart/form-data; boundary=b\r\n"
        f"Content-Length: {200 * 1024 * 1024}\r\n\r\n"
    )
    assert _raw(server, head, read_first=True) == 413


def test_a_chunked_body_is_cut_off_at_the_limit(server, client, tandem_home):
    auth = _key(client)
    head = (
        f"POST /api/conversations HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\n"
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    piece = b"x" * 65536
    chunk = f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    assert _raw(server, head, [chunk] * 8 + [b"0\r\n\r\n"]) == 413  # 512 KiB > 200 KB limit


def test_a_lying_content_length_cannot_smuggle_a_bigger_body(server, client, tandem_home):
    auth = _key(client)
    body = b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n\r\n'
    body += PNG + b"\r\n--b--\r\n"
    # Declares 40 bytes, sends all of it: the server reads 40, the rest is not its body.
    head = (
        f"POST /api/uploads HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\n"
        "Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 40\r\n\r\n"
    )
    status = _raw(server, head, [body])
    assert 400 <= status < 500
    assert _stored_files(tandem_home / "uploads") == []


def test_the_image_route_counts_bytes_whatever_the_headers_say(client, monkeypatch, tandem_home):
    # Chunked uploads have no Content-Length: the route stops at its own limit.
    monkeypatch.setattr("tandem.api.routes.uploads.MAX_UPLOAD_BYTES", 1000)
    alice = new_user(client, "alice@x.io")

    def chunked():
        yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n\r\n'
        yield PNG + bytes(2000)
        yield b"\r\n--b--\r\n"

    r = client.post(
        "/api/uploads",
        content=chunked(),
        headers={**alice, "Content-Type": "multipart/form-data; boundary=b"},
    )
    assert r.status_code == 413
    assert _stored_files(tandem_home / "uploads") == []
