"""Image uploads: the bytes in `$TANDEM_HOME/uploads/<user_id>/<id>`, a row in `uploads`.

Only raster images are accepted, recognised by their first bytes: a file's name and the
client's Content-Type are both chosen by the uploader, so neither is trusted. The stored mime
is the sniffed one, which is what the file is served with.

    repo = UploadRepo(session, settings.home / "uploads")
    row = repo.create(user_id, "cat.png", data)      # InvalidInput unless it is an image
    path = repo.path(repo.get(user_id, row.id))
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from tandem.core.errors import InvalidInput, NotFound
from tandem.core.images import MAX_UPLOAD_BYTES, sniff_image_mime
from tandem.core.settings import make_private_dir
from tandem.store.models import Upload, new_id

IMAGE_MIMES = ("image/png", "image/jpeg", "image/webp", "image/gif")
_UNSAFE_FILENAME = re.compile(r"[^A-Za-z0-9._ -]+")


def sanitise_filename(name: str | None) -> str:
    """A display name safe in a header and on any filesystem: the last path component,
    letters, digits, `._ -` only, at most 200 characters."""
    base = re.split(r"[\\/]", name or "")[-1]
    base = _UNSAFE_FILENAME.sub("_", base).strip(" .")
    return base[:200] or "image"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class UploadRepo:
    def __init__(self, session: Session, root: Path | None = None) -> None:
        """`root` is where files live; lookups of rows alone do not need it."""
        self.session = session
        self.root = root

    def _dir(self, user_id: str) -> Path:
        if self.root is None:
            raise RuntimeError("UploadRepo needs its root directory to touch files")
        return self.root / user_id

    def path(self, row: Upload) -> Path:
        return self._dir(row.user_id) / row.id

    def create(self, user_id: str, filename: str | None, data: bytes) -> Upload:
        if len(data) > MAX_UPLOAD_BYTES:
            raise InvalidInput(f"an upload may be at most {MAX_UPLOAD_BYTES} bytes")
        mime = sniff_image_mime(data)
        if mime is None:
            raise InvalidInput("only PNG, JPEG, WebP and GIF images can be uploaded")
        row = Upload(
            id=new_id(),
            user_id=user_id,
            filename=sanitise_filename(filename),
            mime=mime,
            size=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
        )
        # The file is durable before the row that points at it is committed: a crash leaves
        # at worst an orphan file, never a row without its bytes.
        folder = self._dir(user_id)
        make_private_dir(folder)  # 0700, like the home; mkstemp makes the file 0600
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".incoming-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path(row))
            _fsync_dir(folder)
            self.session.add(row)
            self.session.commit()
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            self.path(row).unlink(missing_ok=True)
            raise
        return row

    def get(self, user_id: str, upload_id: str) -> Upload:
        row = self.session.scalar(
            select(Upload).where(Upload.id == upload_id, Upload.user_id == user_id)
        )
        if row is None:
            raise NotFound("upload", upload_id)
        return row

    def get_many(self, user_id: str, upload_ids: list[str]) -> list[Upload]:
        """The user's uploads in the order asked; any foreign or missing id is NotFound."""
        return [self.get(user_id, upload_id) for upload_id in upload_ids]

    def list(self, user_id: str) -> list[Upload]:
        return list(
            self.session.scalars(
                select(Upload).where(Upload.user_id == user_id).order_by(Upload.created_at.desc())
            )
        )

    def delete_all_files(self, user_id: str) -> None:
        """Remove the user's upload directory (after their rows are deleted and committed)."""
        shutil.rmtree(self._dir(user_id), ignore_errors=True)
