"""`accelerate launch` with two processes on the CPU (gloo): SFT and DPO with LoRA train in
both processes and the main one alone registers the version.

The base is the tiny random-weight Llama of tests/tiny_checkpoint.py, imported like a team's
own model; each run is 2 steps of 4 rows. Marked `model` (about a minute: two launches, each
starting two processes that import the training stack). scripts/gpu-check.sh, the one-step
check of a CUDA host, is tested here only for what it does without one (hermetic, seconds).

    .venv/bin/python -m pytest tests/test_train_distributed.py -m model
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tandem.cli.common import cli_session
from tandem.cli.main import app
from tandem.core.settings import Settings
from tandem.store import ModelVersionRepo
from tiny_checkpoint import build_tiny_checkpoint

WORDS = ("cat", "dog", "hen", "owl")
ROWS = {
    "sft": [
        {
            "messages": [
                {"role": "user", "content": f"Spell {w}."},
                {"role": "assistant", "content": w},
            ]
        }
        for w in WORDS
    ],
    "dpo": [
        {
            "prompt": [{"role": "user", "content": f"Spell {w}."}],
            "chosen": [{"role": "assistant", "content": w}],
            "rejected": [{"role": "assistant", "content": w[::-1]}],
        }
        for w in WORDS
    ],
}


def launch(method: str, data: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The command docs/training.md gives: --multi_gpu is what makes accelerate start the
    processes (torchrun) on a host without GPUs; they find no CUDA and join a gloo group."""
    accelerate = str(Path(sys.executable).parent / "accelerate")  # the venv's
    command = [
        accelerate, "launch", "--multi_gpu", "--num_processes", "2",
        "--main_process_port", "0",  # a free port: another test may launch at the same time
        "-m", "tandem.train", method, "--dataset", str(data), "--base", "acme-tiny",
        "--output-version", f"acme-tiny-{method}",
        "--max-steps", "2", "--batch-size", "2", "--max-length", "64", "--no-build-onnx",
    ]  # fmt: skip
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.model  # two 2-process launches of the training stack: ~1 min on 2 cores
def test_two_processes_train_sft_and_dpo_and_register_one_version_each(
    tmp_path: Path, tandem_home: Path
) -> None:
    build_tiny_checkpoint(tmp_path / "acme-tiny")
    imported = CliRunner().invoke(
        app, ["models", "import", str(tmp_path / "acme-tiny"), "--no-build-onnx"]
    )
    assert imported.exit_code == 0, imported.stderr
    env = {
        **os.environ,
        "TANDEM_HOME": str(tandem_home),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        # No `accelerate config` default file from the machine's ~/.cache changes the launch.
        "HF_HOME": str(tmp_path / "hf-home"),
        "CUDA_VISIBLE_DEVICES": "",
    }
    env.pop("TANDEM_DATABASE_URL", None)  # the SQLite file in TANDEM_HOME

    for method in ("sft", "dpo"):
        data = tmp_path / f"{method}.jsonl"
        data.write_text("".join(json.dumps(r) + "\n" for r in ROWS[method]))
        run = launch(method, data, env)
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-6000:]
        # Only the main process prints what it registered.
        assert run.stdout.count(f"registered acme-tiny-{method} ") == 1, run.stdout

    with cli_session(Settings.from_env()) as session:
        rows = {v.id: v for v in ModelVersionRepo(session).list()}
    assert sorted(rows) == ["acme-tiny", "acme-tiny-dpo", "acme-tiny-sft"]
    for method in ("sft", "dpo"):
        version = rows[f"acme-tiny-{method}"]
        assert version.parent_id == "acme-tiny"
        assert (version.metrics["processes"], version.metrics["steps"]) == (2, 2)
        root = tandem_home / "models" / f"acme-tiny-{method}"
        assert json.loads((root / "metrics.json").read_text())["processes"] == 2
        # An adapter version (adapter/ + manifest `adapter_of`) or a merged checkpoint (hf/).
        assert (root / "adapter" / "adapter_config.json").is_file() or (
            root / "hf" / "config.json"
        ).is_file()
        assert (root / "manifest.json").is_file()
        run_dir = tandem_home / "runs" / f"acme-tiny-{method}"
        assert not (run_dir / "dataset").exists()  # the shared Arrow copy goes with the run


def test_gpu_check_fails_cleanly_without_cuda() -> None:
    """scripts/gpu-check.sh is for a CUDA host; elsewhere it says so and exits 3, before it
    imports the training stack. CUDA_VISIBLE_DEVICES hides a GPU where there is one."""
    script = Path(__file__).resolve().parents[1] / "scripts" / "gpu-check.sh"
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    run = subprocess.run(
        ["bash", str(script)], env=env, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 3, run.stderr
    assert run.stdout == ""
    assert run.stderr.startswith("gpu-check: no CUDA device (torch ")
