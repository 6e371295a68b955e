"""A LoRA adapter version served by its base's `OnnxEngine` (`tandem.engines.setup` makes one
per adapter version whose base has the ONNX model).

    engine = AdapterEngine(base_engine, "my-lora-v1", load_adapter_chain(dirs, base.lora_sites))
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence

from tandem.core.generation import SamplingParams
from tandem.core.messages import Message
from tandem.engines.base import Chunk, EncodedPrompt, Engine, ModelInfo
from tandem.engines.onnx import OnnxEngine
from tandem.engines.onnx_lora import AdapterWeights


class AdapterEngine(Engine):
    """The base's session, weights, tokenizer and batch; only the adapter's low-rank branches
    are its own (its memory is the adapter's: docs/benchmarks/adapters.json). Closing it
    unloads the adapter, not the base."""

    backend = "onnx"

    def __init__(self, base: OnnxEngine, model_id: str, weights: AdapterWeights) -> None:
        super().__init__(model_id)
        self.base = base
        self.max_context = base.max_context
        base.serve_adapters()
        base.adapters.add(model_id, weights)

    @property
    def info(self) -> ModelInfo:
        return ModelInfo(id=self.model_id, backend=self.backend)

    def render_prompt(self, messages: Sequence[Message], continue_final: bool = False) -> str:
        return self.base.render_prompt(messages, continue_final)

    def tokenize(self, text: str) -> list[int]:
        return self.base.tokenize(text)

    async def stream(
        self, prompt: EncodedPrompt, params: SamplingParams
    ) -> AsyncGenerator[Chunk, None]:
        async for chunk in self.base.stream_with(prompt, params, adapter=self.model_id):
            yield chunk

    def close(self) -> None:
        self.base.adapters.remove(self.model_id)
