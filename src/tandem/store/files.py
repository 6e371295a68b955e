"""Documents uploaded for retrieval (files with citations): a row per file in `files`, its
passages and their embeddings in `file_chunks`, the bytes in `$TANDEM_HOME/files/<user>/<id>`.

    repo = FileRepo(session, settings.home / "files")
    row = repo.create(user_id, "report.pdf", tmp_path, mime="application/pdf",
                      size=n, sha256=digest, conversation_id=conv_id)   # moves tmp_path in
    repo.path(row)                 # where the bytes are; never a user-chosen name on disk
    repo.list_for_conversation(user_id, conv_id)

The name on disk is the row's random id, so an uploaded name ("../../etc/passwd") is only ever
a display string (sanitised too, because it goes into a Content-Disposition header).

Vectors are float32 bytes in an ordinary column rather than a vector type: the same schema
works on SQLite and PostgreSQL, and search is brute-force cosine over a chat's or profile's few
thousand chunks (see docs/architecture.md); pgvector is the upgrade when corpora grow.
"""

from __future__ import annotations

# The repository has a `list` method, which hides the builtin in annotations below it.
import builtins
import os
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    CursorResult,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    bindparam,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from tandem.core.errors import NotFound
from tandem.core.settings import make_private_dir
from tandem.store.models import Base, new_id, utcnow
from tandem.store.uploads import sanitise_filename

FILE_STATUSES = ("queued", "ingesting", "ready", "failed")
MAX_FILE_BYTES = 50 * 1024 * 1024


class FileRow(Base):
    """An uploaded document; `status` moves queued → ingesting → ready | failed.

    Two phases: parsing stores the chunks (`progress` is the fraction of the file read) and
    the file is `ready` — searchable by keywords — as soon as they are all stored; the
    embeddings then fill in in the background, in ordinal order, `embedded_count` of
    `chunk_count` so far (chunks below it have a vector, the rest have NULL)."""

    __tablename__ = "files"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    # A chat's file goes with its chat; NULL for a profile's knowledge file.
    conversation_id: Mapped[str | None] = mapped_column(
        String(32), ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    filename: Mapped[str] = mapped_column(String(200))
    mime: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(20), default="queued")
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    error: Mapped[str | None] = mapped_column(Text)
    chunk_count: Mapped[int] = mapped_column(Integer, default=0)
    embedded_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class FileChunkRow(Base):
    """One passage of a file: its text, where it came from, and its embedding."""

    __tablename__ = "file_chunks"
    file_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("files.id", ondelete="CASCADE"), primary_key=True
    )
    ordinal: Mapped[int] = mapped_column(Integer, primary_key=True)
    text: Mapped[str] = mapped_column(Text)
    locator: Mapped[str] = mapped_column(String(200), default="")
    # float32, little-endian, L2-normalised: cosine similarity is a dot product. NULL until
    # the embedding phase reaches this chunk (it is found by keywords meanwhile).
    embedding: Mapped[bytes | None] = mapped_column(LargeBinary)


@dataclass(frozen=True)
class NewChunk:
    ordinal: int
    text: str
    locator: str
    embedding: bytes | None = None


def embedding_progress(row: FileRow) -> float:
    """The fraction of the file's chunks that have their vector (0 until it is ready)."""
    if row.status != "ready" or not row.chunk_count:
        return 0.0
    return min(1.0, row.embedded_count / row.chunk_count)


def file_to_dict(row: FileRow) -> dict[str, object]:
    """The API's view of a file row: `status`/`progress` for parsing (ready = searchable by
    keywords), `embedding_progress` 0..1 for the vectors that fill in afterwards."""
    return {
        "id": row.id,
        "filename": row.filename,
        "mime": row.mime,
        "size": row.size,
        "sha256": row.sha256,
        "status": row.status,
        "progress": round(row.progress, 4),
        "error": row.error,
        "chunk_count": row.chunk_count,
        "embedded_count": row.embedded_count,
        "embedding_progress": round(embedding_progress(row), 4),
        "conversation_id": row.conversation_id,
        "created_at": row.created_at.isoformat(),
    }


class FileRepo:
    def __init__(self, session: Session, root: Path | None = None) -> None:
        """`root` ($TANDEM_HOME/files) is where bytes live; row-only lookups do not need it."""
        self.session = session
        self.root = root

    def _dir(self, user_id: str) -> Path:
        if self.root is None:
            raise RuntimeError("FileRepo needs its root directory to touch files")
        return self.root / user_id

    def path(self, row: FileRow) -> Path:
        return self._dir(row.user_id) / row.id

    def create(
        self,
        user_id: str,
        filename: str | None,
        source: Path,
        *,
        mime: str,
        size: int,
        sha256: str,
        conversation_id: str | None = None,
    ) -> FileRow:
        """Move the fully written, fsynced temp file `source` to its final place and commit
        the row (status queued). The caller checked the conversation belongs to the user.
        `source` must be on the same filesystem as `root` (an atomic rename)."""
        row = FileRow(
            id=new_id(),
            user_id=user_id,
            conversation_id=conversation_id,
            filename=sanitise_filename(filename) if filename else "file",
            mime=mime,
            size=size,
            sha256=sha256,
            status="queued",
            progress=0.0,
            chunk_count=0,
            embedded_count=0,
            created_at=utcnow(),
        )
        folder = self._dir(user_id)
        make_private_dir(folder)  # 0700, like the home
        target = self.path(row)
        try:
            # The bytes are durable before the row that points at them is committed: a crash
            # leaves at worst an orphan file, never a row without its bytes.
            os.replace(source, target)
            fd = os.open(folder, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            self.session.add(row)
            self.session.commit()
        except BaseException:
            target.unlink(missing_ok=True)
            raise
        return row

    def incoming_dir(self, user_id: str) -> Path:
        """Where an upload streams to before it is checked (same filesystem as its target)."""
        folder = self._dir(user_id)
        make_private_dir(folder)  # 0700, like the home
        return folder

    def get(self, user_id: str, file_id: str) -> FileRow:
        row = self.session.scalar(
            select(FileRow).where(FileRow.id == file_id, FileRow.user_id == user_id)
        )
        if row is None:
            raise NotFound("file", file_id)
        return row

    def get_any(self, file_id: str) -> FileRow | None:
        """A row by id alone: for the ingestion worker, which is not acting for a request."""
        return self.session.scalar(select(FileRow).where(FileRow.id == file_id))

    def exists(self, file_id: str) -> bool:
        return self.session.scalar(select(FileRow.id).where(FileRow.id == file_id)) is not None

    def list(self, user_id: str, conversation_id: str | None = None) -> list[FileRow]:
        query = select(FileRow).where(FileRow.user_id == user_id)
        if conversation_id is not None:
            query = query.where(FileRow.conversation_id == conversation_id)
        return list(self.session.scalars(query.order_by(FileRow.created_at, FileRow.id)))

    def list_for_conversation(self, user_id: str, conversation_id: str) -> builtins.list[FileRow]:
        """The files uploaded to one of the user's chats, oldest first."""
        return self.list(user_id, conversation_id)

    def owned_ids(self, user_id: str, file_ids: Iterable[str]) -> set[str]:
        """Which of `file_ids` are this user's (any status)."""
        ids = list(dict.fromkeys(file_ids))
        if not ids:
            return set()
        return set(
            self.session.scalars(
                select(FileRow.id).where(FileRow.user_id == user_id, FileRow.id.in_(ids))
            )
        )

    def usable_ids(self, user_id: str, file_ids: Iterable[str]) -> set[str]:
        """Which of `file_ids` are this user's and not failed: valid knowledge files."""
        ids = list(dict.fromkeys(file_ids))
        if not ids:
            return set()
        return set(
            self.session.scalars(
                select(FileRow.id).where(
                    FileRow.user_id == user_id,
                    FileRow.id.in_(ids),
                    FileRow.status != "failed",
                )
            )
        )

    def rows_by_ids(self, user_id: str, file_ids: Sequence[str]) -> builtins.list[FileRow]:
        """The user's rows among `file_ids`; others are silently left out (retrieval)."""
        if not file_ids:
            return []
        return list(
            self.session.scalars(
                select(FileRow)
                .where(FileRow.user_id == user_id, FileRow.id.in_(list(file_ids)))
                .order_by(FileRow.created_at, FileRow.id)
            )
        )

    def unfinished(self) -> builtins.list[FileRow]:
        """Every file whose parsing had not finished (a restart resumes them)."""
        return list(
            self.session.scalars(
                select(FileRow)
                .where(FileRow.status.in_(("queued", "ingesting")))
                .order_by(FileRow.created_at)
            )
        )

    def unembedded(self) -> builtins.list[str]:
        """Ready files whose embeddings had not all been computed (a restart resumes them)."""
        return list(
            self.session.scalars(
                select(FileRow.id)
                .where(FileRow.status == "ready", FileRow.embedded_count < FileRow.chunk_count)
                .order_by(FileRow.created_at)
            )
        )

    def set_status(
        self,
        file_id: str,
        status: str,
        *,
        progress: float | None = None,
        error: str | None = None,
        chunk_count: int | None = None,
        embedded_count: int | None = None,
    ) -> None:
        assert status in FILE_STATUSES
        values: dict[str, object] = {"status": status, "error": error}
        if progress is not None:
            values["progress"] = max(0.0, min(1.0, progress))
        if chunk_count is not None:
            values["chunk_count"] = chunk_count
        if embedded_count is not None:
            values["embedded_count"] = embedded_count
        self.session.execute(update(FileRow).where(FileRow.id == file_id).values(**values))
        self.session.commit()

    def add_chunks(self, file_id: str, chunks: Sequence[NewChunk], progress: float) -> None:
        """Append a batch of chunks (usually without vectors yet) and the progress it brings in
        one transaction. A bulk insert, not ORM objects: nothing of the batch stays in the
        session afterwards."""
        if chunks:
            self.session.execute(
                insert(FileChunkRow),
                [
                    {
                        "file_id": file_id,
                        "ordinal": c.ordinal,
                        "text": c.text,
                        "locator": c.locator,
                        "embedding": c.embedding,
                    }
                    for c in chunks
                ],
            )
        self.session.execute(
            update(FileRow)
            .where(FileRow.id == file_id)
            .values(progress=max(0.0, min(1.0, progress)))
        )
        self.session.commit()

    def chunks_to_embed(
        self, file_id: str, start: int, limit: int
    ) -> builtins.list[tuple[int, str]]:
        """(ordinal, text) of the next `limit` chunks from ordinal `start` on."""
        rows = self.session.execute(
            select(FileChunkRow.ordinal, FileChunkRow.text)
            .where(FileChunkRow.file_id == file_id, FileChunkRow.ordinal >= start)
            .order_by(FileChunkRow.ordinal)
            .limit(limit)
        )
        return [(r.ordinal, r.text) for r in rows]

    def set_embeddings(self, file_id: str, vectors: Sequence[tuple[int, bytes]]) -> int:
        """Store a batch of vectors (ordinal, bytes) and move `embedded_count` past the
        batch's last ordinal, in one transaction. Returns how many rows still existed (0: the
        file was deleted meanwhile)."""
        if not vectors:
            return 0
        # Core, not ORM, update: an executemany keyed by ordinal, nothing kept in the session.
        table = FileChunkRow.__table__
        # An UPDATE's result is a CursorResult, which counts the rows it matched.
        updated = cast(
            CursorResult[Any],
            self.session.execute(
                update(table)
                .where(table.c.file_id == file_id, table.c.ordinal == bindparam("o"))
                .values(embedding=bindparam("v")),
                [{"o": o, "v": v} for o, v in vectors],
            ),
        ).rowcount
        self.session.execute(
            update(FileRow)
            .where(FileRow.id == file_id)
            .values(embedded_count=max(o for o, _ in vectors) + 1)
        )
        self.session.commit()
        return updated or 0

    def clear_chunks(self, file_id: str) -> None:
        """Drop a file's chunks (ingestion restarts from the beginning)."""
        self.session.execute(delete(FileChunkRow).where(FileChunkRow.file_id == file_id))
        self.session.commit()

    def chunk(self, user_id: str, file_id: str, ordinal: int) -> FileChunkRow:
        self.get(user_id, file_id)
        row = self.session.get(FileChunkRow, (file_id, ordinal))
        if row is None:
            raise NotFound("chunk", f"{file_id}/{ordinal}")
        return row

    def chunks_for(self, file_ids: Sequence[str]) -> builtins.list[FileChunkRow]:
        """Every chunk of these files (already checked by the caller), in file order."""
        if not file_ids:
            return []
        return list(
            self.session.scalars(
                select(FileChunkRow)
                .where(FileChunkRow.file_id.in_(list(file_ids)))
                .order_by(FileChunkRow.file_id, FileChunkRow.ordinal)
            )
        )

    def delete(self, user_id: str, file_id: str) -> None:
        """Delete the row (its chunks cascade) and then its bytes."""
        row = self.get(user_id, file_id)
        path = self.path(row) if self.root is not None else None
        self.session.execute(delete(FileChunkRow).where(FileChunkRow.file_id == file_id))
        self.session.delete(row)
        self.session.commit()
        if path is not None:
            path.unlink(missing_ok=True)

    def delete_all(self, user_id: str) -> None:
        """Every file row and chunk of the user (not committed), then call `delete_all_files`
        after the commit."""
        ids = select(FileRow.id).where(FileRow.user_id == user_id)
        self.session.execute(delete(FileChunkRow).where(FileChunkRow.file_id.in_(ids)))
        self.session.execute(delete(FileRow).where(FileRow.user_id == user_id))

    def delete_all_files(self, user_id: str) -> None:
        """Remove the user's file directory (after their rows are deleted and committed)."""
        shutil.rmtree(self._dir(user_id), ignore_errors=True)


__all__ = [
    "FILE_STATUSES",
    "MAX_FILE_BYTES",
    "FileChunkRow",
    "FileRepo",
    "FileRow",
    "NewChunk",
    "embedding_progress",
    "file_to_dict",
]
