"""transformers fp32 on the dequantized HF checkpoint: the quality reference.

Concurrency: transformers has no request scheduler, so a server on it batches the requests
that are waiting (static batching): the 8 prompts are left-padded into one batch and decoded
together; every stream's first token arrives after the whole batch's prefill.
"""

from __future__ import annotations

from bench.protocol import Adapter, Request, Result, Stopwatch


class TransformersAdapter(Adapter):
    key = "transformers"
    label = "transformers (PyTorch)"
    weights = "fp32 (dequantized from Q4_1)"
    concurrency_mode = "static batch of 16 (left-padded, one decode loop)"

    def load(self) -> None:
        import torch
        from transformers import AutoModelForCausalLM

        torch.set_num_threads(self.threads)
        self.torch = torch
        self.model = AutoModelForCausalLM.from_pretrained(
            self.artifacts.hf_dir, dtype=torch.float32
        ).eval()

    def _decode_loop(
        self,
        batch: list[list[int]],
        max_new_tokens: int,
        ignore_eos: bool,
        watches: list[Stopwatch],
    ) -> None:
        torch = self.torch
        width = max(len(ids) for ids in batch)
        pad = next(iter(self.eos_ids))
        input_ids = torch.tensor([[pad] * (width - len(ids)) + ids for ids in batch])
        mask = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for ids in batch])
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        past = None
        with torch.inference_mode():
            for _ in range(max_new_tokens):
                out = self.model(
                    input_ids=input_ids,
                    attention_mask=mask,
                    position_ids=positions,
                    past_key_values=past,
                    use_cache=True,
                )
                past = out.past_key_values
                next_ids = out.logits[:, -1].argmax(-1)
                for watch, token in zip(watches, next_ids.tolist(), strict=True):
                    watch.token(token)
                if not ignore_eos and len(batch) == 1 and next_ids.item() in self.eos_ids:
                    watches[0].ids.pop()
                    break
                input_ids = next_ids[:, None]
                mask = torch.cat([mask, mask.new_ones(len(batch), 1)], dim=-1)
                positions = positions[:, -1:] + 1

    def generate(self, request: Request, max_new_tokens: int, ignore_eos: bool) -> Result:
        watch = Stopwatch()
        self._decode_loop([request.ids], max_new_tokens, ignore_eos, [watch])
        return watch.result(self.decode(watch.ids))

    def generate_concurrent(self, requests: list[Request], max_new_tokens: int) -> list[Result]:
        watches = [Stopwatch() for _ in requests]
        self._decode_loop([r.ids for r in requests], max_new_tokens, True, watches)
        return [w.result(self.decode(w.ids)) for w in watches]
