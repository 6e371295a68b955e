"""A real `tandem serve` process on loopback, for the benchmarks that need one over HTTP.

    with TandemProcess(home, database_url=url) as server:   # starts, waits until it answers
        server.base, server.admin_key, server.pid
        server.kill()                                       # SIGKILL, as a crash would
        server.start()                                      # the same home and database again

The home's `models` directory is a link to already prepared models (`.cache/test-models/models`,
which the model tests prepare) when they exist, so a run does not spend a minute converting
the GGUF; otherwise `tandem serve` prepares them on its first start.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import httpx

ROOT = Path(__file__).resolve().parent.parent
PREPARED_MODELS = ROOT / ".cache" / "test-models" / "models"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far (from /proc/<pid>/stat)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


class TandemProcess:
    def __init__(
        self,
        home: Path,
        database_url: str | None = None,
        extra_env: dict[str, str] | None = None,
        models_from: Path | None = PREPARED_MODELS,
    ) -> None:
        self.home = home
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.admin_key = "tk-" + secrets.token_urlsafe(30)
        self.env = {
            **os.environ,
            "TANDEM_HOME": str(home),
            "TANDEM_ADMIN_API_KEY": self.admin_key,
            "HF_HUB_OFFLINE": "1",
            **(extra_env or {}),
        }
        self.env.pop("TANDEM_DATABASE_URL", None)
        if database_url:
            self.env["TANDEM_DATABASE_URL"] = database_url
        home.mkdir(parents=True, exist_ok=True)
        if models_from is not None and models_from.is_dir() and not (home / "models").exists():
            (home / "models").symlink_to(models_from)
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = home / "server.log"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout_s: float = 300.0) -> float:
        """Start the server and wait until it answers; returns the seconds that took."""
        tandem = Path(sys.executable).parent / "tandem"
        started = time.perf_counter()
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [str(tandem), "serve", "--host", "127.0.0.1", "--port", str(self.port)],
                env=self.env,
                stdout=log,
                stderr=log,
            )
        headers = {"Authorization": f"Bearer {self.admin_key}"}
        deadline = time.monotonic() + timeout_s
        with httpx.Client(base_url=self.base, headers=headers, timeout=5) as client:
            while True:
                try:
                    if client.get("/api/auth/me").status_code == 200:
                        return time.perf_counter() - started
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    self.stop()
                    tail = self.log.read_text(errors="replace")[-3000:]
                    raise RuntimeError(f"tandem serve did not start:\n{tail}")
                time.sleep(0.2)

    def kill(self) -> None:
        """SIGKILL: no shutdown handler, no flush, nothing the process could still do."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()

    def __enter__(self) -> TandemProcess:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
