"""How a job's process starts: one interface, a local process by default.

    runner = LocalRunner()                                       # python -m tandem.jobs.child ID
    runner = LocalRunner(launcher=("accelerate", "launch", "--num_processes", "2"))
    handle = runner.start(job_id, log_path, env)
    runner.poll(handle)      # None while it runs, else its exit code
    runner.stop(handle)      # SIGTERM to its process group, SIGKILL after a grace period

The launcher is the command that runs `-m tandem.jobs.child JOB_ID` (TANDEM_JOB_LAUNCHER,
split like a shell would): the default is this interpreter; `accelerate launch ...` trains on
every GPU of this host; `srun --gres=gpu:1 .venv/bin/python` or `ray job submit -- python`
hand the job to a Slurm or Ray cluster that shares TANDEM_HOME and the database (docs/jobs.md).
Whatever the launcher, the job writes its own progress to the database, and the launcher's
process stands for the job here: it ends when the job ends, and stopping it stops the job.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

CHILD_MODULE = "tandem.jobs.child"


class JobRunner(Protocol):
    def start(self, job_id: str, log_path: Path, env: Mapping[str, str]) -> str: ...

    def poll(self, handle: str) -> int | None: ...

    def stop(self, handle: str, grace_s: float = 10.0) -> None: ...


class LocalRunner:
    """Each job is a process group of its own on this host, so stopping it stops whatever the
    launcher started under it (accelerate's workers included)."""

    def __init__(self, launcher: Sequence[str] = ()) -> None:
        self.launcher = tuple(launcher) or (sys.executable,)
        self._processes: dict[str, subprocess.Popen[bytes]] = {}

    def command(self, job_id: str) -> list[str]:
        return [*self.launcher, "-m", CHILD_MODULE, job_id]

    def start(self, job_id: str, log_path: Path, env: Mapping[str, str]) -> str:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                self.command(job_id),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=dict(env),
                start_new_session=True,
            )
        handle = str(process.pid)
        self._processes[handle] = process
        return handle

    def poll(self, handle: str) -> int | None:
        process = self._processes.get(handle)
        if process is None:  # not started by this runner: nothing here to wait for
            return -1
        code = process.poll()
        if code is not None:
            del self._processes[handle]
        return code

    def stop(self, handle: str, grace_s: float = 10.0) -> None:
        process = self._processes.pop(handle, None)
        if process is None or process.poll() is not None:
            return
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        except ProcessLookupError:  # it ended between the poll and the signal
            pass
