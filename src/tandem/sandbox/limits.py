"""How much a sandboxed run may use, from `TANDEM_SANDBOX_*` environment variables.

limits = SandboxLimits.from_env()            # the server's settings
limits = SandboxLimits(wall_s=3, cpu_s=2)    # tests
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any


@dataclass(frozen=True)
class SandboxLimits:
    wall_s: float = 10.0  # TANDEM_SANDBOX_WALL_S: wall-clock seconds, enforced by the parent
    cpu_s: int = 10  # TANDEM_SANDBOX_CPU_S: CPU seconds (RLIMIT_CPU)
    memory_mb: int = 512  # TANDEM_SANDBOX_MEMORY_MB: address space (RLIMIT_AS)
    processes: int = 16  # TANDEM_SANDBOX_PROCESSES: processes and threads (RLIMIT_NPROC)
    output_bytes: int = 1_000_000  # TANDEM_SANDBOX_OUTPUT_BYTES: stdout + stderr together
    file_mb: int = 32  # TANDEM_SANDBOX_FILE_MB: largest file the code may write (RLIMIT_FSIZE)
    disk_mb: int = 64  # TANDEM_SANDBOX_DISK_MB: the working directory's size (a tmpfs)
    open_files: int = 64  # TANDEM_SANDBOX_OPEN_FILES: RLIMIT_NOFILE
    max_images: int = 8  # TANDEM_SANDBOX_MAX_IMAGES: charts kept per run
    image_bytes: int = 4_000_000  # TANDEM_SANDBOX_IMAGE_BYTES: largest chart kept
    concurrency: int = 2  # TANDEM_SANDBOX_CONCURRENCY: runs at once; others wait their turn
    uid_base: int = 1_900_000_000  # TANDEM_SANDBOX_UID_BASE: run i of N uses uid base+i (root)

    result_bytes: int = 1_000_000  # the runner's result.json (value, tables)
    tmp_mb: int = 16  # /tmp inside the sandbox

    @property
    def outputs_mb(self) -> int:
        return (self.max_images * self.image_bytes + self.result_bytes) // 1_000_000 + 2

    def to_jail(self) -> dict:
        return {**asdict(self), "outputs_mb": self.outputs_mb}

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> SandboxLimits:
        """Defaults, overridden by TANDEM_SANDBOX_<FIELD> (upper case) where set."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}  # float or int, by field
        for f in fields(cls):
            raw = env.get(f"TANDEM_SANDBOX_{f.name.upper()}")
            if raw:
                kind = float if f.type == "float" else int
                try:
                    values[f.name] = kind(raw)
                except ValueError:
                    raise ValueError(f"TANDEM_SANDBOX_{f.name.upper()} must be a number") from None
        limits = cls(**values)
        if min(limits.wall_s, limits.cpu_s, limits.memory_mb, limits.processes) <= 0:
            raise ValueError("sandbox limits must be positive")
        return limits
