"""DPO training throughput: `tandem train dpo` against a plain TRL script, same machine, same run.

    make bench                       # runs this after the engines bench
    python -m bench.training         # ~5 minutes on 2 cores (3 rounds x 2 runs)
    python -m bench.training --quick # one round, fewer pairs: for iterating (docs untouched)

Both sides train the embedded model (SmolLM2-135M-Instruct) on the same synthetic preference
pairs (written here; never benchmark data), each with its own defaults for the machine (TRL:
bf16 autocast and gradient checkpointing; tandem on a CPU with native bf16: bf16 autocast, no
checkpointing, and the LM head scoring only completion tokens, tandem.train.cpu), and with the
same settings:
LoRA r=16/alpha=32 on all linear layers, batch 4, max_length 256, the same number of steps,
seed, learning rate, beta, and reference log-probs precomputed (the reference is the base
with the adapter disabled on both sides). Each run is its own process; rounds alternate the
two so drifting load hits both. Throughput = pairs trained / seconds from loading the model
to the end of the last step (tokenizing and scoring the reference included, merging and
registering excluded: the plain script does neither). Peak RSS comes from the kernel's
accounting of each child (wait4).

Writes docs/benchmarks/training.json and the table between the `training-table` markers in
docs/architecture.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.artifacts import bench_cache

REPO = Path(__file__).resolve().parent.parent
JSON_OUT = REPO / "docs" / "benchmarks" / "training.json"
ARCH_DOC = REPO / "docs" / "architecture.md"
START, END = "<!-- training-table:start -->", "<!-- training-table:end -->"
BASE = "smollm2-135m-instruct"

SETTINGS = {
    "lora_r": 16,
    "lora_alpha": 32,
    "lora_dropout": 0.05,
    "batch_size": 4,
    "max_length": 256,
    "learning_rate": 5e-5,
    "beta": 0.1,
    "seed": 42,
}

TOPICS = ["tea", "rivers", "prime numbers", "bicycles", "the moon", "bread", "chess", "rain"]

# The plain TRL script: what someone would write from TRL's DPO docs, nothing of tandem.
PLAIN_TRL = """
import json, sys, time
from datasets import Dataset
from peft import LoraConfig
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl import DPOConfig, DPOTrainer

hf_dir, data_file, out_dir, s = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
rows = [json.loads(line) for line in open(data_file)]
start = time.perf_counter()
tokenizer = AutoTokenizer.from_pretrained(hf_dir)
model = AutoModelForCausalLM.from_pretrained(hf_dir)
args = DPOConfig(
    output_dir=out_dir, per_device_train_batch_size=s["batch_size"], max_steps=s["max_steps"],
    max_length=s["max_length"], learning_rate=s["learning_rate"], beta=s["beta"], seed=s["seed"],
    precompute_ref_log_probs=True, logging_steps=1, save_strategy="no", report_to=[],
    use_cpu=True,  # everything else TRL's defaults: bf16 autocast, gradient checkpointing on
)
peft = LoraConfig(r=s["lora_r"], lora_alpha=s["lora_alpha"], lora_dropout=s["lora_dropout"],
                  target_modules="all-linear", task_type="CAUSAL_LM")
trainer = DPOTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows),
                     processing_class=tokenizer, peft_config=peft)
trainer.train()
wall = time.perf_counter() - start
print("RESULT " + json.dumps({"runtime_s": wall, "steps": trainer.state.global_step}))
"""


def write_pairs(path: Path, n: int) -> None:
    """Synthetic preference pairs: a helpful answer preferred over a dismissive one."""
    with path.open("w") as f:
        for i in range(n):
            topic = TOPICS[i % len(TOPICS)]
            row = {
                "prompt": [{"role": "user", "content": f"Tell me one fact about {topic} (#{i})."}],
                "chosen": [
                    {
                        "role": "assistant",
                        "content": f"Here is a fact about {topic}: it has been studied for "
                        f"centuries, and people still find new things to say about it ({i}).",
                    }
                ],
                "rejected": [{"role": "assistant", "content": "I don't know."}],
            }
            f.write(json.dumps(row) + "\n")


def run_child(cmd: list[str], env: dict[str, str]) -> tuple[str, float]:
    """Run a process; return its stdout and its own peak RSS in MB (not its siblings')."""
    with tempfile.TemporaryFile("w+") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.DEVNULL, env=env, cwd=REPO)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read()
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[:4]} failed ({proc.returncode}):\n{text[-2000:]}")
    return text, usage.ru_maxrss / 1024  # ru_maxrss is in KiB on Linux


def run_plain(hf_dir: Path, data: Path, work: Path, steps: int, env: dict[str, str]) -> dict:
    settings = {**SETTINGS, "max_steps": steps}
    cmd = [sys.executable, "-c", PLAIN_TRL, str(hf_dir), str(data), str(work / "plain"),
           json.dumps(settings)]  # fmt: skip
    text, rss = run_child(cmd, env)
    result = json.loads(text.split("RESULT ", 1)[1].splitlines()[0])
    pairs = result["steps"] * SETTINGS["batch_size"]
    return {"pairs_per_s": pairs / result["runtime_s"], "runtime_s": result["runtime_s"],
            "peak_rss_mb": rss, "steps": result["steps"]}  # fmt: skip


def run_tandem(home: Path, data: Path, steps: int, round_no: int, env: dict[str, str]) -> dict:
    version = f"bench-dpo-{round_no}"
    options = [f"--{k.replace('_', '-')}={v}" for k, v in SETTINGS.items()]
    cmd = [sys.executable, "-m", "tandem.train", "dpo", "--dataset", str(data), "--base", BASE,
           "--output-version", version, "--max-steps", str(steps), "--logging-steps", "1",
           "--save-steps", str(steps), "--no-build-onnx", "--restart", *options]  # fmt: skip
    _, rss = run_child(cmd, {**env, "TANDEM_HOME": str(home)})
    metrics = json.loads((home / "models" / version / "metrics.json").read_text())
    pairs = (metrics["steps"] - metrics["resumed_from_step"]) * SETTINGS["batch_size"]
    return {"pairs_per_s": pairs / metrics["runtime_s"], "runtime_s": metrics["runtime_s"],
            "peak_rss_mb": rss, "steps": metrics["steps"]}  # fmt: skip


def render_table(report: dict) -> str:
    t, p = report["tandem"], report["plain_trl"]
    return "\n".join(
        [
            "| trainer | pairs/s | seconds (load + precompute + steps) | peak RSS |",
            "| --- | ---: | ---: | ---: |",
            f"| plain TRL script | {p['pairs_per_s']:.2f} | {p['runtime_s']:.1f} s | "
            f"{p['peak_rss_mb']:.0f} MB |",
            f"| **`tandem train dpo`** | {t['pairs_per_s']:.2f} | {t['runtime_s']:.1f} s | "
            f"{t['peak_rss_mb']:.0f} MB |",
            "",
            f"Measured {report['date']} by `make bench` (`python -m bench.training`) on "
            f"{report['machine']}: {report['pairs']} synthetic pairs, {report['steps']} steps of "
            f"batch {SETTINGS['batch_size']}, max_length {SETTINGS['max_length']}, LoRA r=16, "
            f"each side with its own defaults on the CPU, median of {report['rounds']} "
            f"alternating rounds, each run in its own process. tandem / plain TRL: "
            f"**{report['ratio']:.2f}×** (goal ≥ 0.95×); "
            f"figures in [benchmarks/training.json](benchmarks/training.json).",
        ]
    )


def update_architecture_doc(table: str) -> None:
    text = ARCH_DOC.read_text()
    block = f"{START}\n{table}\n{END}"
    if START in text and END in text:
        head, rest = text.split(START, 1)
        text = head + block + rest.split(END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n## Training throughput\n\n" + block + "\n"
    ARCH_DOC.write_text(text)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 round, 16 pairs; docs untouched")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pairs", type=int, default=32)
    args = parser.parse_args(argv)
    rounds, pairs = (1, 16) if args.quick else (args.rounds, args.pairs)
    steps = pairs // SETTINGS["batch_size"]

    from tandem.registry.embedded import prepare_embedded_model

    prepared = prepare_embedded_model(bench_cache() / "training-home")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    results: dict[str, list[dict]] = {"plain_trl": [], "tandem": []}
    with tempfile.TemporaryDirectory(prefix="tandem-bench-train-") as tmp:
        work = Path(tmp)
        data = work / "pairs.jsonl"
        write_pairs(data, pairs)
        home = work / "home"
        (home / "models").mkdir(parents=True)
        (home / "models" / BASE).symlink_to(prepared.root, target_is_directory=True)
        for r in range(rounds):
            # Alternate who goes first, so neither side always gets the quieter machine.
            order = ["plain_trl", "tandem"] if r % 2 == 0 else ["tandem", "plain_trl"]
            for side in order:
                began = time.perf_counter()
                if side == "plain_trl":
                    res = run_plain(prepared.hf_dir, data, work, steps, env)
                else:
                    res = run_tandem(home, data, steps, r, env)
                res["load_avg_1m"] = os.getloadavg()[0]
                results[side].append(res)
                print(
                    f"round {r + 1}/{rounds} {side:9s} {res['pairs_per_s']:.2f} pairs/s "
                    f"({res['runtime_s']:.1f} s, RSS {res['peak_rss_mb']:.0f} MB, process "
                    f"{time.perf_counter() - began:.0f} s)",
                    flush=True,
                )

    def median(side: str, key: str) -> float:
        return statistics.median(r[key] for r in results[side])

    report = {
        "date": dt.date.today().isoformat(),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, no GPU",
        "pairs": pairs,
        "steps": steps,
        "rounds": rounds,
        "settings": SETTINGS,
        "tandem_pairs_per_s": round(median("tandem", "pairs_per_s"), 3),
        "plain_trl_pairs_per_s": round(median("plain_trl", "pairs_per_s"), 3),
        "tandem_peak_rss_mb": round(median("tandem", "peak_rss_mb")),
        "plain_trl_peak_rss_mb": round(median("plain_trl", "peak_rss_mb")),
        "tandem": {k: median("tandem", k) for k in ("pairs_per_s", "runtime_s", "peak_rss_mb")},
        "plain_trl": {
            k: median("plain_trl", k) for k in ("pairs_per_s", "runtime_s", "peak_rss_mb")
        },
        "runs": results,
    }
    report["ratio"] = round(report["tandem_pairs_per_s"] / report["plain_trl_pairs_per_s"], 3)
    print(json.dumps({k: report[k] for k in list(report)[:11] if k != "settings"}, indent=2))
    print(f"ratio tandem / plain TRL: {report['ratio']:.3f}")
    if args.quick:
        return
    JSON_OUT.parent.mkdir(parents=True, exist_ok=True)
    JSON_OUT.write_text(json.dumps(report, indent=2) + "\n")
    update_architecture_doc(render_table(report))


if __name__ == "__main__":
    main()
