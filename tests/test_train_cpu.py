"""The CPU training speed-ups (tandem.train.cpu) change how fast a step runs, never what it
computes: the compact LM head gives TRL's log-probabilities and gradients exactly, on a tiny
random Llama (no real model needed)."""

from __future__ import annotations

import contextlib

import pytest
import torch

from tandem.train.config import resolve_config
from tandem.train.cpu import compact_lm_head, native_bf16


def _tiny_model() -> torch.nn.Module:
    from transformers import LlamaConfig, LlamaForCausalLM
    from trl.trainer.utils import add_fused_lm_head

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=97,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
    )
    model = LlamaForCausalLM(config)
    add_fused_lm_head(model)
    return model


def _log_probs_and_grads(model: torch.nn.Module, compact: bool) -> tuple[torch.Tensor, ...]:
    torch.manual_seed(1)
    ids = torch.randint(0, 97, (3, 12))
    labels = ids.clone()
    labels[:, :5] = -100  # a prompt of 5 tokens: only the completion is scored
    labels[2, 9:] = -100  # and a shorter, padded row
    model.zero_grad()
    with compact_lm_head() if compact else contextlib.nullcontext():
        out = model(input_ids=ids, labels=labels, fused_lm_head=True)
    mask = labels[:, 1:] != -100
    per_token = out.log_probs[:, -mask.size(1) :]
    per_token.sum().backward()
    grads = torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])
    return per_token[mask].detach(), grads


def test_compact_lm_head_gives_the_same_log_probs_and_gradients():
    model = _tiny_model()
    plain = _log_probs_and_grads(model, compact=False)
    compact = _log_probs_and_grads(model, compact=True)
    torch.testing.assert_close(compact[0], plain[0])
    torch.testing.assert_close(compact[1], plain[1])


def test_compact_lm_head_restores_trl_afterwards():
    from trl.trainer import utils as trl_utils

    original = trl_utils._use_triton
    with compact_lm_head():
        assert trl_utils._use_triton(torch.device("cpu")) is True
    assert trl_utils._use_triton is original
    with pytest.raises(RuntimeError), compact_lm_head():
        raise RuntimeError("a failing step")
    assert trl_utils._use_triton is original


def test_precision_and_checkpointing_follow_the_machine():
    from tandem.train.run import _gradient_checkpointing, _precision

    auto = resolve_config("dpo")
    assert _precision(auto) == (
        torch.cuda.is_bf16_supported() if torch.cuda.is_available() else native_bf16()
    )
    assert not _precision(resolve_config("dpo", overrides={"precision": "fp32"}))
    # A CPU has the memory: activations are kept, not recomputed (TRL's default is to recompute).
    assert _gradient_checkpointing(auto) == torch.cuda.is_available()
    forced = resolve_config("dpo", overrides={"gradient_checkpointing": True})
    assert _gradient_checkpointing(forced) is True
