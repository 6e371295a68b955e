"""What a candidate costs when the embedded engine serves it as a LoRA adapter over the shared
base, against a merged copy (its own ONNX model and engine), on SmolLM2-135M-Instruct.

    python -m bench.lora_adapters            # -> docs/benchmarks/adapters.json

Adapters have tandem's training defaults (r 16, alpha 32, every linear projection) with random
weights: memory and speed do not depend on the values. The merged copy is adapter 0 merged
(merge_and_unload) and built by the same ONNX builder as every trained version: how tandem
served a candidate before adapters.

* Memory, one process per path so each has its own RSS: the base engine, then 3 adapter
  candidates over it; and the base engine, then a merged copy. Per extra candidate: the growth
  of the process's RSS after loading it and serving the same request as the base (its KV
  buffers and caches are counted).
* Speed, one process: the base without LoRA branches (the engine before adapters, the control
  for what the branches cost the base itself), the base with them, adapter 0 over it, the
  merged copy; one greedy stream of 160 tokens each, and 4 streams at once (2 on the base, 2
  on the candidate). Configurations are interleaved round by round (5 rounds): a shared,
  noisy machine slows a whole round alike, and each round gives paired ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.artifacts import bench_cache

OUT = Path("docs/benchmarks/adapters.json")
RANK, ALPHA, ADAPTERS = 16, 32, 3
PROMPT = "Write a long, detailed story about a lighthouse keeper and a storm."
TOKENS, REPEATS, STREAMS = 160, 5, 4


def _rss_mb() -> tuple[float, float]:
    """(current, peak) resident set size of this process, MB."""
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024
    return round(fields["VmRSS"], 1), round(fields["VmHWM"], 1)


def _make_adapters(home: Path, hf_dir: Path) -> list[Path]:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    dirs = [home / f"lora-{i}" for i in range(ADAPTERS)]
    for i, out in enumerate(dirs):
        if (out / "adapter_config.json").exists():
            continue
        torch.manual_seed(i)
        model = AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float32)
        config = LoraConfig(r=RANK, lora_alpha=ALPHA, target_modules="all-linear")
        peft = get_peft_model(model, config)
        for name, param in peft.named_parameters():
            if "lora_B" in name:  # PEFT starts B at zero: the adapter would change nothing
                param.data.normal_(0, 0.002)
        peft.save_pretrained(out)
    return dirs


def _make_merged(home: Path, hf_dir: Path, adapter: Path) -> tuple[Path, float]:
    """adapter 0 merged into the base and built like a trained version; (onnx dir, seconds)."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tandem.registry.embedded import build_onnx

    root = home / "merged-0"
    timing = root / "seconds.txt"
    if (root / "onnx" / "genai_config.json").exists() and timing.exists():
        return root / "onnx", float(timing.read_text())
    start = time.perf_counter()
    base = AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float32)
    merged = PeftModel.from_pretrained(base, adapter).merge_and_unload()
    merged.save_pretrained(root / "hf")
    AutoTokenizer.from_pretrained(hf_dir).save_pretrained(root / "hf")
    build_onnx(root / "hf", root / "onnx", root / "build-cache")
    seconds = round(time.perf_counter() - start, 1)
    timing.write_text(str(seconds))
    return root / "onnx", seconds


async def _decode_rate(streams: list[Any]) -> float:
    """Tokens per second of `streams` engines answering at once (each one greedy stream)."""
    from tandem.core import Message, SamplingParams

    params = SamplingParams(temperature=0, max_tokens=TOKENS)
    prompt = [Message.text("user", PROMPT)]
    start = time.perf_counter()
    done = await asyncio.gather(*(e.complete(prompt, params) for e in streams))
    elapsed = time.perf_counter() - start
    return sum(c.usage.completion_tokens for c in done) / elapsed


def _rate(engines: list[Any]) -> float:
    return asyncio.run(_decode_rate(engines))


def memory_worker(spec: dict[str, Any]) -> dict[str, Any]:
    """RSS after the base, then after each extra candidate, each loaded and serving the same
    request (so its KV buffers and caches are counted)."""
    from tandem.engines.onnx import OnnxEngine
    from tandem.engines.onnx_adapter import AdapterEngine
    from tandem.engines.onnx_lora import adapter_nbytes, load_adapter_chain

    result: dict[str, Any] = {"rss_mb_start": _rss_mb()[0]}
    base = OnnxEngine(Path(spec["base"]), "base")
    _rate([base])
    result["rss_mb_base"] = _rss_mb()[0]
    engines: list[Any] = []
    steps = []
    for i, path in enumerate(spec.get("adapters", [])):
        weights = load_adapter_chain([Path(path)], base.lora_sites)
        engines.append(AdapterEngine(base, f"lora-{i}", weights))
        _rate([engines[-1]])
        steps.append(
            {"candidates": i + 1, "rss_mb": _rss_mb()[0],
             "adapter_tensors_mb": round(adapter_nbytes(weights) / 2**20, 1)}
        )  # fmt: skip
    for i, path in enumerate(spec.get("merged", [])):
        engines.append(OnnxEngine(Path(path), f"merged-{i}"))
        _rate([engines[-1]])
        steps.append({"candidates": i + 1, "rss_mb": _rss_mb()[0]})
    result["steps"] = steps
    result["rss_mb_end"], result["rss_mb_peak"] = _rss_mb()
    for engine in [*engines, base]:
        engine.close()
    return result


def speed_worker(spec: dict[str, Any]) -> dict[str, Any]:
    """Decode rates, interleaved round by round in one process (a shared, noisy machine slows
    every configuration of a round alike), so each round gives paired ratios."""
    from tandem.engines.onnx import OnnxEngine
    from tandem.engines.onnx_adapter import AdapterEngine
    from tandem.engines.onnx_lora import load_adapter_chain

    plain = OnnxEngine(Path(spec["base"]), "plain", lora_branches=False)
    base = OnnxEngine(Path(spec["base"]), "base")
    adapter = AdapterEngine(
        base, "lora-0", load_adapter_chain([Path(spec["adapter"])], base.lora_sites)
    )
    merged = OnnxEngine(Path(spec["merged"]), "merged-0")
    configs = {
        "base_without_branches": [plain],
        "base_with_branches": [base],
        "adapter": [adapter],
        "merged_copy": [merged],
        # 4 streams at once: all production (the batch without adapters), then 2 production
        # and 2 candidate
        "four_streams_base_only": [base] * STREAMS,
        "mixed_base_and_adapter": [base, adapter] * (STREAMS // 2),
        "mixed_base_and_merged_copy": [base, merged] * (STREAMS // 2),
    }
    for engines in configs.values():
        _rate(engines)  # warm-up
    rounds: dict[str, list[float]] = {name: [] for name in configs}
    for _ in range(REPEATS):
        for name, engines in configs.items():
            rounds[name].append(round(_rate(engines), 1))
    for engine in (adapter, merged, base, plain):
        engine.close()
    rss, peak = _rss_mb()
    return {"tok_s": rounds, "rss_mb_end": rss, "rss_mb_peak": peak}


def _paired(rounds: dict[str, list[float]], a: str, b: str) -> dict[str, Any]:
    ratios = sorted(x / y for x, y in zip(rounds[a], rounds[b], strict=True))
    return {
        "median": round(statistics.median(ratios), 3),
        "min": round(ratios[0], 3),
        "max": round(ratios[-1], 3),
        "rounds": len(ratios),
    }


def _run(spec: dict[str, Any]) -> dict[str, Any]:
    start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "bench.lora_adapters", "--worker", json.dumps(spec)],
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["wall_s"] = round(time.perf_counter() - start, 1)
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    if args.worker:
        spec = json.loads(args.worker)
        run = speed_worker if spec["kind"] == "speed" else memory_worker
        print(json.dumps(run(spec)))
        return

    from tandem.registry.embedded import prepare_embedded_model

    home = bench_cache() / "adapters"
    prepared = prepare_embedded_model(home)
    adapters = [str(a) for a in _make_adapters(home, prepared.hf_dir)]
    merged, merge_s = _make_merged(home, prepared.hf_dir, Path(adapters[0]))
    base = str(prepared.onnx_dir)
    runs = {
        "memory_adapters": _run({"kind": "memory", "base": base, "adapters": adapters}),
        "memory_merged": _run({"kind": "memory", "base": base, "merged": [str(merged)]}),
        "speed": _run(
            {"kind": "speed", "base": base, "adapter": adapters[0], "merged": str(merged)}
        ),
    }
    steps = runs["memory_adapters"]["steps"]
    rss = [runs["memory_adapters"]["rss_mb_base"]] + [step["rss_mb"] for step in steps]
    merged_run = runs["memory_merged"]
    rounds = runs["speed"]["tok_s"]
    report = {
        "what": __doc__.split("\n\n")[0],
        "command": "python -m bench.lora_adapters",
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": _cores()},
        "model": "SmolLM2-135M-Instruct, int8 ONNX (the embedded engine's format)",
        "adapter": {"r": RANK, "alpha": ALPHA, "target": "all-linear", "count": ADAPTERS},
        "summary": {
            "memory_per_extra_adapter_mb": [round(b - a, 1) for a, b in itertools.pairwise(rss)],
            "memory_extra_merged_copy_mb": round(
                merged_run["steps"][0]["rss_mb"] - merged_run["rss_mb_base"], 1
            ),
            "adapter_tensors_mb": steps[0]["adapter_tensors_mb"],
            "merged_copy_build_s": merge_s,
            "single_stream_tok_s_median": {
                name: statistics.median(values) for name, values in rounds.items()
            },
            "adapter_vs_merged_copy_speed": _paired(rounds, "adapter", "merged_copy"),
            "base_with_vs_without_branches_speed": _paired(
                rounds, "base_with_branches", "base_without_branches"
            ),
            "mixed_adapter_vs_mixed_merged_speed": _paired(
                rounds, "mixed_base_and_adapter", "mixed_base_and_merged_copy"
            ),
            "mixed_adapter_vs_base_only_speed": _paired(
                rounds, "mixed_base_and_adapter", "four_streams_base_only"
            ),
            "peak_rss_mb": {name: run["rss_mb_peak"] for name, run in runs.items()},
        },
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report["summary"], indent=2))


def _cores() -> int:
    import os

    return len(os.sched_getaffinity(0))


if __name__ == "__main__":
    main()
