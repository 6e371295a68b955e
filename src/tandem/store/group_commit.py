"""Group commit: concurrent small writes share one transaction, so one commit (one fsync)
acknowledges many of them.

    writes = GroupCommit(session_factory)              # one per app (app.state.signal_writes)
    row = writes.run(lambda s: FeedbackRepo(s).rate_message(user_id, message_id, "up"))
    row = await asyncio.wrap_future(writes.submit(write))   # from async code
    writes.close()

One writer thread takes everything queued, applies the writes one after another in one
transaction, then commits once. A caller's result is handed back only after the commit of ITS
batch returned: an acknowledged write is on disk. If that commit fails, every write of the
batch fails with it and none is acknowledged.

A write that raises (a foreign id, bad input) fails alone, with its own exception, hence its
own 4xx: the batch is rolled back and replayed with a SAVEPOINT around each write. Savepoints
only on that replay because they cost two statements per write — on PostgreSQL two round trips,
a fifth of the throughput (measured: 348 → 424 ratings/s) — and failing writes are rare. So a
write must touch nothing but the session it is given: it may run twice.

No batching delay: while one batch commits (SQLite with synchronous=FULL spends ~4 ms in the
fsync here), the next requests queue up and form the next batch, so the batch size grows with
the load by itself and a lone write commits at once.

A write may also be an object with an `apply_all(session, writes)` static method (see
`tandem.store.feedback.Rating`): a run of such writes of one type is applied by one call, which
checks every write first, returns `(False, exception)` for those that fail their checks (their
own 4xx, nothing written for them) and writes the rest with a few statements for the whole run
(on PostgreSQL each statement is a round trip: per-write statements bound the throughput).
If `apply_all` raises, the batch is replayed as above, each write alone (`write(session)`) in
its savepoint.

The write functions are ordinary repository calls. Repositories commit when their write is
done; in a batch, that commit only flushes (see `BatchSession`), and the batch commits.

The same session serves one request that reads and writes several things belonging together
(a chat turn: its context, the question, the memory it asked for) in one transaction:

    with one_transaction(session_factory) as session:
        ...                                   # repository calls; committed once, at the end
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger("tandem.store.group_commit")

T = TypeVar("T")
Write = Callable[[Session], Any]

_Queue = queue.SimpleQueue[tuple[Write, Future[Any]] | None]

MAX_BATCH = 256  # bounds one transaction's size (and the write lock's hold time)


class BatchSession(Session):
    """A session whose `commit()` means "this write is complete": it flushes, so the write's
    SQL runs before the next write's (and inside its savepoint on a replay); the batch's one
    real commit is `commit_batch()`."""

    def commit(self) -> None:
        self.flush()

    def commit_batch(self) -> None:
        super().commit()


@contextmanager
def one_transaction(session_factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session in which repository commits only flush: what the block reads and writes is
    one transaction, committed when the block ends and rolled back if it raises."""
    with BatchSession(**session_factory.kw) as session:
        yield session
        session.commit_batch()


class GroupCommit:
    def __init__(self, session_factory: sessionmaker[Session], max_batch: int = MAX_BATCH):
        # Same engine and options (expire_on_commit=False, info) as the app's sessions.
        self._factory = sessionmaker(**{**session_factory.kw, "class_": BatchSession})
        self._max_batch = max_batch
        self._queue: _Queue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, write: Callable[[Session], T]) -> Future[T]:
        """Queue `write(session)`; the future resolves once its batch has committed."""
        future: Future[T] = Future()
        with self._lock:
            if self._thread is None:  # started on first use: apps that never write pay nothing
                self._thread = threading.Thread(
                    target=self._loop,
                    args=(self._queue,),
                    name="tandem-group-commit",
                    daemon=True,
                )
                self._thread.start()
            self._queue.put((write, future))
        return future

    def run(self, write: Callable[[Session], T]) -> T:
        """Submit and wait: the write's result after its batch committed, or its exception."""
        return self.submit(write).result()

    def close(self) -> None:
        """Apply what is queued, then stop the writer thread. A later `submit` starts a new
        one (an app's lifespan may run more than once, as with several TestClients)."""
        with self._lock:
            thread, pending = self._thread, self._queue
            self._thread, self._queue = None, queue.SimpleQueue()
        if thread is not None:
            pending.put(None)  # after everything already queued for that thread
            thread.join()

    def _loop(self, pending: _Queue) -> None:
        while True:
            item = pending.get()
            if item is None:
                return
            batch = [item]
            stop = False
            while len(batch) < self._max_batch:
                try:
                    more = pending.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                batch.append(more)
            self._apply(batch)
            if stop:
                return

    def _apply(self, batch: list[tuple[Write, Future[Any]]]) -> None:
        live = [(write, future) for write, future in batch if future.set_running_or_notify_cancel()]
        if not live:
            return  # every caller gave up before its write ran
        try:
            try:
                outcomes = self._transaction(live, isolate=False)
            except _WriteFailed:
                # A write raised, and its partial SQL shares the transaction with the others':
                # roll all back, and replay the batch with a SAVEPOINT around each write.
                outcomes = self._transaction(live, isolate=True)
        except Exception as exc:
            # Nothing of this batch is committed: no write of it may be acknowledged.
            log.exception("group commit of %d writes failed", len(live))
            outcomes = [(False, exc)] * len(live)
        for (_, future), (ok, value) in zip(live, outcomes, strict=True):
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)

    def _transaction(
        self, writes: list[tuple[Write, Future[Any]]], isolate: bool
    ) -> list[tuple[bool, Any]]:
        """One transaction, one commit. Without `isolate` the first failing write aborts it
        (`_WriteFailed`); with it each write runs in a savepoint and may fail alone."""
        outcomes: list[tuple[bool, Any]] = []
        with self._factory() as session:
            _begin_write(session)
            i = 0
            while i < len(writes):
                write = writes[i][0]
                apply_all = None if isolate else getattr(write, "apply_all", None)
                if apply_all is not None:
                    # A run of writes of one kind that can be applied together: a handful of
                    # statements for the whole run instead of a few per write.
                    j = i + 1
                    while j < len(writes) and type(writes[j][0]) is type(write):
                        j += 1
                    try:
                        outcomes.extend(apply_all(session, [w for w, _ in writes[i:j]]))
                    except Exception as exc:
                        raise _WriteFailed from exc
                    i = j
                    continue
                try:
                    if isolate:
                        with session.begin_nested():
                            outcomes.append((True, write(session)))
                    else:
                        outcomes.append((True, write(session)))
                except Exception as exc:
                    if not isolate:
                        raise _WriteFailed from exc
                    outcomes.append((False, exc))
                i += 1
            session.commit_batch()
        return outcomes


class _WriteFailed(Exception):
    pass


def _begin_write(session: Session) -> None:
    """Open the batch's transaction explicitly on SQLite. Python's sqlite3 module begins a
    transaction only before an INSERT/UPDATE/DELETE, so a batch whose first statement is a
    SAVEPOINT would make that savepoint the outermost transaction, and releasing it would
    commit (and fsync) each write on its own. IMMEDIATE takes the write lock up front, so the
    batch never fails half way on a lock upgrade. PostgreSQL needs nothing: psycopg begins a
    transaction before the first statement."""
    connection = session.connection()
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql("BEGIN IMMEDIATE")
