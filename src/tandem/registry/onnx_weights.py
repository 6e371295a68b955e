"""The served ONNX model's weights, made the GGUF's own.

The embedded model ships as a Q4_1 GGUF (4-bit codes q, per block of 32 a scale d and a
minimum m: w = d * q + m) whose token embedding, tied to the LM head, is Q8_0 (w = d * q,
q in -127..127). onnxruntime-genai's builder quantizes the dequantized fp32 checkpoint again,
onto its own int8 grid, so every served weight is a rounding of a rounding.
`fit_to_gguf_grid` rewrites the built model's MatMulNBits initializers so the served weights
are the GGUF's (to ~1e-3 of a Q4_1 step; the head bit for bit). Measured by
`python -m bench.engine_quality` (docs/architecture.md, "Where the int8 quality goes"): mean
KL divergence from fp32 0.0046 -> 0.0030 on the project's own chat text, as close to fp32 as
llama.cpp on the same GGUF (0.0028), at the same speed.

A block that is not on the Q4_1 grid (a trained version's merged weights), or a head that is
not Q8_0, keeps the builder's encoding.

    python -m tandem.registry.onnx_weights ONNX_DIR HF_DIR   # in place (a subprocess of prep)
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from pathlib import Path

import numpy as np

Q4_1_LEVELS = 15  # Q4_1 codes are 0..15: w = d * q + m, per block of 32


def load_hf_weights(hf_dir: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    weights = load_file(str(hf_dir / "model.safetensors"))
    # Tied embeddings: the checkpoint stores the table once, and it is also the LM head.
    weights.setdefault("lm_head.weight", weights["model.embed_tokens.weight"])
    return weights


_LAYER_NODE = re.compile(r"/model/layers\.(\d+)/(attn|mlp)/(\w+?)/MatMul")
_HF_PROJ = {
    "o_proj": "self_attn.o_proj",
    "gate_proj": "mlp.gate_proj",
    "up_proj": "mlp.up_proj",
    "down_proj": "mlp.down_proj",
}


def hf_weight_for(node_name: str, weights: dict[str, np.ndarray]) -> np.ndarray | None:
    """The fp32 weight [N, K] a MatMul(NBits) node was built from, or None if not a weight."""
    if node_name.startswith("/lm_head/"):
        return weights["lm_head.weight"]
    match = _LAYER_NODE.match(node_name)
    if match is None:
        return None
    layer, _, proj = match.groups()
    prefix = f"model.layers.{layer}."
    if proj == "qkv_proj":  # the builder packs q, k and v into one MatMul, in that order
        return np.concatenate(
            [weights[f"{prefix}self_attn.{p}_proj.weight"] for p in ("q", "k", "v")]
        )
    return weights[f"{prefix}{_HF_PROJ[proj]}.weight"]


def exact_q8_0(w: np.ndarray, block: int) -> tuple[np.ndarray, np.ndarray]:
    """Q8_0-dequantized weights back to their codes: (uint8 codes [N, nb, block], scales).

    Q8_0 is d * q with d = amax / 127, so the largest magnitude of each block is exactly
    127 * d. MatMulNBits' 8-bit format without zero points is scale * (code - 128), so code =
    q + 128 with scale d reproduces every weight bit for bit. The builder instead picks
    scale = amax / 128 (MLAS's signed convention) and rounds every weight onto that grid.
    """
    n, k = w.shape
    blocks = w.reshape(n, k // block, block)
    d = np.abs(blocks).max(axis=-1) / 127
    q = np.rint(blocks / np.where(d > 0, d, 1)[..., None])
    if not np.array_equal(q * d[..., None], blocks):
        raise ValueError("the LM head is not on a Q8_0 grid: cannot rewrite it exactly")
    return (q + 128).astype(np.uint8), d.astype(np.float32)


def fit_q4_1_in_uint8(
    w: np.ndarray, block: int, fallback: tuple[np.ndarray, np.ndarray, np.ndarray]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Q4_1-dequantized weights as 8-bit codes, scales and zero points, nearly exactly.

    A Q4_1 block is d * q + m (q = 0..15, m the block minimum, any fp16). MatMulNBits
    dequantizes scale * (code - zero_point) with an *integer* zero point, so m itself can only
    be hit when m / scale is an integer. With scale = d / k the codes are k * q (+ offset), so
    any k <= 17 keeps them within 0..255; the builder effectively uses k = 17 (scale =
    range / 255) and rounds m by up to d / 34. Trying every k and keeping the one whose
    k * m / d is closest to an integer cuts that error to a rational-approximation residue.
    Blocks that are not Q4_1 (or do not fit) keep the builder's `fallback` encoding.
    Returns codes [N, nb, block], scales [N, nb], zero points [N, nb] and the worst offset
    error as a fraction of the block's Q4_1 step.
    """
    n, k_dim = w.shape
    nb = k_dim // block
    blocks = w.reshape(n, nb, block).astype(np.float64)
    m = blocks.min(axis=-1)
    d = (blocks.max(axis=-1) - m) / Q4_1_LEVELS
    safe_d = np.where(d > 0, d, 1.0)
    q = np.rint((blocks - m[..., None]) / safe_d[..., None])
    is_q4_1 = (d > 0) & (np.abs((blocks - m[..., None]) / safe_d[..., None] - q).max(-1) < 1e-3)
    best_err = np.full((n, nb), np.inf)
    best_k = np.zeros((n, nb), dtype=np.int64)
    best_t = np.zeros((n, nb), dtype=np.int64)
    for k in range(1, 256 // Q4_1_LEVELS + 1):
        t = np.rint(m * k / safe_d).astype(np.int64)
        zero_point, offset = np.maximum(-t, 0), np.maximum(t, 0)
        fits = (zero_point <= 255) & (offset + Q4_1_LEVELS * k <= 255)
        err = np.abs(m - t * safe_d / k)
        better = fits & (err < best_err)
        best_err = np.where(better, err, best_err)
        best_k = np.where(better, k, best_k)
        best_t = np.where(better, t, best_t)
    use = is_q4_1 & np.isfinite(best_err)
    kk = np.where(use, best_k, 1)
    codes = kk[..., None] * q + np.maximum(best_t, 0)[..., None]
    codes = np.where(use[..., None], codes, fallback[0]).astype(np.uint8)
    scales = np.where(use, d / kk, fallback[1]).astype(np.float32)
    zero_points = np.where(use, np.maximum(-best_t, 0), fallback[2]).astype(np.uint8)
    worst = float((best_err[use] / d[use]).max()) if use.any() else float("nan")
    return codes, scales, zero_points, worst


def fit_to_gguf_grid(
    model_dir: Path,
    hf_dir: Path,
    *,
    exact_head: bool,
    fit_body: bool,
    accuracy_overrides: tuple[tuple[str, int], ...] = (),
) -> dict[str, float]:
    """Replace int8 MatMulNBits initializers in place with exact/fitted encodings; return the
    worst fitted offset error, in Q4_1 steps (d)."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(model_dir / "model.onnx"))  # external data included
    inits = {t.name: t for t in model.graph.initializer}
    weights = load_hf_weights(hf_dir)
    worst = 0.0

    def array(name: str) -> np.ndarray:
        return numpy_helper.to_array(inits[name])

    def put(name: str, value: np.ndarray) -> None:
        inits[name].CopyFrom(numpy_helper.from_array(value.reshape(array(name).shape), name))

    for node in model.graph.node:
        if node.op_type != "MatMulNBits":
            continue
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        for part, level in accuracy_overrides:
            if part in node.name:
                next(a for a in node.attribute if a.name == "accuracy_level").i = level
        w = hf_weight_for(node.name, weights)
        if w is None or attrs["bits"] != 8:
            continue
        block, n, nb = attrs["block_size"], attrs["N"], attrs["K"] // attrs["block_size"]
        if exact_head and node.name.startswith("/lm_head/"):
            try:
                codes, scales = exact_q8_0(w, block)
            except ValueError:  # not Q8_0 (a retrained head): the builder's encoding stays
                continue
            put(node.input[1], codes)
            put(node.input[2], scales)
            if len(node.input) > 3 and node.input[3]:
                # No zero points: the 8-bit default, 128, is Q8_0's zero.
                model.graph.initializer.remove(inits.pop(node.input[3]))
                if len(node.input) == 4:
                    del node.input[3]
                else:
                    node.input[3] = ""
        elif fit_body and not node.name.startswith("/lm_head/"):
            if len(node.input) < 4 or not node.input[3]:
                raise ValueError(f"{node.name}: fitting needs an asymmetric (zero point) build")
            fallback = (
                array(node.input[1]).reshape(n, nb, block),
                array(node.input[2]).reshape(n, nb),
                array(node.input[3]).reshape(n, nb),
            )
            codes, scales, zero_points, err = fit_q4_1_in_uint8(w, block, fallback)
            worst = max(worst, err)
            put(node.input[1], codes)
            put(node.input[2], scales)
            put(node.input[3], zero_points)
    # Written beside, then moved over: onnx appends external data to an existing file.
    with tempfile.TemporaryDirectory(dir=model_dir) as tmp:
        onnx.save_model(
            model,
            str(Path(tmp) / "model.onnx"),
            save_as_external_data=True,
            all_tensors_to_one_file=True,
            location="model.onnx.data",
        )
        for name in ("model.onnx", "model.onnx.data"):
            os.replace(Path(tmp) / name, model_dir / name)
    return {"fit_worst_offset_steps": worst} if fit_body else {}


def dequantize_nbits(
    packed: np.ndarray,
    scales: np.ndarray,
    zero_points: np.ndarray | None,
    bits: int,
    block: int,
    n: int,
    k: int,
) -> np.ndarray:
    """A MatMulNBits weight back to fp32 [N, K] (blocks along K, low nibble first)."""
    nb = -(-k // block)
    packed = packed.reshape(n, nb, -1)
    if bits == 8:
        codes = packed.astype(np.float32)
    else:
        codes = np.stack([packed & 0x0F, packed >> 4], axis=-1).reshape(n, nb, block)
        codes = codes.astype(np.float32)
    if zero_points is None:
        zp = np.full((n, nb), 2 ** (bits - 1), dtype=np.float32)
    elif zero_points.dtype != np.uint8 or bits == 8:  # float zero points are never packed
        zp = zero_points.reshape(n, nb).astype(np.float32)
    else:
        z = zero_points.reshape(n, -1)
        zp = np.stack([z & 0x0F, z >> 4], axis=-1).reshape(n, -1)[:, :nb].astype(np.float32)
    w = (codes - zp[..., None]) * scales.reshape(n, nb)[..., None]
    return w.reshape(n, nb * block)[:, :k]


def weight_error(model_dir: Path, weights: dict[str, np.ndarray]) -> dict[str, float | None]:
    """Relative RMS error of the served weights against fp32: layers, and the LM head."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(model_dir / "model.onnx"))
    inits = {t.name: t for t in model.graph.initializer}
    sums = {"layers": [0.0, 0.0], "lm_head": [0.0, 0.0]}
    for node in model.graph.node:
        if node.op_type not in ("MatMul", "MatMulNBits"):
            continue
        ref = hf_weight_for(node.name, weights)
        if ref is None or node.input[1] not in inits:
            continue
        if node.op_type == "MatMul":
            served = numpy_helper.to_array(inits[node.input[1]]).T
        else:
            attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
            zp_name = node.input[3] if len(node.input) > 3 and node.input[3] else None
            served = dequantize_nbits(
                numpy_helper.to_array(inits[node.input[1]]),
                numpy_helper.to_array(inits[node.input[2]]),
                numpy_helper.to_array(inits[zp_name]) if zp_name else None,
                attrs["bits"],
                attrs["block_size"],
                attrs["N"],
                attrs["K"],
            )
        part = "lm_head" if node.name.startswith("/lm_head/") else "layers"
        diff = served.astype(np.float64) - ref
        sums[part][0] += float((diff**2).sum())
        sums[part][1] += float((ref.astype(np.float64) ** 2).sum())
    return {part: (float(np.sqrt(e / r)) if r else None) for part, (e, r) in sums.items()}


def main(argv: list[str] | None = None) -> None:
    onnx_dir, hf_dir = (Path(a) for a in (argv if argv is not None else sys.argv[1:]))
    fit_to_gguf_grid(onnx_dir, hf_dir, exact_head=True, fit_body=True)


if __name__ == "__main__":
    main()
