"""IFEval on the embedded base model, through `tandem eval run` → docs/benchmarks/ifeval_base.json.

    .venv/bin/python -m bench.ifeval [--limit N] [--home DIR]

The run goes through the same command a user types (`tandem eval run ifeval --model
smollm2-135m-instruct`: the default ONNX int8 engine, greedy, no repetition penalty, 1024-token
cap, 16 requests in flight), in a child process so its peak RSS can be read from the kernel.
The figure leaderboards quote is `average_strict`: the mean of prompt- and instruction-level
strict accuracy (SmolLM2-135M-Instruct's model card: 29.9).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUTPUT = REPO / "docs" / "benchmarks" / "ifeval_base.json"
MODEL = "smollm2-135m-instruct"
PUBLISHED_AVERAGE_STRICT = 29.9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="only the first N prompts")
    parser.add_argument(
        "--home", type=Path, default=Path.home() / ".cache" / "tandem" / "bench" / "ifeval-home"
    )
    parser.add_argument("--out", type=Path, default=OUTPUT)
    args = parser.parse_args()

    env = dict(os.environ, TANDEM_HOME=str(args.home), HF_HUB_OFFLINE="1")
    tandem = str(Path(sys.executable).with_name("tandem"))
    # Preparation (GGUF → HF → int8 ONNX) is a one-off cost, kept out of the timed run.
    subprocess.run([tandem, "models", "prepare"], env=env, check=True, stdout=subprocess.DEVNULL)

    command = [tandem, "eval", "run", "ifeval", "--model", MODEL]
    if args.limit:
        command += ["--limit", str(args.limit)]
    start = time.perf_counter()
    done = subprocess.run(command, env=env, check=True, capture_output=True, text=True)
    wall = time.perf_counter() - start
    summary = json.loads(done.stdout)
    peak_rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024

    points = {
        k: round(100 * summary[k], 2)
        for k in (
            "prompt_level_strict",
            "instruction_level_strict",
            "prompt_level_loose",
            "instruction_level_loose",
            "average_strict",
        )
    }
    report = {
        "date": datetime.date.today().isoformat(),
        "command": " ".join(["tandem", *command[1:]]),
        "model": MODEL,
        "engine": "onnx int8 (default)",
        "sampling": "greedy, repetition_penalty 1.0, max_tokens 1024, 16 in flight",
        "prompts": summary["n"],
        "run_id": summary["run_id"],
        "accuracy_points": points,
        "published_average_strict": PUBLISHED_AVERAGE_STRICT,
        "difference_points": round(points["average_strict"] - PUBLISHED_AVERAGE_STRICT, 2),
        "finish_reasons": summary.get("finish_reasons"),
        "completion_tokens": summary["completion_tokens"],
        "wall_seconds": round(wall, 1),
        "tokens_per_second": round(summary["completion_tokens"] / wall, 1),
        "peak_rss_mb": round(peak_rss_mb, 1),
        "load_average_1m_at_end": round(os.getloadavg()[0], 2),
        "cpus": os.cpu_count(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
