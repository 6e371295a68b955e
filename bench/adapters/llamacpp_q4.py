"""llama.cpp through llama-cpp-python on the original Q4_1 GGUF (no conversion at all).

Concurrency: a `Llama` object is one context with one KV cache; llama-cpp-python's own server
serialises requests on it behind a lock, so the 16 requests are served one after another in
arrival order (each TTFT includes the requests ahead of it). They are served on the calling
thread: llama.cpp measured ~35% slower when driven from pool threads (its OpenMP team is
per calling thread), and a FIFO queue drained by one thread is the best such a server can do.
"""

from __future__ import annotations

import time

from bench.protocol import Adapter, Request, Result, Stopwatch


class LlamaCppAdapter(Adapter):
    key = "llamacpp"
    label = "llama.cpp (llama-cpp-python)"
    weights = "Q4_1 GGUF (as shipped)"
    concurrency_mode = "serialised on one context, FIFO (as llama-cpp-python's server)"

    def load(self) -> None:
        from llama_cpp import Llama

        self.llm = Llama(
            model_path=str(self.artifacts.gguf_path),
            n_ctx=2048,
            n_batch=512,
            n_threads=self.threads,
            n_threads_batch=self.threads,
            verbose=False,
        )

    def generate(
        self,
        request: Request,
        max_new_tokens: int,
        ignore_eos: bool,
        watch: Stopwatch | None = None,
    ) -> Result:
        watch = watch or Stopwatch()
        # No prompt-prefix reuse between requests: the other engines do not cache prefixes.
        self.llm.reset()
        tokens = self.llm.generate(
            request.ids, top_k=1, top_p=1.0, temp=0.0, repeat_penalty=1.0, reset=True
        )
        for token in tokens:
            if not ignore_eos and token in self.eos_ids:
                break
            watch.token(token)
            if len(watch.ids) >= max_new_tokens:
                break
        return watch.result(self.decode(watch.ids))

    def generate_concurrent(self, requests: list[Request], max_new_tokens: int) -> list[Result]:
        # All submitted now: every stopwatch starts here, so queueing counts in each TTFT.
        start = time.perf_counter()
        return [self.generate(r, max_new_tokens, True, Stopwatch(start)) for r in requests]
