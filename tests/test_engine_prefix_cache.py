"""The prefix cache: a conversation's next turn (or a regenerate) prefills only what is new,
and answers exactly as without the cache.

    .venv/bin/python -m pytest -q tests/test_engine_prefix_cache.py
"""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from tandem.core import Message, SamplingParams
from tandem.engines.prefix_cache import PrefixCache, common_prefix

GREEDY = SamplingParams(temperature=0, max_tokens=24, repetition_penalty=1.0)
PASSAGE = "The river runs past the old mill and under the stone bridge. " * 12


def _kv(n: int) -> np.ndarray:
    return np.zeros((2, 2, 1, n, 4), np.float32)


def test_the_longest_common_prefix_wins_and_the_budget_evicts_the_oldest():
    cache = PrefixCache(budget_bytes=_kv(10).nbytes * 3)
    cache.put([1, 2, 3, 4], _kv(4))
    cache.put([1, 2, 9, 9, 9], _kv(5))
    entry, n = cache.longest([1, 2, 3, 4, 5, 6])
    assert n == 4 and entry.ids.tolist() == [1, 2, 3, 4]
    assert cache.longest([7, 7])[1] == 0
    # A stored sequence that extends an entry replaces it.
    cache.put([1, 2, 3, 4, 5], _kv(5))
    assert len(cache) == 2
    # Over budget: the least recently used goes first ([1, 2, 9, ...] was not used since).
    cache.put(list(range(100, 120)), _kv(20))
    assert cache.longest([1, 2, 9])[1] == 2  # only via [1, 2, 3, 4, 5] now
    assert cache.nbytes <= cache.budget_bytes
    assert common_prefix(np.array([1, 2, 3]), np.array([1, 2, 3])) == 3


def test_entries_match_only_requests_of_the_same_adapter():
    """Keys and values computed with an adapter's weights are not the base's."""
    cache = PrefixCache(budget_bytes=_kv(10).nbytes * 4)
    cache.put([1, 2, 3, 4], _kv(4), namespace="lora-v1")
    assert cache.longest([1, 2, 3, 4, 5])[1] == 0  # the base sees nothing
    assert cache.longest([1, 2, 3, 4, 5], "lora-v2")[1] == 0
    assert cache.longest([1, 2, 3, 4, 5], "lora-v1")[1] == 4
    # The base's longer copy of the same tokens does not replace the adapter's.
    cache.put([1, 2, 3, 4, 5], _kv(5))
    assert len(cache) == 2
    assert cache.longest([1, 2, 3], "lora-v1")[0].namespace == "lora-v1"


@pytest.mark.model
def test_a_conversation_reuses_its_history_and_answers_the_same(prepared_model):
    from tandem.engines.onnx import OnnxEngine

    async def turns(engine: OnnxEngine) -> list[str]:
        history: list[Message] = []
        texts = []
        for i in range(3):
            history.append(Message.text("user", f"Part {i}. {PASSAGE} Summarise it."))
            completion = await engine.complete(history, GREEDY)
            texts.append(completion.text)
            history.append(Message.text("assistant", completion.text))
        # A regenerate: the same prompt again.
        texts.append((await engine.complete(history[:-1], GREEDY)).text)
        return texts

    plain = OnnxEngine(prepared_model.onnx_dir, "plain", prefix_cache_mb=0)
    cached = OnnxEngine(prepared_model.onnx_dir, "cached")
    try:
        expected = asyncio.run(turns(plain))
        got = asyncio.run(turns(cached))
    finally:
        plain.close()
        cached.close()
    assert got == expected
    assert plain.reused_prefix_tokens == 0
    # Turns 2 and 3 reused their history; the regenerate reused all but one token.
    assert cached.reused_prefix_tokens > 3 * 150
