"""A process's memory from Linux's /proc, for benchmarks and the flywheel's stage records.

    reset_peak(pid)                    # the peak starts over from the current size
    ...
    status_kib(pid, "VmHWM") / 1024    # peak resident set since then, MiB

VmHWM rather than ru_maxrss: Linux carries ru_maxrss across fork+exec, and it cannot be reset.
"""

from __future__ import annotations

import contextlib
from pathlib import Path


def status_kib(pid: int, field: str) -> int:
    """A /proc/<pid>/status memory field (VmRSS, VmHWM) in KiB; 0 once the process is gone or
    where /proc does not exist."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def reset_peak(pid: int) -> None:
    """Start the process's VmHWM over from its current size ("5" to clear_refs)."""
    # Not Linux, or not ours: the peak then covers the process's whole life.
    with contextlib.suppress(OSError):
        Path(f"/proc/{pid}/clear_refs").write_text("5")
