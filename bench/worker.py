"""Measure one engine in a process of its own (so its peak RSS is its own), write JSON.

    python -m bench.worker ENGINE SPEC.json OUT.json

Run by `bench.engines`; SPEC holds the artifacts and the rendered prompts. The protocol, the
same for every engine:

1. load (imports included: a server pays them too);
2. warm up: one short answer and one short concurrent round;
3. single stream: each throughput prompt, one at a time, `single_new_tokens` greedy tokens;
4. concurrency: `rounds` times, `concurrency` requests submitted at the same instant;
5. quality: every quality prompt, greedy, up to `quality_new_tokens`, stopping at EOS;
6. peak RSS of the process.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from pathlib import Path

from bench.adapters import adapter_class
from bench.protocol import Artifacts, Request, Result


def _requests(items: list[dict]) -> list[Request]:
    return [Request(messages=i["messages"], prompt=i["prompt"], ids=i["ids"]) for i in items]


def _percentile(values: list[float], q: float) -> float:
    import numpy as np

    return float(np.percentile(values, q))


def _peak_rss_mb() -> float:
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss across fork+exec, so a worker would report
    # the bench parent's peak (which has transformers loaded) instead of its own.
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _load_average() -> float:
    # Another process busy on these 2 cores skews every figure; the JSON shows when it did.
    return round(os.getloadavg()[0], 2)


def measure(engine: str, spec: dict) -> dict:
    artifacts = Artifacts.from_dict(spec["artifacts"])
    adapter = adapter_class(engine)(artifacts, spec["threads"], spec["eos_ids"])
    throughput = _requests(spec["throughput"])
    quality = _requests(spec["quality"])
    n_single, n_quality = spec["single_new_tokens"], spec["quality_new_tokens"]
    concurrency, rounds = spec["concurrency"], spec["rounds"]

    load_average_before = _load_average()
    start = time.perf_counter()
    adapter.load()
    load_s = time.perf_counter() - start
    rss_after_load = _peak_rss_mb()

    rendered_matches = None
    if hasattr(adapter, "rendered"):
        # The default engine renders the chat template itself; it must see the same prompt.
        rendered_matches = all(adapter.rendered(r) == r.prompt for r in quality + throughput)

    adapter.generate(throughput[0], 16, ignore_eos=True)
    adapter.generate_concurrent(throughput[:concurrency], 8)

    singles: list[Result] = [adapter.generate(r, n_single, ignore_eos=True) for r in throughput]
    single_tokens = sum(r.n_tokens for r in singles)
    single_time = sum(r.latency_s for r in singles)
    # Decode speed alone: tokens after the first over the time after the first token.
    decode_tok_s = sum(r.n_tokens - 1 for r in singles) / sum(
        r.latency_s - r.ttft_s for r in singles
    )

    batches: list[tuple[float, list[Result]]] = []
    for i in range(rounds):
        # Rotate the prompts so each round mixes different lengths.
        chosen = [throughput[(i + j) % len(throughput)] for j in range(concurrency)]
        round_start = time.perf_counter()
        results = adapter.generate_concurrent(chosen, n_single)
        batches.append((time.perf_counter() - round_start, results))
    conc_results = [r for _, results in batches for r in results]
    conc_tokens = sum(r.n_tokens for r in conc_results)
    conc_time = sum(wall for wall, _ in batches)
    ttfts = [r.ttft_s for r in conc_results]

    answers = [adapter.generate(r, n_quality, ignore_eos=False) for r in quality]
    adapter.close()

    return {
        "engine": engine,
        "label": adapter.label,
        "weights": adapter.weights,
        "concurrency_mode": adapter.concurrency_mode,
        "ignores_eos": adapter.can_ignore_eos,
        "rendered_prompt_matches": rendered_matches,
        "load_s": round(load_s, 2),
        "rss_after_load_mb": round(rss_after_load, 1),
        "single_stream": {
            "requests": len(singles),
            "tokens": single_tokens,
            "tokens_per_s": round(single_tokens / single_time, 1),
            "decode_tokens_per_s": round(decode_tok_s, 1),
            "ttft_median_s": round(_percentile([r.ttft_s for r in singles], 50), 3),
        },
        "concurrent": {
            "streams": concurrency,
            "rounds": rounds,
            "tokens": conc_tokens,
            "aggregate_tokens_per_s": round(conc_tokens / conc_time, 1),
            "ttft_p50_s": round(_percentile(ttfts, 50), 3),
            "ttft_p95_s": round(_percentile(ttfts, 95), 3),
            "per_stream_tokens_per_s_median": round(
                _percentile([r.n_tokens / r.latency_s for r in conc_results], 50), 1
            ),
        },
        "quality_answers": [{"text": a.text, "ids": a.ids, "tokens": a.n_tokens} for a in answers],
        "peak_rss_mb": round(_peak_rss_mb(), 1),
        "load_average_1min": {"before": load_average_before, "after": _load_average()},
    }


def main() -> None:
    engine, spec_path, out_path = sys.argv[1:4]
    spec = json.loads(Path(spec_path).read_text())
    Path(out_path).write_text(json.dumps(measure(engine, spec), indent=2))


if __name__ == "__main__":
    main()
