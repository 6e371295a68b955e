"""onnxruntime-genai through its own `og.Generator` API, on the default engine's ONNX model.

Same file as tandem's default engine (the og builder's output, in the registry's precision),
so the two rows differ only in the runtime loop around it.

Concurrency: og's continuous-batching `og.Engine` needs a PagedAttention model, which the
builder makes only for CUDA (fp16/bf16); on CPU it refuses the builder's CPU model ("Paged
cache input must have rank four..."). So a CPU server on og runs one `og.Generator` per
request, each in its own thread (og releases the GIL while it computes), and the 16
generators share 2 cores.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

from bench.protocol import Adapter, Request, Result, Stopwatch


class OrtGenaiAdapter(Adapter):
    key = "ortgenai"
    label = "onnxruntime-genai"

    @property
    def weights(self) -> str:
        return f"{self.artifacts.onnx_default_precision} (og builder, MatMulNBits)"

    concurrency_mode = "16 threads, one og.Generator each (og.Engine needs CUDA PagedAttention)"

    def load(self) -> None:
        import onnxruntime_genai as og

        self.og = og
        config = og.Config(str(self.artifacts.onnx_default_dir))
        options = {"intra_op_num_threads": self.threads, "inter_op_num_threads": 1}
        config.overlay(json.dumps({"model": {"decoder": {"session_options": options}}}))
        self.model = og.Model(config)

    def generate(
        self,
        request: Request,
        max_new_tokens: int,
        ignore_eos: bool,
        watch: Stopwatch | None = None,
    ) -> Result:
        og = self.og
        watch = watch or Stopwatch()
        params = og.GeneratorParams(self.model)
        # og's lengths count the prompt too; min_length = max_length is how EOS is ignored.
        total = len(request.ids) + max_new_tokens
        params.set_search_options(
            do_sample=False, max_length=total, min_length=total if ignore_eos else 0
        )
        generator = og.Generator(self.model, params)
        generator.append_tokens([request.ids])
        while not generator.is_done():
            generator.generate_next_token()
            token = int(generator.get_next_tokens()[0])
            if not ignore_eos and token in self.eos_ids:
                break
            watch.token(token)
        del generator
        return watch.result(self.decode(watch.ids))

    def generate_concurrent(self, requests: list[Request], max_new_tokens: int) -> list[Result]:
        watches = [Stopwatch() for _ in requests]
        with ThreadPoolExecutor(max_workers=len(requests)) as pool:
            futures = [
                pool.submit(self.generate, r, max_new_tokens, True, w)
                for r, w in zip(requests, watches, strict=True)
            ]
            return [f.result() for f in futures]
