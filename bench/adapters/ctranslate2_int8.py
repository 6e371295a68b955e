"""CTranslate2 int8 on a checkpoint converted from the HF one.

Concurrency: CTranslate2 batches only within one call (`inter_threads=1` runs calls one after
another), so a server on it gathers the waiting requests into one `generate_batch` and streams
each row's tokens through the per-token callback.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bench.protocol import Adapter, Request, Result, Stopwatch

if TYPE_CHECKING:
    import ctranslate2


class CTranslate2Adapter(Adapter):
    key = "ctranslate2"
    label = "CTranslate2"
    weights = "int8 (converted from the fp32 checkpoint)"
    concurrency_mode = "static batch of 16 (generate_batch, per-token callback)"

    def load(self) -> None:
        import ctranslate2

        self.generator = ctranslate2.Generator(
            str(self.artifacts.ct2_int8_dir),
            device="cpu",
            compute_type="int8",
            intra_threads=self.threads,
            inter_threads=1,
        )

    def _run(
        self,
        requests: list[Request],
        max_new_tokens: int,
        ignore_eos: bool,
        watches: list[Stopwatch],
    ) -> None:
        def on_token(step: ctranslate2.GenerationStepResult) -> bool:
            watches[step.batch_id].token(step.token_id)
            return False

        self.generator.generate_batch(
            [self.tokenizer_tokens(r.ids) for r in requests],
            max_length=max_new_tokens,
            min_length=max_new_tokens if ignore_eos else 0,
            # An empty end-token list is how CTranslate2 is told to ignore EOS.
            end_token=[] if ignore_eos else sorted(self.eos_ids),
            include_prompt_in_result=False,
            sampling_topk=1,
            callback=on_token,
        )

    def tokenizer_tokens(self, ids: list[int]) -> list[str]:
        return [self.tokenizer.id_to_token(i) for i in ids]

    def generate(self, request: Request, max_new_tokens: int, ignore_eos: bool) -> Result:
        watch = Stopwatch()
        self._run([request], max_new_tokens, ignore_eos, [watch])
        watch.ids = [i for i in watch.ids if ignore_eos or i not in self.eos_ids]
        return watch.result(self.decode(watch.ids))

    def generate_concurrent(self, requests: list[Request], max_new_tokens: int) -> list[Result]:
        watches = [Stopwatch() for _ in requests]
        self._run(requests, max_new_tokens, True, watches)
        return [w.result(self.decode(w.ids)) for w in watches]
