"""How long each engine takes to install: pip wheel install time, or llama.cpp's compile time.

Install time is `pip install --no-deps` of the engine's own wheels (the versions in this venv,
fetched once through pip's configured index) into an empty directory, so it does not depend on
what happens to be installed already. Measured once and kept in the bench cache
(`--remeasure-install` measures again). llama-cpp-python has no wheel on PyPI: its figure is
the compile time `bench/ensure-llama-cpp.sh` recorded when it built the cached wheel.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.artifacts import bench_cache

# The wheels each engine needs at run time beyond the Python standard stack.
ENGINE_WHEELS: dict[str, tuple[str, ...]] = {
    "transformers": ("torch", "transformers", "tokenizers", "safetensors"),
    "ctranslate2": ("ctranslate2",),
    "ortgenai": ("onnxruntime-genai", "onnxruntime"),
    "tandem": ("onnxruntime", "tokenizers"),
    "tandem-alt": ("onnxruntime", "tokenizers"),
}
LLAMA_CPP_VERSION = "0.3.36"
# Our build of the cached wheel, before the timing file existed: ~17 min on these 2 cores.
LLAMA_CPP_REPORTED_COMPILE_S = 17 * 60


def _find_wheel(into: Path, name: str, version: str) -> list[Path]:
    # Wheel file names normalise the project name to lowercase with underscores.
    prefix = f"{name.replace('-', '_')}-{version}".lower()
    return sorted(p for p in into.glob("*.whl") if p.name.lower().startswith(prefix))


def _wheel_files(packages: tuple[str, ...], into: Path) -> list[Path]:
    files = []
    for name in packages:
        version = importlib.metadata.version(name)
        found = _find_wheel(into, name, version)
        if not found:
            subprocess.run(
                [sys.executable, "-m", "pip", "download", "-q", "--no-deps",
                 f"{name}=={version}", "-d", str(into)],
                check=True,
            )  # fmt: skip
            found = _find_wheel(into, name, version)
        files.append(found[0])
    return files


def _time_install(wheels: list[Path]) -> float:
    with tempfile.TemporaryDirectory() as target:
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", target,
             *map(str, wheels)],
            check=True,
        )  # fmt: skip
        return time.perf_counter() - start


def llama_cpp_build() -> dict:
    wheels = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "tandem" / "wheels"
    record = wheels / f"llama_cpp_python-{LLAMA_CPP_VERSION}.build.json"
    if record.exists():
        data = json.loads(record.read_text())
        return {"compile_s": data["compile_s"], "compile_measured": True}
    return {"compile_s": LLAMA_CPP_REPORTED_COMPILE_S, "compile_measured": False}


def install_times(engines: list[str], *, remeasure: bool) -> dict[str, dict]:
    """Per engine: {install_s, wheels_mb, packages} or the llama.cpp compile record."""
    cache_file = bench_cache() / "install-times.json"
    cached = {} if remeasure or not cache_file.exists() else json.loads(cache_file.read_text())
    wheel_dir = bench_cache() / "wheels"
    wheel_dir.mkdir(parents=True, exist_ok=True)
    out: dict[str, dict] = {}
    for engine in engines:
        if engine == "llamacpp":
            out[engine] = {"packages": [f"llama-cpp-python=={LLAMA_CPP_VERSION} (sdist)"]}
            out[engine].update(llama_cpp_build())
            continue
        packages = ENGINE_WHEELS[engine]
        key = ",".join(f"{p}=={importlib.metadata.version(p)}" for p in packages)
        if key not in cached:
            wheels = _wheel_files(packages, wheel_dir)
            cached[key] = {
                "install_s": round(_time_install(wheels), 1),
                "wheels_mb": round(sum(w.stat().st_size for w in wheels) / 2**20, 1),
            }
        out[engine] = {"packages": key.split(","), **cached[key]}
    cache_file.write_text(json.dumps(cached, indent=2))
    return out
