"""Background ingestion of uploaded documents: parse → chunk → embed → store, in batches.

    ingestor = Ingestor(session_factory, settings.home / "files")
    ingestor.submit(file_id)          # returns at once; status/progress move in the DB
    ingestor.resume_unfinished()      # on server start
    ingestor.shutdown()

Memory stays bounded whatever the file's size: the parser yields passages as it reads, and
every `BATCH` passages are embedded and committed together, so at most one batch of texts and
vectors is alive at a time (a 50 MB file stays well under 1 GiB of server RSS; see
bench/ingest.py). One worker thread: on a small CPU box embedding is compute-bound, so two
files at once would only take turns, and it keeps the peak memory of one batch.

On server start, files left `queued` or `ingesting` by a stop or a crash are **resumed**: their
partial chunks are dropped and ingestion restarts from the beginning (chunks are cheap to
recompute, and a restart cannot leave half a file searchable as if it were whole).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from sqlalchemy.exc import IntegrityError

from tandem.retrieval.embeddings import Embedder, get_embedder, to_bytes
from tandem.retrieval.parsers import Passage, UnsupportedFile, kind_of_mime, passages
from tandem.store import SessionFactory
from tandem.store.files import FileRepo, NewChunk

log = logging.getLogger("tandem.ingest")

BATCH = 64


class Ingestor:
    def __init__(
        self,
        session_factory: SessionFactory,
        files_root: Path,
        embedder: Callable[[], Embedder] = get_embedder,
    ) -> None:
        self.session_factory = session_factory
        self.files_root = files_root
        self.embedder = embedder
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tandem-ingest")
        self._lock = threading.Lock()
        self._closed = False

    def submit(self, file_id: str) -> Future[None] | None:
        """Queue a file for ingestion (its row is `queued`). None after shutdown."""
        with self._lock:
            if self._closed:
                return None
            return self._executor.submit(self.ingest, file_id)

    def resume_unfinished(self) -> list[str]:
        """Queue every file a previous process left `queued` or `ingesting` (see above)."""
        with self.session_factory() as session:
            repo = FileRepo(session, self.files_root)
            ids = [row.id for row in repo.unfinished()]
            for file_id in ids:
                repo.set_status(file_id, "queued", progress=0.0)
        for file_id in ids:
            self.submit(file_id)
        if ids:
            log.info("resuming ingestion of %d file(s)", len(ids))
        return ids

    def shutdown(self, wait: bool = True) -> None:
        """Stop: queued files stay `queued`, a file being ingested stops after its current
        batch and stays `ingesting`; the next start resumes both."""
        with self._lock:
            self._closed = True
        self._executor.shutdown(wait=wait, cancel_futures=True)

    def ingest(self, file_id: str) -> None:
        """Ingest one file now, in this thread; failures end as status `failed` with a
        sentence for the user, never as an exception."""
        with self.session_factory() as session:
            repo = FileRepo(session, self.files_root)
            row = repo.get_any(file_id)
            if row is None:  # deleted while queued
                return
            try:
                repo.clear_chunks(file_id)
                repo.set_status(file_id, "ingesting", progress=0.0, chunk_count=0)
                count = self._ingest(repo, repo.path(row), row.mime, file_id)
            except (_Deleted, _Stopped):
                session.rollback()
                return
            except UnsupportedFile as exc:
                session.rollback()
                self._fail(repo, file_id, str(exc))
                return
            except Exception as exc:  # a bug or a damaged file must not kill the worker
                log.exception("ingesting file %s failed", file_id)
                session.rollback()
                self._fail(repo, file_id, f"ingestion failed: {type(exc).__name__}")
                return
            if count == 0:
                self._fail(repo, file_id, "no text could be extracted from this file")
                return
            repo.set_status(file_id, "ready", progress=1.0, chunk_count=count)

    def _ingest(self, repo: FileRepo, path: Path, mime: str, file_id: str) -> int:
        embedder = self.embedder()
        batch: list[Passage] = []
        ordinal = 0
        progress = 0.0

        def flush() -> None:
            nonlocal ordinal
            vectors = embedder.embed([p.text for p in batch])
            chunks = [
                NewChunk(ordinal + i, p.text, p.locator[:200], to_bytes(vectors[i]))
                for i, p in enumerate(batch)
            ]
            if self._closed:
                raise _Stopped
            if not repo.exists(file_id):
                raise _Deleted
            try:
                # Never claim 1.0 before the row says ready.
                repo.add_chunks(file_id, chunks, min(progress, 0.99))
            except IntegrityError as exc:  # the file was deleted between check and insert
                raise _Deleted from exc
            ordinal += len(batch)
            batch.clear()

        for passage, fraction in passages(path, kind_of_mime(mime)):
            progress = fraction
            batch.append(passage)
            if len(batch) >= BATCH:
                flush()
        if batch:
            flush()
        return ordinal

    @staticmethod
    def _fail(repo: FileRepo, file_id: str, message: str) -> None:
        if not repo.exists(file_id):
            return
        repo.clear_chunks(file_id)
        repo.set_status(file_id, "failed", error=message, chunk_count=0)


class _Deleted(Exception):
    """The file was deleted while it was being ingested."""


class _Stopped(Exception):
    """The server is shutting down; the file is resumed on the next start."""
