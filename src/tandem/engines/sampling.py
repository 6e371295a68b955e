"""Choosing the next token from logits: greedy, temperature, nucleus, repetition penalty."""

from __future__ import annotations

import numpy as np

from tandem.core.generation import SamplingParams

# Nucleus sampling looks at the best NUCLEUS_POOL candidates only: sorting a 49k vocabulary for
# every token of every stream costs milliseconds, and the tail beyond the top 64 holds
# negligible mass after any top_p < 1.
NUCLEUS_POOL = 64


def apply_repetition_penalty(logits: np.ndarray, seen: np.ndarray, penalty: float) -> None:
    """The CTRL/transformers rule, in place: seen tokens' positive logits shrink, negative grow."""
    if penalty == 1.0 or seen.size == 0:
        return
    values = logits[seen]
    logits[seen] = np.where(values > 0, values / penalty, values * penalty)


def sample_token(
    logits: np.ndarray, params: SamplingParams, rng: np.random.Generator, seen: np.ndarray
) -> int:
    """Pick one token id from a row of logits (modified in place)."""
    apply_repetition_penalty(logits, seen, params.repetition_penalty)
    if params.temperature <= 0:
        return int(np.argmax(logits))
    scaled = logits / params.temperature
    if params.top_p < 1.0:
        pool = np.argpartition(scaled, -NUCLEUS_POOL)[-NUCLEUS_POOL:]
        pool = pool[np.argsort(scaled[pool])[::-1]]
        probs = np.exp(scaled[pool] - scaled[pool[0]])
        probs /= probs.sum()
        keep = int(np.searchsorted(np.cumsum(probs), params.top_p)) + 1
        probs = probs[:keep] / probs[:keep].sum()
        return int(pool[rng.choice(keep, p=probs)])
    probs = np.exp(scaled - scaled.max())
    cumulative = np.cumsum(probs)
    return int(np.searchsorted(cumulative, rng.random() * cumulative[-1]))
