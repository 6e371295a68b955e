"""The worker: a thread in the server process that runs queued jobs through a runner.

    worker = JobWorker(session_factory, settings)
    worker.start()     # first marks jobs whose server is gone as interrupted
    worker.stop()      # stops the processes it started; their jobs become `interrupted`

One job at a time by default: on a laptop CPU two trainings only slow each other down
(TANDEM_JOB_SLOTS raises it on a machine with more to give). Workers in several server
processes share the queue safely: claiming a job is a conditional UPDATE (JobRepo.claim_next).

A restart is the case this is built around. A stopped server (SIGTERM) stops its jobs and marks
them interrupted; a killed one (SIGKILL, a crash) takes its local job processes with it (the
child asks the kernel for that, tandem.jobs.child) and the next worker to start finds its jobs
still `running` under an owner that is gone, and marks them interrupted. Either way the console
offers Resume, which continues training from the run's newest checkpoint.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from tandem.core.offline import OFFLINE_ENV
from tandem.core.settings import Settings
from tandem.jobs.runners import JobRunner, LocalRunner
from tandem.store.db import SessionFactory
from tandem.store.jobs import JobRepo

log = logging.getLogger(__name__)

# Workers alive in this process: a job owned by one of them is running, one owned by a stopped
# one (an app built and closed in the same process, as tests do) is not.
_LIVE_OWNERS: set[str] = set()
HOST = socket.gethostname()
# Owners on another host cannot be asked; their jobs count as gone after this long unheard.
STALE_AFTER = timedelta(seconds=60)
RECOVER_EVERY_S = 15.0


def job_log_path(home: Path, job_id: str) -> Path:
    return home / "jobs" / job_id / "log.txt"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive, and not ours to judge
        return True
    return True


def owner_alive(owner: str | None) -> bool | None:
    """True/False where this host can tell; None for another host's worker."""
    if not owner or owner.count(":") < 2:
        return False
    host, pid_text, _ = owner.rsplit(":", 2)
    if host != HOST:
        return None
    if int(pid_text) == os.getpid():
        return owner in _LIVE_OWNERS
    return _pid_alive(int(pid_text))


class JobWorker:
    def __init__(
        self,
        sessions: SessionFactory,
        settings: Settings,
        runner: JobRunner | None = None,
        *,
        poll_s: float = 1.0,
        slots: int | None = None,
    ) -> None:
        self.sessions = sessions
        self.settings = settings
        self.runner = runner or LocalRunner(settings.job_launcher)
        self.poll_s = poll_s
        self.slots = slots or settings.job_slots
        self.owner = f"{HOST}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._running: dict[str, str] = {}  # job id -> runner handle
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._since_recover = 0.0

    def child_env(self) -> dict[str, str]:
        return {
            **os.environ,
            **OFFLINE_ENV,
            "TANDEM_HOME": str(self.settings.home),
            "TANDEM_DATABASE_URL": self.settings.database_url,
        }

    def start(self) -> None:
        _LIVE_OWNERS.add(self.owner)
        self.recover()
        self._thread = threading.Thread(target=self._loop, name="tandem-jobs", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        with self.sessions() as session:
            repo = JobRepo(session)
            for job_id, handle in list(self._running.items()):
                self.runner.stop(handle)
                repo.interrupt(job_id, "the server stopped while this job ran; resume it")
        self._running.clear()
        _LIVE_OWNERS.discard(self.owner)

    def recover(self) -> list[str]:
        with self.sessions() as session:
            gone = JobRepo(session).interrupt_stale(owner_alive, STALE_AFTER)
        for job_id in gone:
            log.warning("job %s: its server is gone; marked interrupted", job_id)
        return gone

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:  # a database hiccup must not end the worker for good
                log.exception("job worker tick failed")
            self._stop.wait(self.poll_s)

    def tick(self, on_started: Callable[[str], None] | None = None) -> None:
        """One pass: reap finished processes, honour cancels, heartbeat, start queued jobs."""
        with self.sessions() as session:
            repo = JobRepo(session)
            for job_id, handle in list(self._running.items()):
                code = self.runner.poll(handle)
                row = repo.get(job_id)
                if code is not None:
                    del self._running[job_id]
                    if row.status == "running":  # the process ended without saying how
                        tail = _log_tail(job_log_path(self.settings.home, job_id))
                        why = f"exit code {code}\n{tail}"
                        repo.finish(
                            job_id, "cancelled" if row.cancel_requested else "failed", error=why
                        )
                elif row.cancel_requested or row.status != "running":
                    self.runner.stop(handle)
                    del self._running[job_id]
                    repo.finish(job_id, "cancelled", error="cancelled from the console")
            repo.heartbeat(list(self._running))
            self._since_recover += self.poll_s
            if self._since_recover >= RECOVER_EVERY_S:
                self._since_recover = 0.0
                repo.interrupt_stale(owner_alive, STALE_AFTER)
            while len(self._running) < self.slots and not self._stop.is_set():
                job = repo.claim_next(self.owner)
                if job is None:
                    break
                path = job_log_path(self.settings.home, job.id)
                try:
                    handle = self.runner.start(job.id, path, self.child_env())
                except OSError as exc:  # the launcher is missing or not executable
                    repo.finish(job.id, "failed", error=f"could not start the job: {exc}")
                    continue
                self._running[job.id] = handle
                repo.started(job.id, handle)
                if on_started is not None:
                    on_started(job.id)


def _log_tail(path: Path, size: int = 3000) -> str:
    try:
        with path.open("rb") as f:
            f.seek(max(0, path.stat().st_size - size))
            return f.read().decode(errors="replace")
    except OSError:
        return ""
