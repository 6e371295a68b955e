"""The flywheel's server: a real `tandem serve` subprocess on a free loopback port.

    home = prepare_home(Path("/tmp/fw-home"))      # models linked per version, not copied
    server = start_server(home)                     # bench/server.py's TandemProcess
    server.base, server.admin_key; server.stop()

The process helper is bench/server.py's `TandemProcess` (the benchmarks' one), so this needs a
source checkout of tandem. Rate limits are off: hundreds of simulated users share one loopback
address and one process. The home's `models/` directory is real, with one link per version
already prepared in the shared test-model cache, so versions trained during the turn are
written to this home and never into that cache.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

import tandem

REPO = Path(tandem.__file__).resolve().parents[2]
PREPARED_MODELS = REPO / ".cache" / "test-models" / "models"
SERVER_ENV = {
    "TANDEM_RATE_GENERATION": "off",
    "TANDEM_RATE_GENERATION_PER_KEY": "off",
    # Simulated users never read chat titles: naming each chat would spend the turn's CPU.
    "TANDEM_CHAT_TITLES": "0",
    "HF_HUB_OFFLINE": "1",
}


def _tandem_process_class() -> Any:
    try:
        module = importlib.import_module("bench.server")
    except ModuleNotFoundError:
        if not (REPO / "bench" / "server.py").exists():
            raise RuntimeError(
                "tandem flywheel run needs a source checkout (it starts the server with "
                "bench/server.py)"
            ) from None
        sys.path.insert(0, str(REPO))
        module = importlib.import_module("bench.server")
    return module.TandemProcess


def prepare_home(home: Path, models_from: Path | None = PREPARED_MODELS) -> Path:
    """A TANDEM_HOME whose models/ links every already-prepared version (saves the minute of
    preparing the embedded model); `tandem serve` prepares what is missing."""
    models = home / "models"
    models.mkdir(parents=True, exist_ok=True)
    if models_from is not None and models_from.is_dir():
        for source in sorted(models_from.iterdir()):
            target = models / source.name
            if source.is_dir() and not target.exists() and not target.is_symlink():
                target.symlink_to(source.resolve())
    return home


def start_server(home: Path, timeout_s: float = 300.0) -> Any:
    """A started `TandemProcess` (call `.stop()`); its log is `home/server.log`."""
    process = _tandem_process_class()(home, extra_env=dict(SERVER_ENV), models_from=None)
    process.start(timeout_s=timeout_s)
    return process
