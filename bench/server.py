"""A real `tandem serve` process on loopback, for the benchmarks that need one over HTTP.

    with TandemProcess(home, models_from=PREPARED_MODELS) as server:   # starts, answers
        server.base, server.admin_key, server.pid
        cpu_seconds(server.pid), load_average()

The process helper itself is tandem's own (tandem.flywheel.server, which the installed
`tandem flywheel run` uses); this module adds what only a checkout has: the benchmarks pass
`models_from=PREPARED_MODELS` (`.cache/test-models/models`, which the model tests prepare) so a
run does not spend a minute converting the GGUF, and read the server's CPU time and the load.
"""

from __future__ import annotations

import os
from pathlib import Path

from tandem.flywheel.server import TandemProcess, free_port

__all__ = [
    "PREPARED_MODELS",
    "ROOT",
    "TandemProcess",
    "cpu_seconds",
    "free_port",
    "load_average",
]

ROOT = Path(__file__).resolve().parent.parent
PREPARED_MODELS = ROOT / ".cache" / "test-models" / "models"


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far (from /proc/<pid>/stat)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]
