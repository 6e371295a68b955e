"""The served ONNX weights are the GGUF's: Q4_1 layers and the Q8_0 head put back exactly.

The builder re-rounds the dequantized checkpoint onto its own int8 grid (relative error 0.55%
on this model); `tandem.registry.onnx_weights` rewrites its initializers so that the default
engine multiplies by the weights llama.cpp multiplies by.
"""

from __future__ import annotations

import numpy as np
import pytest

from tandem.registry.onnx_weights import dequantize_nbits, exact_q8_0, fit_q4_1_in_uint8

BLOCK = 32


def q4_1_weights(rng: np.random.Generator, n: int, nb: int) -> np.ndarray:
    """Weights exactly as a Q4_1 GGUF dequantizes them: fp16 scale and minimum per block."""
    q = rng.integers(0, 16, (n, nb, BLOCK)).astype(np.float32)
    q[..., 0], q[..., 1] = 0, 15  # Q4_1 codes span the block: its min and max
    d = rng.uniform(0.002, 0.03, (n, nb)).astype(np.float16).astype(np.float32)
    # Weights centred on zero: the minimum sits 5-10 steps below it (as in SmolLM2's blocks).
    m = (-d * rng.uniform(5, 10, (n, nb))).astype(np.float16).astype(np.float32)
    return (d[..., None] * q + m[..., None]).reshape(n, nb * BLOCK)


def builder_like_fallback(w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Plain asymmetric uint8 round-to-nearest, as the builder encodes a block."""
    n, k = w.shape
    blocks = w.reshape(n, k // BLOCK, BLOCK)
    lo, hi = np.minimum(blocks.min(-1), 0), np.maximum(blocks.max(-1), 0)
    scale = (hi - lo) / 255
    zp = np.clip(np.rint(-lo / scale), 0, 255)
    codes = np.clip(np.rint(blocks / scale[..., None]) + zp[..., None], 0, 255)
    return codes.astype(np.uint8), scale.astype(np.float32), zp.astype(np.uint8)


def test_q4_1_blocks_are_served_to_a_few_hundredths_of_their_step() -> None:
    rng = np.random.default_rng(0)
    w = q4_1_weights(rng, 64, 18)
    fallback = builder_like_fallback(w)
    codes, scales, zero_points, worst = fit_q4_1_in_uint8(w, BLOCK, fallback)
    served = dequantize_nbits(codes, scales, zero_points, 8, BLOCK, 64, 18 * BLOCK)
    step = (w.reshape(64, 18, BLOCK).max(-1) - w.reshape(64, 18, BLOCK).min(-1)) / 15
    error_in_steps = np.abs(served - w).reshape(64, 18, BLOCK).max(-1) / step
    # On the prepared model the worst block is 0.03 of a step off (format.json of the bench).
    assert worst < 0.05
    assert error_in_steps.max() < 0.05
    # The builder's own rounding of the same blocks is off by up to 1/34 of a step.
    rounded = dequantize_nbits(*fallback, 8, BLOCK, 64, 18 * BLOCK)
    builder_error = np.abs(rounded - w).reshape(64, 18, BLOCK).max(-1) / step
    assert builder_error.mean() > 3 * error_in_steps.mean()


def test_blocks_off_the_grid_keep_the_builders_encoding() -> None:
    rng = np.random.default_rng(1)
    w = q4_1_weights(rng, 8, 4)
    w[:4] += rng.normal(0, 1e-3, (4, 4 * BLOCK)).astype(np.float32)  # a trained update
    fallback = builder_like_fallback(w)
    codes, scales, zero_points, _ = fit_q4_1_in_uint8(w, BLOCK, fallback)
    assert np.array_equal(codes[:4], fallback[0][:4])
    assert np.array_equal(scales[:4], fallback[1][:4])
    assert np.array_equal(zero_points[:4], fallback[2][:4])
    assert not np.array_equal(codes[4:], fallback[0][4:])


def test_the_q8_0_head_is_served_bit_for_bit_and_anything_else_is_refused() -> None:
    rng = np.random.default_rng(2)
    q = rng.integers(-127, 128, (16, 4, BLOCK)).astype(np.float32)
    q[..., 0] = 127
    d = rng.uniform(1e-4, 1e-2, (16, 4)).astype(np.float16).astype(np.float32)
    w = (q * d[..., None]).reshape(16, 4 * BLOCK)
    codes, scales = exact_q8_0(w, BLOCK)
    served = dequantize_nbits(codes, scales, None, 8, BLOCK, 16, 4 * BLOCK)
    assert np.array_equal(served, w)
    with pytest.raises(ValueError, match="Q8_0"):
        exact_q8_0(w + 1e-5, BLOCK)


@pytest.mark.model
def test_the_prepared_model_serves_the_ggufs_weights(prepared_model) -> None:
    from tandem.registry.onnx_weights import load_hf_weights, weight_error

    error = weight_error(prepared_model.onnx_dir, load_hf_weights(prepared_model.hf_dir))
    # The builder's symmetric int8 grid was 0.0055 (layers) and 0.0053 (head) off.
    assert error["layers"] is not None and error["layers"] < 0.003
    assert error["lm_head"] == 0.0
