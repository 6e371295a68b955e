"""IFEval on the embedded base model, three ways, through `tandem eval run`.

    .venv/bin/python -m bench.ifeval [--limit N] [--home DIR]      # ~25 minutes on 2 cores

1. the default engine with the eval defaults (int8, greedy, 1,024-token cap, 16 in flight,
   loops cut): the figure leaderboards quote and `ifeval_541_seconds`;
2. the same with `--no-stop-loops` (every looping answer runs to the cap): how many
   prompt-level grades cutting loops changes (`loop_cut_grade_changes`) and the tokens it saves;
3. the fp32 ONNX model of the same checkpoint (`@onnx-fp32`, exact against the fp32
   reference) with the eval defaults: what the default format costs, prompt by prompt
   (`ifeval_default_minus_fp32_points`, exact McNemar p on the prompt-level pass/fail).

Each run is the command a user types, in a child process (its peak RSS read from the kernel).
IFEval is evaluation-only: nothing here chooses anything; the figures are read, not tuned to.
Writes docs/benchmarks/ifeval_base.json (run 1 in full, runs 2-3 summarised) and the headline
keys into docs/benchmarks/engines.json.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.report import record_figures

REPO = Path(__file__).resolve().parents[1]
OUTPUT = REPO / "docs" / "benchmarks" / "ifeval_base.json"
MODEL = "smollm2-135m-instruct"
FP32_MODEL = f"{MODEL}@onnx-fp32"
PUBLISHED_AVERAGE_STRICT = 29.9
POINTS = (
    "prompt_level_strict",
    "instruction_level_strict",
    "prompt_level_loose",
    "instruction_level_loose",
    "average_strict",
)


TANDEM = str(Path(sys.executable).with_name("tandem"))


def tandem(env: dict[str, str], *args: str) -> str:
    return subprocess.run(
        [TANDEM, *args], env=env, check=True, capture_output=True, text=True
    ).stdout


def run_figures(run_id: str, summary: dict[str, Any]) -> dict[str, Any]:
    """What the report keeps of one stored eval run's summary."""
    return {
        "run_id": run_id,
        "prompts": summary["n"],
        "accuracy_points": {k: round(100 * summary[k], 2) for k in POINTS},
        "finish_reasons": summary.get("finish_reasons"),
        "completion_tokens": summary["completion_tokens"],
    }


# Runs a command and reports its peak RSS (kB) on stderr's last line: ru_maxrss of one's
# children is the largest child so far, so each eval gets its own small parent.
PEAK_RSS_PARENT = (
    "import resource, subprocess, sys;"
    "code = subprocess.run(sys.argv[1:]).returncode;"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr);"
    "sys.exit(code)"
)


def eval_run(env: dict[str, str], model: str, limit: int | None, *extra: str) -> dict[str, Any]:
    """One `tandem eval run ifeval`, timed, with its peak RSS."""
    args = ["eval", "run", "ifeval", "--model", model, *extra]
    if limit:
        args += ["--limit", str(limit)]
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", PEAK_RSS_PARENT, TANDEM, *args],
        env=env, check=True, capture_output=True, text=True,
    )  # fmt: skip
    wall = time.perf_counter() - start
    summary = json.loads(done.stdout)
    peak_kb = int(done.stderr.strip().splitlines()[-1])
    print(f"{' '.join(args)}: {wall:.0f} s", flush=True)
    return {
        "command": "tandem " + " ".join(args),
        **run_figures(summary["run_id"], summary),
        "wall_seconds": round(wall, 1),
        "tokens_per_second": round(summary["completion_tokens"] / wall, 1),
        "peak_rss_mb": round(peak_kb / 1024, 1),
    }


def stored_run(env: dict[str, str], run_id: str, model: str, stop_loops: bool) -> dict[str, Any]:
    """A run made earlier by this bench (`--to-cap-run`, `--fp32-run`): the to-cap run does not
    depend on the loop detector, so a change to the detector need not pay for it again."""
    run = json.loads(tandem(env, "eval", "show", run_id))
    if run["model_version"] != model or run["sampling"]["stop_loops"] is not stop_loops:
        raise SystemExit(f"run {run_id} is not {model} with stop_loops={stop_loops}")
    return {
        "command": f"(stored run {run_id}, {run['started_at'][:10]})",
        **run_figures(run_id, run["summary"]),
        "generation_seconds": round(run["wall_seconds"], 1),
    }


def compare(env: dict[str, str], run_a: str, run_b: str) -> dict[str, Any]:
    return json.loads(tandem(env, "eval", "compare", run_a, run_b))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="only the first N prompts")
    parser.add_argument(
        "--home", type=Path, default=Path.home() / ".cache" / "tandem" / "bench" / "ifeval-home"
    )
    parser.add_argument("--out", type=Path, default=OUTPUT)
    parser.add_argument("--to-cap-run", help="reuse this stored --no-stop-loops run")
    parser.add_argument("--fp32-run", help="reuse this stored fp32 run")
    args = parser.parse_args()

    env = dict(os.environ, TANDEM_HOME=str(args.home), HF_HUB_OFFLINE="1")
    # Preparation (GGUF → HF → int8 ONNX, and the fp32 ONNX model) is a one-off cost, kept
    # out of the timed runs.
    tandem(env, "models", "prepare", "--fp32")
    load_at_start = os.getloadavg()[0]

    default = eval_run(env, MODEL, args.limit)
    to_cap = (
        stored_run(env, args.to_cap_run, MODEL, stop_loops=False)
        if args.to_cap_run
        else eval_run(env, MODEL, args.limit, "--no-stop-loops")
    )
    fp32 = (
        stored_run(env, args.fp32_run, FP32_MODEL, stop_loops=True)
        if args.fp32_run
        else eval_run(env, FP32_MODEL, args.limit)
    )

    loop_cut = compare(env, to_cap["run_id"], default["run_id"])
    changed = loop_cut["pass_to_fail"] + loop_cut["fail_to_pass"]
    vs_fp32 = compare(env, fp32["run_id"], default["run_id"])
    figures = {
        "ifeval_541_seconds": default["wall_seconds"],
        "ifeval_541_peak_rss_mb": default["peak_rss_mb"],
        "loop_cut_grade_changes": round(changed / loop_cut["n_common"], 4),
        "loop_cut_tokens_saved": to_cap["completion_tokens"] - default["completion_tokens"],
        "ifeval_default_minus_fp32_points": round(
            default["accuracy_points"]["average_strict"]
            - fp32["accuracy_points"]["average_strict"],
            2,
        ),
        "ifeval_default_vs_fp32_p_value": round(vs_fp32["p_value"], 4),
        "ifeval_paired_prompts": vs_fp32["n_common"],
    }
    report = {
        "date": datetime.date.today().isoformat(),
        "model": MODEL,
        "engine": "onnx int8, fitted to the GGUF (default)",
        "sampling": "greedy, repetition_penalty 1.0, max_tokens 1024, 16 in flight, loops cut",
        **default,
        "published_average_strict": PUBLISHED_AVERAGE_STRICT,
        "difference_points": round(
            default["accuracy_points"]["average_strict"] - PUBLISHED_AVERAGE_STRICT, 2
        ),
        "loops_run_to_the_cap": to_cap,
        "loop_cut_vs_to_cap": {k: v for k, v in loop_cut.items() if not k.endswith("_ids")},
        "fp32_onnx": fp32,
        "default_vs_fp32": {k: v for k, v in vs_fp32.items() if not k.endswith("_ids")},
        "figures": figures,
        "load_average_1m_at_start": round(load_at_start, 2),
        "load_average_1m_at_end": round(os.getloadavg()[0], 2),
        "cpus": os.cpu_count(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    if args.limit is None:
        record_figures(figures, " ".join(["python -m bench.ifeval", *sys.argv[1:]]))
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
