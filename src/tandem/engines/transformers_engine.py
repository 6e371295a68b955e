"""The reference engine: transformers on the same fp32 checkpoint that training starts from.

Slower than the default engine (docs/architecture.md) but numerically the reference: the
benchmarks measure other engines' agreement against it. Each request generates in its own
thread, so concurrent requests progress together instead of queueing; `complete_batch` runs a
real padded batch for evals.
"""

from __future__ import annotations

import asyncio
import secrets
import threading
from collections.abc import AsyncGenerator, Sequence
from pathlib import Path

from tandem.core.generation import Completion, SamplingParams, Usage
from tandem.core.messages import Message
from tandem.engines.base import Chunk, EncodedPrompt, Engine, EngineError, ensure_fits, relay
from tandem.engines.text import ChatTemplate, IncrementalDecoder, StopMatcher


class TransformersEngine(Engine):
    backend = "transformers"
    max_context: int  # always known: the checkpoint's position embeddings

    def __init__(self, model_dir: Path, model_id: str, threads: int | None = None) -> None:
        super().__init__(model_id)
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if threads:
            torch.set_num_threads(threads)
        self._torch = torch
        self.model_dir = Path(model_dir)
        self.model = AutoModelForCausalLM.from_pretrained(self.model_dir, dtype=torch.float32)
        self.model.eval()
        self.tokenizer = AutoTokenizer.from_pretrained(self.model_dir)
        self.template = ChatTemplate.from_model_dir(self.model_dir)
        self.max_context = int(getattr(self.model.config, "max_position_embeddings", 2048))

    def render_prompt(self, messages: Sequence[Message], continue_final: bool = False) -> str:
        return self.template.render(messages, continue_final=continue_final)

    def _generate_kwargs(self, params: SamplingParams, seed: int) -> dict:
        self._torch.manual_seed(seed)
        kwargs: dict = {
            "max_new_tokens": params.max_tokens,
            "repetition_penalty": params.repetition_penalty,
            "pad_token_id": self.tokenizer.pad_token_id or self.tokenizer.eos_token_id,
        }
        if params.temperature > 0:
            kwargs.update(do_sample=True, temperature=params.temperature, top_p=params.top_p)
            kwargs["top_k"] = 0
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        return kwargs

    def tokenize(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False).input_ids)

    async def stream(
        self, prompt: EncodedPrompt, params: SamplingParams
    ) -> AsyncGenerator[Chunk, None]:
        from transformers import StoppingCriteria, StoppingCriteriaList

        assert prompt.token_ids is not None  # from self.encode
        ids = self._torch.tensor([prompt.token_ids], dtype=self._torch.long)
        ensure_fits(ids.shape[1], self.max_context)
        seed = params.seed if params.seed is not None else secrets.randbelow(2**31)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Chunk | BaseException] = asyncio.Queue()
        cancelled = threading.Event()
        eos = self.tokenizer.eos_token_id

        def emit(item: Chunk | BaseException) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:  # the caller's event loop is gone: stop generating for it
                cancelled.set()

        class Streamer(StoppingCriteria):
            """Streams each new token and stops on cancel or a stop string."""

            def __init__(self) -> None:
                self.decoder = IncrementalDecoder(engine.tokenizer.backend_tokenizer)
                self.stopper = StopMatcher(params.stop)
                self.count = 0
                self.hit_stop = False

            def __call__(self, input_ids, scores, **kwargs):
                token = int(input_ids[0, -1])
                if token != eos:
                    self.count += 1
                    text, self.hit_stop = self.stopper.feed(self.decoder.push(token))
                    if text:
                        emit(Chunk(text=text))
                return self.hit_stop or cancelled.is_set()

        engine = self
        streamer = Streamer()

        def work() -> None:
            try:
                with self._torch.inference_mode():
                    out = self.model.generate(
                        ids,
                        stopping_criteria=StoppingCriteriaList([streamer]),
                        **self._generate_kwargs(params, seed),
                    )
                last = int(out[0, -1])
                if cancelled.is_set():
                    reason = "cancelled"
                elif streamer.hit_stop or last == eos:
                    reason = "stop"
                else:
                    reason = "length"
                if not streamer.hit_stop:
                    tail = streamer.stopper.flush()
                    if tail:
                        emit(Chunk(text=tail))
                emit(
                    Chunk(
                        finish_reason=reason,
                        usage=Usage(int(ids.shape[1]), streamer.count),
                        rendered_prompt=prompt.text,
                        seed=seed,
                    )
                )
            except Exception as exc:  # surfaced to the caller
                emit(EngineError(f"generation failed: {exc}"))

        threading.Thread(target=work, daemon=True).start()
        async for chunk in relay(queue, cancelled.set):
            yield chunk

    async def complete_batch(
        self, items: Sequence[tuple[Sequence[Message], SamplingParams]]
    ) -> list[Completion]:
        """Greedy items with identical params run as one left-padded batch; others one by one."""
        if not items or any(p != items[0][1] or p.temperature > 0 or p.stop for _, p in items):
            return await super().complete_batch(items)
        return await asyncio.to_thread(self._greedy_batch, items)

    def _greedy_batch(
        self, items: Sequence[tuple[Sequence[Message], SamplingParams]]
    ) -> list[Completion]:
        params = items[0][1]
        prompts = [self.render_prompt(m) for m, _ in items]
        self.tokenizer.padding_side = "left"
        batch = self.tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
        with self._torch.inference_mode():
            out = self.model.generate(**batch, **self._generate_kwargs(params, 0))
        eos = self.tokenizer.eos_token_id
        results = []
        for i, prompt in enumerate(prompts):
            new = out[i, batch.input_ids.shape[1] :].tolist()
            stopped = eos in new
            new = new[: new.index(eos)] if stopped else new
            text = self.tokenizer.decode(new, skip_special_tokens=True)
            assert isinstance(text, str)  # one sequence decodes to one string
            results.append(
                Completion(
                    text=text,
                    finish_reason="stop" if stopped else "length",
                    usage=Usage(int(batch.attention_mask[i].sum()), len(new)),
                    rendered_prompt=prompt,
                    seed=0,
                )
            )
        return results
