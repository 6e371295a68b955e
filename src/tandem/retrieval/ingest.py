"""Background ingestion of uploaded documents, in two phases so a file is usable early:

1. **parse**: parse → chunk → store, in batches; the file is `ready` (searchable by keywords,
   BM25) as soon as its last chunk is stored; `progress` is the fraction of the file read;
2. **embed**: the chunks' vectors fill in afterwards, in ordinal order, a batch at a time;
   `embedded_count` / `embedding_progress` say how far. Search fuses BM25 with cosine over the
   chunks that already have a vector.

    ingestor = Ingestor(session_factory, settings.home / "files")
    ingestor.submit(file_id)          # returns at once; status/progress move in the DB
    ingestor.resume_unfinished()      # on server start
    ingestor.shutdown()

Memory stays bounded whatever the file's size: the parser yields passages as it reads and
every `BATCH` passages are committed; the embedder reads `EMBED_BATCH` chunks, embeds and
writes them back; never the whole file's text or vectors (see bench/ingest.py).

Two worker threads, one per phase: a small upload is parsed at once even while a big one is
being embedded (parsing is light; embedding is the CPU-bound part). Embedding goes one batch
at a time, round-robin over the files waiting for vectors, so a small file's vectors are not
stuck behind a 50 MB file's hour of embedding.

On server start, files left `queued` or `ingesting` by a stop or a crash are **re-parsed from
the beginning** (their partial chunks dropped: parsing is fast, and half a file must not look
whole), and ready files whose vectors were not all computed **resume embedding** where they
stopped (`embedded_count` is committed with each batch of vectors).
"""

from __future__ import annotations

import ctypes
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

BATCH = 256  # passages stored per transaction in the parse phase
EMBED_BATCH = 128  # chunks read, embedded (sorted by length) and written back per step


_libc: ctypes.CDLL | None
try:
    _libc = ctypes.CDLL("libc.so.6")
    _libc.malloc_trim  # noqa: B018 - glibc has it; musl and others may not
except (OSError, AttributeError):
    _libc = None


def _release_freed_memory() -> None:
    """Hand memory freed by the last embedding step back to the OS (glibc's malloc_trim).
    Each step allocates and frees tens of MB of texts, token ids and activations; without
    this the server's RSS crept up ~130 MB over a few minutes of a 50 MB file's embedding
    (bench/ingest.py). Not glibc: nothing to do."""
    if _libc is not None:
        _libc.malloc_trim(0)


class Ingestor:
    def __init__(
        self,
        session_factory: SessionFactory,
        files_root: Path,
        embedder: Callable[[], Embedder] | None = None,
    ) -> None:
        self.session_factory = session_factory
        self.files_root = files_root
        # files_root is $TANDEM_HOME/files: the embedding model is prepared beside it.
        self.embedder = embedder or (lambda: get_embedder(files_root.parent))
        self._parser = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tandem-parse")
        self._embedder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tandem-embed")
        self._lock = threading.Lock()
        self._embedding: set[str] = set()  # files with an embedding step queued
        self._closed = False

    def submit(self, file_id: str) -> Future[None] | None:
        """Queue a file for ingestion (its row is `queued`). None after shutdown."""
        with self._lock:
            if self._closed:
                return None
            return self._parser.submit(self.ingest, file_id)

    def submit_embedding(self, file_id: str) -> None:
        """Queue the embedding phase of a ready file (once, however often it is asked)."""
        with self._lock:
            if self._closed or file_id in self._embedding:
                return
            self._embedding.add(file_id)
            self._embedder.submit(self._embed_step, file_id)

    def resume_unfinished(self) -> list[str]:
        """Queue every file a previous process left unparsed or not fully embedded."""
        with self.session_factory() as session:
            repo = FileRepo(session, self.files_root)
            ids = [row.id for row in repo.unfinished()]
            for file_id in ids:
                repo.set_status(file_id, "queued", progress=0.0)
            to_embed = repo.unembedded()
        for file_id in ids:
            self.submit(file_id)
        for file_id in to_embed:
            self.submit_embedding(file_id)
        if ids or to_embed:
            log.info("resuming: %d file(s) to parse, %d to embed", len(ids), len(to_embed))
        return ids + to_embed

    def shutdown(self, wait: bool = True) -> None:
        """Stop: queued files stay `queued`, a file being parsed stops after its current batch
        and stays `ingesting`, embedding stops after its current batch; the next start
        resumes all of them."""
        with self._lock:
            self._closed = True
        self._parser.shutdown(wait=wait, cancel_futures=True)
        self._embedder.shutdown(wait=wait, cancel_futures=True)

    # -- phase 1: parse, chunk, store -----------------------------------------------------------

    def ingest(self, file_id: str) -> None:
        """Parse one file now, in this thread, then queue its embeddings; failures end as
        status `failed` with a sentence for the user, never as an exception."""
        with self.session_factory() as session:
            repo = FileRepo(session, self.files_root)
            row = repo.get_any(file_id)
            if row is None:  # deleted while queued
                return
            try:
                repo.clear_chunks(file_id)
                repo.set_status(file_id, "ingesting", progress=0.0, chunk_count=0, embedded_count=0)
                count = self._parse(repo, repo.path(row), row.mime, file_id)
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
            repo.set_status(file_id, "ready", progress=1.0, chunk_count=count, embedded_count=0)
        self.submit_embedding(file_id)

    def _parse(self, repo: FileRepo, path: Path, mime: str, file_id: str) -> int:
        batch: list[Passage] = []
        ordinal = 0
        progress = 0.0

        def flush() -> None:
            nonlocal ordinal
            chunks = [NewChunk(ordinal + i, p.text, p.locator[:200]) for i, p in enumerate(batch)]
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
        repo.set_status(file_id, "failed", error=message, chunk_count=0, embedded_count=0)

    # -- phase 2: embed -------------------------------------------------------------------------

    def _embed_step(self, file_id: str) -> None:
        """Embed the file's next batch of chunks; requeue itself (behind the other files'
        steps) while chunks remain."""
        more = False
        try:
            more = self._embed_batch(file_id)
        except Exception as exc:  # the model failed to load or run: keywords still work
            log.exception("embedding file %s failed", file_id)
            with self.session_factory() as session:
                repo = FileRepo(session, self.files_root)
                row = repo.get_any(file_id)
                if row is not None and row.status == "ready":
                    row.error = (
                        f"embeddings unavailable ({type(exc).__name__}); keyword search only"
                    )
                    session.commit()
        finally:
            _release_freed_memory()
            with self._lock:
                if more and not self._closed:
                    self._embedder.submit(self._embed_step, file_id)
                else:
                    self._embedding.discard(file_id)

    def _embed_batch(self, file_id: str) -> bool:
        """One batch; True if the file has chunks left without a vector."""
        if self._closed:
            return False
        with self.session_factory() as session:
            repo = FileRepo(session, self.files_root)
            row = repo.get_any(file_id)
            if row is None or row.status != "ready" or row.embedded_count >= row.chunk_count:
                return False
            start, total = row.embedded_count, row.chunk_count
            todo = repo.chunks_to_embed(file_id, start, EMBED_BATCH)
            session.commit()  # end the read transaction while the model runs
            if not todo:
                return False
            vectors = self.embedder().embed([text for _, text in todo])
            if self._closed:
                return False
            stored = repo.set_embeddings(
                file_id, [(o, to_bytes(vectors[i])) for i, (o, _) in enumerate(todo)]
            )
            return stored > 0 and todo[-1][0] + 1 < total


class _Deleted(Exception):
    """The file was deleted while it was being ingested."""


class _Stopped(Exception):
    """The server is shutting down; the file is resumed on the next start."""
