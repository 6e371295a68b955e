"""What the server keeps on disk is readable by its own account only.

The finding: `tandem.db` and its `-wal`/`-shm` files were created 0644 in a 0755 TANDEM_HOME,
so any local account could read every conversation, password hash and key hash. Now the home
is 0700 (tightened at start when an older install left it wider), the database files 0600, and
the upload and document folders 0700 with 0600 files.

    .venv/bin/python -m pytest -q tests/security/test_private_files.py
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from fastapi.testclient import TestClient

from conftest import new_user
from tandem.web.app import create_app

PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"
    b"\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\xcf\xc0\xf0\x1f\x00\x05\x00\x01\xff\x89\x99"
    b"=\x1d\x00\x00\x00\x00IEND\xaeB`\x82"
)


STORED = {"uploads", "files"}  # the image and document folders, one per user inside each


def _mode(path: Path) -> str:
    return oct(stat.S_IMODE(path.stat().st_mode))


def test_home_database_and_uploads_are_private(tandem_home, settings, fake_catalog):
    os.chmod(tandem_home, 0o755)  # as an older version (or a default umask) left it
    old_umask = os.umask(0o022)  # the usual umask: files 0644, folders 0755 unless set
    try:
        with TestClient(create_app(settings, fake_catalog)) as client:
            alice = new_user(client, "alice@x.io")
            image = client.post(
                "/api/uploads", files={"file": ("dot.png", PNG, "image/png")}, headers=alice
            )
            assert image.status_code == 201, image.text
            document = client.post(
                "/api/files",
                files={"file": ("notes.txt", b"tea is a drink\n", "text/plain")},
                headers=alice,
            )
            assert document.status_code == 201, document.text
            # While the server runs, SQLite's write-ahead log and shared memory exist too.
            db = tandem_home / "tandem.db"
            database = [db, db.with_name("tandem.db-wal"), db.with_name("tandem.db-shm")]
            modes = {p.name: _mode(p) for p in database}
    finally:
        os.umask(old_umask)
    assert modes == dict.fromkeys(("tandem.db", "tandem.db-wal", "tandem.db-shm"), "0o600")
    assert _mode(tandem_home) == "0o700"
    stored = [p for p in tandem_home.rglob("*") if p.relative_to(tandem_home).parts[0] in STORED]
    assert {p.relative_to(tandem_home).parts[0] for p in stored if p.is_file()} == STORED
    for path in stored:
        assert _mode(path) == ("0o700" if path.is_dir() else "0o600"), path


def test_an_existing_database_is_tightened_at_start(tandem_home, settings, fake_catalog):
    with TestClient(create_app(settings, fake_catalog)):
        pass
    db = tandem_home / "tandem.db"
    os.chmod(db, 0o644)
    os.chmod(tandem_home, 0o755)
    with TestClient(create_app(settings, fake_catalog)):
        pass
    assert _mode(db) == "0o600" and _mode(tandem_home) == "0o700"
