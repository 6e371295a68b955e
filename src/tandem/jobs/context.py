"""What a job's work sees of its row: progress writes, the result, and the stop check.

Shared by the real child (tandem.jobs.child), the train and eval jobs it runs, and any stand-in
launcher; kept apart from the child so the jobs can import it without importing the child.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import time
from typing import Any

from tandem.store.db import SessionFactory
from tandem.store.jobs import JobRepo

PR_SET_PDEATHSIG = 1


class JobStopped(Exception):
    """The row no longer says `running`: the console cancelled it or a restart interrupted it."""


def die_with_parent() -> None:
    """Linux: SIGKILL this process when the one that started it dies. Without it a server
    killed mid-job would leave its training running, unowned, writing to a job the next server
    marks interrupted."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:  # the parent died before the request took effect
        os._exit(1)


class JobContext:
    """The row as the work sees it: progress writes (main process only) and the stop check."""

    def __init__(self, sessions: SessionFactory, job_id: str, *, writes: bool) -> None:
        self.sessions = sessions
        self.job_id = job_id
        self.writes = writes
        self._last_check = 0.0

    def progress(self, **values: Any) -> None:
        if self.writes:
            with self.sessions() as session:
                JobRepo(session).progress(self.job_id, **values)

    def result(self, **values: Any) -> None:
        if self.writes:
            with self.sessions() as session:
                JobRepo(session).set_result(self.job_id, **values)

    def check(self, every_s: float = 0.0) -> None:
        """Raise JobStopped when the job was cancelled or interrupted (at most every `every_s`)."""
        now = time.monotonic()
        if every_s and now - self._last_check < every_s:
            return
        self._last_check = now
        with self.sessions() as session:
            row = JobRepo(session).get(self.job_id)
            if row.status != "running" or row.cancel_requested:
                raise JobStopped(row.status)
