"""Fake engines that fail the way real ones do, for the security tests of bad input and
failing streams (tests/security/test_stream_failures.py, test_fuzz_openapi.py)."""

from __future__ import annotations

import numpy as np

from fake_engine import FakeEngine


class SeededFakeEngine(FakeEngine):
    """The fake engine, seeding an RNG from the request as the embedded engine does
    (`np.random.default_rng(seed)`), so a seed the engine cannot take fails here too."""

    async def stream(self, messages, params, *args, **kwargs):
        np.random.default_rng(params.seed)
        async for chunk in super().stream(messages, params, *args, **kwargs):
            yield chunk


class BrokenEngine(FakeEngine):
    """Fails with a plain bug (not an EngineError) after `after_tokens` tokens."""

    def __init__(self, model_id: str, after_tokens: int, detail: str = "") -> None:
        super().__init__(model_id, script=["alpha beta gamma"])
        self.after_tokens = after_tokens
        self.detail = detail

    async def stream(self, messages, params, *args, **kwargs):
        sent = 0
        async for chunk in super().stream(messages, params, *args, **kwargs):
            if sent == self.after_tokens:
                raise RuntimeError(f"a bug in the engine: {self.detail}")
            sent += 1
            yield chunk
