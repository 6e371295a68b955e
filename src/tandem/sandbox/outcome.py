"""How a sandboxed run ended, in the words the user reads.

`status` is one of "ok", "error", "timeout", "memory", "output_limit", "killed" (the keys the
chat's code card knows); `error` is a sentence, or None when the code ran cleanly.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass
from typing import Any

from tandem.sandbox.limits import SandboxLimits

NETWORK = "Network access is disabled in the code sandbox."
HOST_FILES = "Only the chat's files, in the working directory, can be read in the code sandbox."


@dataclass(frozen=True)
class Outcome:
    status: str
    error: str | None


def _mb(n_bytes: int) -> str:
    return f"{n_bytes / 1_000_000:g} MB"


def classify(
    limits: SandboxLimits,
    *,
    output_exceeded: bool,
    parent_timed_out: bool,
    report: dict[str, Any] | None,
    result: dict[str, Any] | None,
    jail_error: str | None,
    unreadable_result: str | None = None,
) -> Outcome:
    """The first limit that explains the run's end wins: output, wall time, CPU, memory,
    processes; then a result the server would not read (`unreadable_result`: why), then the
    code's own exception. Every field of `result` was written by the code: only the expected
    types are used."""
    if output_exceeded:
        return Outcome(
            "output_limit", f"Your code printed more than {_mb(limits.output_bytes)}; output cut."
        )
    if parent_timed_out or (report or {}).get("timed_out"):
        return Outcome("timeout", f"Your code ran out of time ({limits.wall_s:g} s wall limit).")
    if report is None:
        why = f": {jail_error}" if jail_error else ""
        return Outcome("error", f"The code sandbox could not start{why}.")
    killed_by = report.get("signal")
    if killed_by == signal.SIGXCPU or (
        killed_by == signal.SIGKILL and report.get("cpu_s", 0) >= limits.cpu_s
    ):
        return Outcome("timeout", f"Your code used more than {limits.cpu_s} s of CPU time.")
    if unreadable_result is not None:
        return Outcome(
            "error", f"The code sandbox could not read your code's result: {unreadable_result}."
        )
    error = (result or {}).get("error")
    if isinstance(error, dict):
        return _from_exception(limits, error)
    if killed_by is not None:
        name = signal.Signals(killed_by).name if killed_by in signal.Signals else killed_by
        if killed_by == signal.SIGSEGV:
            return Outcome(
                "memory",
                f"Your code crashed (probably out of its {limits.memory_mb} MB of memory).",
            )
        return Outcome("killed", f"Your code was stopped by {name}.")
    if result is None:
        code = report.get("exit_code")
        return Outcome("killed", f"Your code stopped before finishing (exit status {code}).")
    return Outcome("ok", None)


def _from_exception(limits: SandboxLimits, error: dict[str, Any]) -> Outcome:
    kind = error.get("kind")
    if kind == "memory":
        return Outcome("memory", f"Your code used more than {limits.memory_mb} MB of memory.")
    if kind == "processes":
        return Outcome(
            "killed",
            f"Your code tried to start too many processes (the limit is {limits.processes}).",
        )
    if kind == "network":
        return Outcome("error", NETWORK)
    if kind == "file_size":
        return Outcome("error", f"Your code tried to write a file larger than {limits.file_mb} MB.")
    if kind == "disk":
        return Outcome(
            "error", f"Your code filled the sandbox's {limits.disk_mb} MB working directory."
        )
    # Text only: a forged list nested a thousand levels deep would recurse in str().
    name, message = error.get("type"), error.get("message")
    name = name[:100] if isinstance(name, str) and name else "an error"
    message = message[:500] if isinstance(message, str) else ""
    sentence = f"Your code raised {name}: {message}" if message else f"Your code raised {name}."
    if name in ("FileNotFoundError", "PermissionError", "IsADirectoryError"):
        sentence += f" {HOST_FILES}"
    return Outcome("error", sentence)
