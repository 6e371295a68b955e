"""Image uploads for chat attachments: `POST /api/uploads` (multipart field `file`), `GET
/api/uploads/{id}` for its owner. Only PNG, JPEG, WebP and GIF, recognised by their bytes; at
most 10 MB (413 beyond)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, UploadFile, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse

from tandem.api.deps import CurrentUser, SessionDep, SettingsDep
from tandem.api.errors import ApiError
from tandem.api.schemas import Id, Public, form_fields
from tandem.core.images import MAX_UPLOAD_BYTES
from tandem.store import UploadRepo

router = APIRouter(prefix="/api/uploads", tags=["uploads"])
READ_CHUNK = 1 << 20


class UploadPublic(Public):
    id: str
    filename: str
    mime: str
    size: int
    sha256: str
    created_at: datetime


def _repo(session: SessionDep, settings: SettingsDep) -> UploadRepo:
    return UploadRepo(session, settings.home / "uploads")


async def _read_limited(file: UploadFile) -> bytes:
    """The file's bytes, or 413 as soon as it passes the limit (whatever its headers say)."""
    chunks, size = [], 0
    while chunk := await file.read(READ_CHUNK):
        size += len(chunk)
        if size > MAX_UPLOAD_BYTES:
            raise ApiError(
                413, f"an upload may be at most {MAX_UPLOAD_BYTES} bytes", "upload_too_large"
            )
        chunks.append(chunk)
    return b"".join(chunks)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=UploadPublic,
    dependencies=[form_fields("file")],
)
async def upload(file: UploadFile, user: CurrentUser, session: SessionDep, settings: SettingsDep):
    data = await _read_limited(file)
    # Writing and fsyncing the file blocks: keep it off the event loop.
    return await run_in_threadpool(_repo(session, settings).create, user.id, file.filename, data)


@router.get(
    "/{upload_id}",
    response_class=FileResponse,
    responses={200: {"content": {m: {} for m in ("image/png", "image/jpeg")}}},
)
def get_upload(upload_id: Id, user: CurrentUser, session: SessionDep, settings: SettingsDep):
    repo = _repo(session, settings)
    row = repo.get(user.id, upload_id)
    return FileResponse(
        repo.path(row),
        media_type=row.mime,
        headers={
            # The stored type is the sniffed one; browsers must not guess another.
            "X-Content-Type-Options": "nosniff",
            "Content-Disposition": f'inline; filename="{row.filename}"',
            "Content-Security-Policy": "default-src 'none'",
            "Cache-Control": "private, max-age=3600",
        },
    )
