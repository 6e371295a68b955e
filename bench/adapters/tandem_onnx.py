"""tandem's default engine, `OnnxEngine`, measured through `Engine.stream` like the server uses it.

Concurrency: the engine's own continuous batching; the 16 requests are 16 asyncio tasks that
stream at once, and every decode step runs all active requests as one batch.
`Engine.stream` always stops at EOS (there is no ignore-EOS knob in `SamplingParams`), so the
token counts come from each stream's `usage`; the throughput prompts ask for long answers.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from bench.protocol import Adapter, Request, Result

MODEL_ID = "smollm2-135m-instruct"


class TandemOnnxAdapter(Adapter):
    key = "tandem"
    label = "tandem OnnxEngine (default)"
    concurrency_mode = "continuous batching (own scheduler, one decode step for all streams)"
    can_ignore_eos = False

    def model_dir(self) -> Path:
        return self.artifacts.onnx_default_dir

    @property
    def precision(self) -> str:
        return self.artifacts.onnx_default_precision

    @property
    def weights(self) -> str:
        return f"{self.precision} (og builder, MatMulNBits)"

    def load(self) -> None:
        from tandem.core.generation import SamplingParams
        from tandem.core.messages import Message
        from tandem.engines.onnx import OnnxEngine

        self.Message = Message
        self.SamplingParams = SamplingParams
        self.engine = OnnxEngine(self.model_dir(), MODEL_ID, max_batch=16, threads=self.threads)

    def rendered(self, request: Request) -> str:
        return self.engine.render_prompt(self._messages(request))

    def _messages(self, request: Request) -> list:
        return [self.Message.text(m["role"], m["content"]) for m in request.messages]

    async def _stream(self, request: Request, max_new_tokens: int, start: float) -> Result:
        # Greedy and no repetition penalty: the same decoding as every other engine here.
        params = self.SamplingParams(
            temperature=0.0, top_p=1.0, max_tokens=max_new_tokens, repetition_penalty=1.0
        )
        first: float | None = None
        parts: list[str] = []
        n_tokens = 0
        async for chunk in self.engine.stream(self._messages(request), params):
            if chunk.text and first is None:
                first = time.perf_counter()
            parts.append(chunk.text)
            if chunk.usage is not None:
                n_tokens = chunk.usage.completion_tokens
        end = time.perf_counter()
        return Result(
            text="".join(parts),
            n_tokens=n_tokens,
            ttft_s=(first or end) - start,
            latency_s=end - start,
        )

    def generate(self, request: Request, max_new_tokens: int, ignore_eos: bool) -> Result:
        return asyncio.run(self._stream(request, max_new_tokens, time.perf_counter()))

    def generate_concurrent(self, requests: list[Request], max_new_tokens: int) -> list[Result]:
        async def all_at_once() -> list[Result]:
            start = time.perf_counter()
            return list(
                await asyncio.gather(*(self._stream(r, max_new_tokens, start) for r in requests))
            )

        return asyncio.run(all_at_once())

    def close(self) -> None:
        self.engine.close()


class TandemOnnxAltAdapter(TandemOnnxAdapter):
    """The same engine on the builder's other precision: what the registry did not choose."""

    key = "tandem-alt"

    def model_dir(self) -> Path:
        if self.artifacts.onnx_alt_dir is None:
            raise RuntimeError("the alternative ONNX model was not built")
        return self.artifacts.onnx_alt_dir

    @property
    def precision(self) -> str:
        return self.artifacts.onnx_alt_precision

    @property
    def label(self) -> str:
        return f"tandem OnnxEngine, {self.precision} model"
