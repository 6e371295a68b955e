"""Image uploads and attachments: magic-byte checks (a .png that is text, SVG or HTML is
refused), the 10 MB limit, owner-only serving with safe headers, image parts on messages, and
the notice when the answering model cannot see images."""

import base64
import hashlib

from conftest import new_user, sse_events
from fake_engine import FakeEngine
from tandem.core.images import MAX_UPLOAD_BYTES

# A real 1x1 PNG.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 32
GIF = b"GIF89a\x01\x00\x01\x00" + b"\x00" * 16
WEBP = b"RIFF\x24\x00\x00\x00WEBPVP8 " + b"\x00" * 24
NOTICE = "This model can't see images; it answered from your text only."


def _upload(client, headers, data, name="cat.png", mime="image/png"):
    return client.post("/api/uploads", files={"file": (name, data, mime)}, headers=headers)


def test_upload_and_serve_to_the_owner_only(client, tandem_home):
    alice = new_user(client, "alice@x.io")
    bob = new_user(client, "bob@x.io")
    r = _upload(client, alice, PNG)
    assert r.status_code == 201, r.text
    up = r.json()
    assert up["mime"] == "image/png" and up["size"] == len(PNG)
    assert up["sha256"] == hashlib.sha256(PNG).hexdigest() and up["filename"] == "cat.png"
    me = client.get("/api/auth/me", headers=alice).json()
    assert (tandem_home / "uploads" / me["id"] / up["id"]).read_bytes() == PNG

    r = client.get(f"/api/uploads/{up['id']}", headers=alice)
    assert r.status_code == 200 and r.content == PNG
    assert r.headers["content-type"] == "image/png"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["content-disposition"].startswith("inline")
    assert client.get(f"/api/uploads/{up['id']}", headers=bob).status_code == 404
    assert client.get(f"/api/uploads/{'0' * 32}", headers=alice).status_code == 404
    assert client.get(f"/api/uploads/{up['id']}").status_code == 401


def test_type_comes_from_the_bytes_not_the_name_or_content_type(client):
    alice = new_user(client, "alice@x.io")
    for data, expected in [(JPEG, "image/jpeg"), (GIF, "image/gif"), (WEBP, "image/webp")]:
        r = _upload(client, alice, data, name="notes.txt", mime="text/plain")
        assert r.status_code == 201 and r.json()["mime"] == expected, r.text
        served = client.get(f"/api/uploads/{r.json()['id']}", headers=alice)
        assert served.headers["content-type"] == expected

    svg = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
    html = b"<!doctype html><script>alert(document.cookie)</script>"
    for data in (b"just some text", svg, html, b"", b"\x89PNG"):
        r = _upload(client, alice, data, name="cat.png", mime="image/png")
        assert r.status_code == 422, (data, r.text)
        assert "PNG, JPEG, WebP and GIF" in r.json()["error"]["message"]


def test_filenames_are_sanitised(client):
    alice = new_user(client, "alice@x.io")
    for name, expected in [
        ("../../etc/passwd.png", "passwd.png"),
        ("a;b<script>.png", "a_b_script_.png"),
        ("C:\\Users\\me\\photo.jpg", "photo.jpg"),
        ("..", "image"),
    ]:
        assert _upload(client, alice, PNG, name=name).json()["filename"] == expected


def test_uploads_over_10_mb_get_413_and_store_nothing(client, tandem_home):
    alice = new_user(client, "alice@x.io")
    big = b"\x89PNG\r\n\x1a\n" + b"\x00" * (MAX_UPLOAD_BYTES - 7)
    r = _upload(client, alice, big)
    assert r.status_code == 413, r.text
    assert r.json()["error"]["type"] == "invalid_request_error"
    # A declared length far over the limit is refused before the body is read.
    r = client.post(
        "/api/uploads",
        content=b"x",
        headers={**alice, "content-length": str(50 * MAX_UPLOAD_BYTES)},
    )
    assert r.status_code == 413
    stored = (
        list((tandem_home / "uploads").rglob("*")) if (tandem_home / "uploads").exists() else []
    )
    assert [p for p in stored if p.is_file()] == []
    # Just under the limit is fine.
    r = _upload(client, alice, big[:-1])
    assert r.status_code == 201 and r.json()["size"] == MAX_UPLOAD_BYTES


def test_upload_needs_a_file_field(client):
    alice = new_user(client, "alice@x.io")
    r = client.post("/api/uploads", files={"image": ("a.png", PNG, "image/png")}, headers=alice)
    assert r.status_code == 422
    r = client.post("/api/uploads", json={"file": "x"}, headers=alice)
    assert r.status_code == 422


def test_attachments_become_image_parts_and_a_text_model_gets_a_notice(client, fake_catalog):
    alice = new_user(client, "alice@x.io")
    up = _upload(client, alice, PNG).json()
    conv = client.post("/api/conversations", json={}, headers=alice).json()
    url = f"/api/conversations/{conv['id']}/messages"
    r = client.post(
        url, json={"content": "What is this?", "attachments": [up["id"]]}, headers=alice
    )
    assert r.status_code == 200, r.text
    turn = r.json()
    assert turn["user_message"]["parts"] == [
        {"type": "text", "text": "What is this?"},
        {"type": "image", "data": {"upload_id": up["id"], "mime": "image/png"}},
    ]
    assert turn["notice"] == NOTICE
    seen, _ = fake_catalog.get("fake-model").calls[-1]
    assert all(p.type != "image" for m in seen for p in m.parts)
    assert seen[-1].content == "What is this?"

    # Streaming: the notice is on the first and on the final event.
    r = client.post(
        url, json={"content": "And now?", "attachments": [up["id"]], "stream": True}, headers=alice
    )
    events = sse_events(r.text)
    assert events[0]["type"] == "user_message" and events[0]["notice"] == NOTICE
    assert events[-1]["type"] == "done" and events[-1]["notice"] == NOTICE

    # A message without images in a chat without images carries no notice.
    other = client.post("/api/conversations", json={}, headers=alice).json()
    r = client.post(
        f"/api/conversations/{other['id']}/messages", json={"content": "hi"}, headers=alice
    )
    assert r.json()["notice"] is None


def test_a_model_that_sees_images_gets_them(client, fake_catalog):
    fake_catalog.add(FakeEngine("vision-model", accepts_images=True))
    alice = new_user(client, "alice@x.io")
    up = _upload(client, alice, PNG).json()
    conv = client.post("/api/conversations", json={"model": "vision-model"}, headers=alice).json()
    r = client.post(
        f"/api/conversations/{conv['id']}/messages",
        json={"content": "Describe", "attachments": [up["id"]]},
        headers=alice,
    )
    assert r.json()["notice"] is None
    seen, _ = fake_catalog.get("vision-model").calls[-1]
    images = [p for p in seen[-1].parts if p.type == "image"]
    assert [(p.data["upload_id"], p.data["mime"]) for p in images] == [(up["id"], "image/png")]
    # The bytes travel with the part, for servers that cannot read tandem's files.
    assert images[0].data["url"] == "data:image/png;base64," + base64.b64encode(PNG).decode()


def test_attachment_limits_and_ownership(client):
    alice = new_user(client, "alice@x.io")
    bob = new_user(client, "bob@x.io")
    mine = [_upload(client, alice, PNG).json()["id"] for _ in range(5)]
    bobs = _upload(client, bob, PNG).json()["id"]
    conv = client.post("/api/conversations", json={}, headers=alice).json()
    url = f"/api/conversations/{conv['id']}/messages"
    r = client.post(url, json={"content": "x", "attachments": mine}, headers=alice)
    assert r.status_code == 422  # at most 4
    for ids in ([bobs], [mine[0], bobs], ["0" * 32]):
        r = client.post(url, json={"content": "x", "attachments": ids}, headers=alice)
        assert r.status_code == 404, r.text
    # Nothing was added by the refused requests.
    tree = client.get(f"/api/conversations/{conv['id']}", headers=alice).json()
    assert tree["messages"] == []
    r = client.post(url, json={"content": "x", "attachments": mine[:4]}, headers=alice)
    assert r.status_code == 200
    assert len([p for p in r.json()["user_message"]["parts"] if p["type"] == "image"]) == 4
