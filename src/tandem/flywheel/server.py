"""A real `tandem serve` subprocess on a free loopback port: the flywheel's server, and the one
the benchmarks and tests start over HTTP.

    home = prepare_home(Path("/tmp/fw-home"), default_models_from())  # links, not copies
    server = start_server(home)                                       # started and answering
    server.base, server.admin_key; server.stop()

    with TandemProcess(home, database_url=url) as server:   # starts, waits until it answers
        server.kill()                                       # SIGKILL, as a crash would
        server.start()                                      # the same home and database again

The server is `python -m tandem serve` from this interpreter, so it is the installed tandem,
checkout or not. Preparing the embedded model takes about a minute on a fresh home; a home can
instead link versions prepared earlier (`prepare_home(home, models_from)`, or
$TANDEM_FLYWHEEL_MODELS_FROM through `default_models_from()`). The flywheel's server runs with
rate limits off: hundreds of simulated users share one loopback address and one process.
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

from tandem.core.offline import OFFLINE_ENV

MODELS_FROM_ENV = "TANDEM_FLYWHEEL_MODELS_FROM"
SERVER_ENV = {
    "TANDEM_RATE_GENERATION": "off",
    "TANDEM_RATE_GENERATION_PER_KEY": "off",
    # Simulated users never read chat titles: naming each chat would spend the turn's CPU.
    "TANDEM_CHAT_TITLES": "0",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TandemProcess:
    """`tandem serve` on 127.0.0.1 with its own admin key; its output goes to home/server.log.
    `models_from`: a directory of prepared models that home/models becomes a link to (when it
    exists and home/models does not), as the benchmarks do; None leaves home/models alone."""

    def __init__(
        self,
        home: Path,
        database_url: str | None = None,
        extra_env: dict[str, str] | None = None,
        models_from: Path | None = None,
        admin_key: bool = True,
    ) -> None:
        """`admin_key=False`: no bootstrap admin, so the first account to sign up is the
        admin (the way a new install starts); readiness is then asked of /api/auth/csrf."""
        self.home = home
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.admin_key = "tk-" + secrets.token_urlsafe(30)
        self.env = {
            **os.environ,
            "TANDEM_HOME": str(home),
            "TANDEM_ADMIN_API_KEY": self.admin_key,
            **OFFLINE_ENV,
            **(extra_env or {}),
        }
        if not admin_key:
            del self.env["TANDEM_ADMIN_API_KEY"]
        self.ready_path = "/api/auth/me" if admin_key else "/api/auth/csrf"
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
        # `-m tandem` with this interpreter, not a `tandem` script looked up next to it: the
        # same installed package wherever pip put the scripts.
        command = [sys.executable, "-m", "tandem", "serve", "--host", "127.0.0.1"]
        started = time.perf_counter()
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [*command, "--port", str(self.port)], env=self.env, stdout=log, stderr=log
            )
        headers = {"Authorization": f"Bearer {self.admin_key}"}
        deadline = time.monotonic() + timeout_s
        with httpx.Client(base_url=self.base, headers=headers, timeout=5) as client:
            while True:
                try:
                    if client.get(self.ready_path).status_code == 200:
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


def default_models_from() -> Path | None:
    """The directory of prepared models named by $TANDEM_FLYWHEEL_MODELS_FROM (e.g. the test
    suite's `.cache/test-models/models`), or None when it is unset or empty. A name that is
    not a directory is an error, not a silent minute of preparing the model again."""
    value = os.environ.get(MODELS_FROM_ENV, "").strip()
    if not value:
        return None
    path = Path(value).expanduser()
    if not path.is_dir():
        raise NotADirectoryError(f"${MODELS_FROM_ENV} is {value!r}, which is not a directory")
    return path


def prepare_home(home: Path, models_from: Path | None = None) -> Path:
    """A TANDEM_HOME with a real models/ directory. With `models_from`, models/ links every
    version prepared there (saves the minute of preparing the embedded model) while the
    versions trained during the turn are written into this home, never into `models_from`;
    `tandem serve` prepares what is missing."""
    models = home / "models"
    models.mkdir(parents=True, exist_ok=True)
    if models_from is not None:
        if not models_from.is_dir():
            raise NotADirectoryError(f"models_from {models_from} is not a directory")
        for source in sorted(models_from.iterdir()):
            target = models / source.name
            if source.is_dir() and not target.exists() and not target.is_symlink():
                target.symlink_to(source.resolve())
    return home


def start_server(home: Path, timeout_s: float = 300.0) -> TandemProcess:
    """A started `TandemProcess` with the flywheel's environment (call `.stop()`); its log is
    `home/server.log`."""
    process = TandemProcess(home, extra_env=dict(SERVER_ENV), models_from=None)
    process.start(timeout_s=timeout_s)
    return process
