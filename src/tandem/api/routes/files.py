"""Documents for retrieval (files with citations): upload to a chat or for a profile's
knowledge, watch ingestion, read a cited passage, download, delete.

* `POST /api/files` — multipart `file` (PDF, DOCX, Markdown, text, HTML, CSV; at most 50 MB,
  413 beyond) and optional `conversation_id` (one of my chats). The type is sniffed from the
  bytes (415 for anything else); answers 201 with the row (`status: queued`) at once and
  ingests in the background.
* `GET /api/files/{id}` — status (`queued|ingesting|ready|failed`), `progress` 0..1, `error`.
* `GET /api/files?conversation_id=` — my files (of one chat).
* `GET /api/files/{id}/chunks/{ordinal}` — a passage, its locator and file name (citations).
* `GET /api/files/{id}/content` — the bytes, always as a download, never rendered.
* `DELETE /api/files/{id}` — the file, its bytes and its chunks.

Another user's file is 404, exactly like a missing one.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request, Response, UploadFile, status
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse

from tandem.api.deps import CurrentUser, SessionDep, SettingsDep
from tandem.api.errors import ApiError
from tandem.api.schemas import Id
from tandem.retrieval.parsers import MIMES, UnsupportedFile, sniff_kind
from tandem.store import ConversationRepo
from tandem.store.files import MAX_FILE_BYTES, FileRepo, file_to_dict

router = APIRouter(prefix="/api/files", tags=["files"])
READ_CHUNK = 1 << 20


def _repo(session: SessionDep, settings: SettingsDep) -> FileRepo:
    return FileRepo(session, settings.home / "files")


def _too_large() -> ApiError:
    return ApiError(413, f"a file may be at most {MAX_FILE_BYTES} bytes", "file_too_large")


async def _spool(file: UploadFile, folder: Path) -> tuple[Path, int, str]:
    """Copy the upload to a temp file beside its destination, 1 MiB at a time, hashing as it
    goes: never more than one piece in memory, and 413 as soon as it passes the limit."""
    fd, name = tempfile.mkstemp(dir=folder, prefix=".incoming-")
    tmp = Path(name)
    digest, size = hashlib.sha256(), 0
    try:
        with os.fdopen(fd, "wb") as out:
            while piece := await file.read(READ_CHUNK):
                size += len(piece)
                if size > MAX_FILE_BYTES:
                    raise _too_large()
                digest.update(piece)
                await run_in_threadpool(out.write, piece)
            out.flush()
            await run_in_threadpool(os.fsync, out.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp, size, digest.hexdigest()


@router.post("", status_code=status.HTTP_201_CREATED)
async def upload_file(
    request: Request,
    file: UploadFile,
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    conversation_id: Annotated[str | None, Form(max_length=64)] = None,
) -> dict[str, Any]:
    if conversation_id:
        ConversationRepo(session).get(user.id, conversation_id)  # 404 unless mine
    repo = _repo(session, settings)
    tmp, size, sha256 = await _spool(file, repo.incoming_dir(user.id))
    try:
        if size == 0:
            raise ApiError(422, "the file is empty", "empty_file")
        try:
            kind = await run_in_threadpool(sniff_kind, tmp, file.filename)
        except UnsupportedFile as exc:
            raise ApiError(415, str(exc), "unsupported_file") from exc
        row = await run_in_threadpool(
            repo.create,
            user.id,
            file.filename,
            tmp,
            mime=MIMES[kind],
            size=size,
            sha256=sha256,
            conversation_id=conversation_id or None,
        )
    finally:
        tmp.unlink(missing_ok=True)  # moved into place on success; gone either way
    request.app.state.ingestor.submit(row.id)
    return file_to_dict(row)


@router.get("")
def list_files(
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    conversation_id: Annotated[str | None, Query(max_length=64)] = None,
) -> list[dict[str, Any]]:
    """My files, oldest first; with `conversation_id`, only that chat's (404 unless mine)."""
    if conversation_id:
        ConversationRepo(session).get(user.id, conversation_id)
    return [file_to_dict(r) for r in _repo(session, settings).list(user.id, conversation_id)]


@router.get("/{file_id}")
def get_file(
    file_id: Id, user: CurrentUser, session: SessionDep, settings: SettingsDep
) -> dict[str, Any]:
    return file_to_dict(_repo(session, settings).get(user.id, file_id))


@router.get("/{file_id}/chunks/{ordinal}")
def get_chunk(
    file_id: Id,
    ordinal: Annotated[int, PathParam(ge=0, le=10_000_000)],
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
) -> dict[str, Any]:
    """A passage of my file, for a citation's popover."""
    repo = _repo(session, settings)
    row = repo.get(user.id, file_id)
    chunk = repo.chunk(user.id, file_id, ordinal)
    return {
        "file_id": row.id,
        "filename": row.filename,
        "ordinal": chunk.ordinal,
        "text": chunk.text,
        "locator": chunk.locator,
    }


@router.get("/{file_id}/content", response_class=FileResponse)
def download_file(file_id: Id, user: CurrentUser, session: SessionDep, settings: SettingsDep):
    """The bytes as an attachment: an uploaded HTML or SVG file must never render from our
    origin (it could run script as the user), so it is never inline, never sniffed, and
    sandboxed should a browser display it anyway."""
    repo = _repo(session, settings)
    row = repo.get(user.id, file_id)
    return FileResponse(
        repo.path(row),
        media_type=row.mime,
        headers={
            "Content-Disposition": f'attachment; filename="{row.filename}"',
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",
            "Cache-Control": "private, no-store",
        },
    )


@router.delete("/{file_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_file(
    file_id: Id, user: CurrentUser, session: SessionDep, settings: SettingsDep
) -> Response:
    _repo(session, settings).delete(user.id, file_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
