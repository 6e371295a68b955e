"""Documents for retrieval (files with citations): upload to a chat or for a profile's
knowledge, watch ingestion, read a cited passage, download, delete.

* `POST /api/files` — multipart `file` (PDF, DOCX, Markdown, text, HTML, CSV; at most 50 MB,
  413 beyond) and optional `conversation_id` (one of my chats). The type is sniffed from the
  bytes (415 for anything else); answers 201 with the row (`status: queued`) at once and
  ingests in the background.
* `POST /api/files/from-url` — JSON `{url, conversation_id?}`: the document at that URL,
  fetched through `tandem.net.safe_fetch` (no loopback, private or metadata addresses, checked
  at every redirect; 422 `url_refused`), at most 50 MB (422 `fetch_failed` beyond,
  or when the site fails), then exactly as an upload.
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
import urllib.parse
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form, Query, Request, Response, UploadFile, status
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field

from tandem.api.deps import CurrentUser, SessionDep, SettingsDep
from tandem.api.errors import ApiError
from tandem.api.schemas import Body, Id, form_fields
from tandem.net import safe_fetch
from tandem.retrieval.parsers import MIMES, UnsupportedFile, sniff_kind
from tandem.store import ConversationRepo
from tandem.store.files import MAX_FILE_BYTES, FileRepo, file_to_dict

router = APIRouter(prefix="/api/files", tags=["files"])
READ_CHUNK = 1 << 20
# What a download is sent as: its sniffed type, or opaque bytes for a type a browser renders.
CONTENT_TYPES: dict[str, Any] = {
    m: {} for m in sorted({*MIMES.values(), "application/octet-stream"})
}
URL_TIMEOUT_S = 60.0  # 50 MB needs more than the web tool's 15 s on a modest link
# What a fetched document may declare; the bytes decide the kind (as for uploads), and servers
# often send documents as octet-stream.
URL_TYPES = frozenset(MIMES.values()) | {
    "application/octet-stream",
    "application/xhtml+xml",
    "text/x-markdown",
}
ACTIVE_MIMES = frozenset({"text/html", "application/xhtml+xml", "image/svg+xml", "text/xml"})


class FilePublic(BaseModel):
    """A file as `tandem.store.files.file_to_dict` shows it (fields it adds pass through)."""

    model_config = ConfigDict(extra="allow")

    id: str
    filename: str | None
    mime: str
    size: int
    sha256: str
    status: Literal["queued", "ingesting", "ready", "failed"]
    progress: float = Field(ge=0, le=1)
    error: str | None
    chunk_count: int
    conversation_id: str | None
    created_at: str


class ChunkPublic(BaseModel):
    file_id: str
    filename: str | None
    ordinal: int
    text: str
    locator: Any


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


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=FilePublic,
    dependencies=[form_fields("file", "conversation_id")],
)
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
    return await _ingest(request, repo, user.id, tmp, file.filename, size, sha256, conversation_id)


async def _ingest(
    request: Request,
    repo: FileRepo,
    user_id: str,
    tmp: Path,
    filename: str | None,
    size: int,
    sha256: str,
    conversation_id: str | None,
) -> dict[str, Any]:
    """The one way in for a document, uploaded or fetched: check the spooled bytes' type, move
    them into place, queue ingestion. `tmp` is gone afterwards either way."""
    try:
        if size == 0:
            raise ApiError(422, "the file is empty", "empty_file")
        try:
            kind = await run_in_threadpool(sniff_kind, tmp, filename)
        except UnsupportedFile as exc:
            raise ApiError(415, str(exc), "unsupported_file") from exc
        row = await run_in_threadpool(
            repo.create,
            user_id,
            filename,
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


class FromUrl(Body):
    url: str = Field(min_length=1, max_length=2048, description="an http(s) URL on the internet")
    conversation_id: Id | None = None


def _url_filename(url: str) -> str | None:
    """The last path segment of the final URL (the type is sniffed from the bytes anyway)."""
    name = urllib.parse.unquote(urllib.parse.urlsplit(url).path.rsplit("/", 1)[-1])
    return name[:255] or None


@router.post("/from-url", status_code=status.HTTP_201_CREATED, response_model=FilePublic)
async def file_from_url(
    body: FromUrl,
    request: Request,
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
) -> dict[str, Any]:
    """Fetch a document by URL and ingest it like an upload. The fetch goes through
    `tandem.net.safe_fetch`: loopback, private, link-local and metadata addresses are refused
    in every spelling and at every redirect hop (422 `url_refused`); an unreachable or failing
    site, an invalid URL, or more than the upload limit is 422 `fetch_failed`."""
    if body.conversation_id:
        ConversationRepo(session).get(user.id, body.conversation_id)  # 404 unless mine
    try:
        fetched = await safe_fetch.fetch(
            body.url,
            allow_private=settings.fetch_allow_private,
            max_bytes=MAX_FILE_BYTES,
            timeout_s=URL_TIMEOUT_S,
            content_types=URL_TYPES,
        )
    except safe_fetch.FetchRefused as exc:
        raise ApiError(422, str(exc), "url_refused") from exc
    except safe_fetch.FetchFailed as exc:
        # Not a valid URL, unreachable, an HTTP error, too slow, too big: the URL the user
        # gave cannot be used (a 5xx would claim tandem failed).
        raise ApiError(422, str(exc), "fetch_failed") from exc
    repo = _repo(session, settings)
    tmp, size, sha256 = await run_in_threadpool(
        _spool_bytes, fetched.body, repo.incoming_dir(user.id)
    )
    filename = _url_filename(fetched.url)
    return await _ingest(request, repo, user.id, tmp, filename, size, sha256, body.conversation_id)


def _spool_bytes(data: bytes, folder: Path) -> tuple[Path, int, str]:
    """Fetched bytes to a fsynced temp file beside their destination, like an upload."""
    fd, name = tempfile.mkstemp(dir=folder, prefix=".incoming-")
    with os.fdopen(fd, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    return Path(name), len(data), hashlib.sha256(data).hexdigest()


@router.get("", response_model=list[FilePublic])
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


@router.get("/{file_id}", response_model=FilePublic)
def get_file(
    file_id: Id, user: CurrentUser, session: SessionDep, settings: SettingsDep
) -> dict[str, Any]:
    return file_to_dict(_repo(session, settings).get(user.id, file_id))


@router.get("/{file_id}/chunks/{ordinal}", response_model=ChunkPublic)
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


@router.get(
    "/{file_id}/content",
    response_class=FileResponse,
    responses={200: {"content": CONTENT_TYPES, "description": "the bytes, as a download"}},
)
def download_file(file_id: Id, user: CurrentUser, session: SessionDep, settings: SettingsDep):
    """The bytes as an attachment: an uploaded HTML or SVG file must never render from our
    origin (it could run script as the user), so it is never inline, never sniffed, and
    sandboxed should a browser display it anyway."""
    repo = _repo(session, settings)
    row = repo.get(user.id, file_id)
    # A type a browser would render as a page (HTML) goes out as opaque bytes: even a client
    # that ignored the disposition would have nothing to run.
    media_type = "application/octet-stream" if row.mime in ACTIVE_MIMES else row.mime
    return FileResponse(
        repo.path(row),
        media_type=media_type,
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
