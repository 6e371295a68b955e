"""Training the real embedded model on a CPU, a few steps each (batch 2, max_length 128), into
registered candidate versions; resuming an interrupted run; chatting with a freshly trained
version through a server that was started before it existed.

    .venv/bin/python -m pytest -q -m model tests/test_train_model.py
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from conftest import new_user
from tandem.cli.main import app
from tandem.core.settings import Settings
from tandem.store import ModelVersionRepo

pytestmark = pytest.mark.model

BASE = "smollm2-135m-instruct"
TINY = ["--max-steps", "2", "--batch-size", "2", "--max-length", "128", "--logging-steps", "1"]


def user(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


def assistant(text: str) -> list[dict]:
    return [{"role": "assistant", "content": text}]


# Hand-written TRL-format examples (never benchmark data: that is evaluation-only).
DATA = {
    "sft": [
        {"messages": user(f"Spell {w}.") + assistant("-".join(w.upper()))}
        for w in ("cat", "dog", "sun", "tea")
    ],
    "preference": [
        {
            "prompt": user(f"What is {n} plus {n}?"),
            "chosen": assistant(f"{n} plus {n} is {2 * n}."),
            "rejected": assistant("I would rather not say."),
        }
        for n in range(1, 5)
    ],
    "kto": [
        {
            "prompt": user(f"Name a colour, please ({n})."),
            "completion": assistant("Blue." if n % 2 else "No."),
            "label": bool(n % 2),
        }
        for n in range(1, 5)
    ],
}


@pytest.fixture
def home(tandem_home: Path, prepared_model) -> Path:
    """This test's TANDEM_HOME with the prepared embedded model linked in (not re-prepared)."""
    (tandem_home / "models").mkdir()
    (tandem_home / "models" / BASE).symlink_to(prepared_model.root, target_is_directory=True)
    return tandem_home


def write_data(tmp_path: Path, kind: str) -> Path:
    path = tmp_path / f"{kind}.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in DATA[kind]))
    return path


def run_cli(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result.output


def only_child(parent: str):
    from tandem.cli.common import cli_session

    with cli_session(Settings.from_env()) as session:
        rows = [r for r in ModelVersionRepo(session).list() if r.parent_id == parent]
        assert len(rows) == 1, [r.id for r in rows]
        session.expunge(rows[0])
        return rows[0]


def assert_registered(row, *, parent: str, method: str, data: Path) -> Path:
    """Everything a trained version must carry to be traced and judged later."""
    from tandem.data.snapshots import resolve_dataset

    root = Path(row.base_path)
    # The hash the data layer gives these examples: the same whether named as file or snapshot.
    data_hash = resolve_dataset(row_home(root), str(data)).hash
    assert (row.parent_id, row.status) == (parent, "candidate")
    assert row.config["method"] == method and row.config["base"] == parent
    assert row.config["dataset"]["hash"] == data_hash
    assert row.config["batch_size"] == 2 and row.config["max_length"] == 128
    assert len(row.config["code_version"].split("-")[0]) in (40, 64) or row.config[
        "code_version"
    ].startswith("tandem-")
    assert row.metrics["steps"] == 2 and row.metrics["final_loss"] > 0
    assert row.metrics["samples_per_s"] > 0
    assert data_hash in row.card and f"from **{parent}**" in row.card
    assert Path(row.metrics["loss_curve"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["parent"] == parent and manifest["dataset"]["hash"] == data_hash
    if method == "reward" or row.config["full"]:
        weights = root / "hf"
        assert (weights / "model.safetensors").exists()
    else:  # LoRA of a chat model: an adapter version, merged weights only on demand
        weights = root / "adapter"
        assert (weights / "adapter_model.safetensors").exists()
        assert manifest["adapter_of"] == parent and manifest["formats"] == {"adapter": "adapter"}
        assert not (root / "hf").exists() and not (root / "onnx").exists()
    assert (weights / "chat_template.jinja").exists()
    saved = (root / "training_config.yaml").read_text()
    assert "max_steps: 2" in saved and data_hash in saved
    # Checkpoints only exist to resume; a finished run does not keep them.
    assert not list((row_home(root) / "runs" / row.id).glob("checkpoint-*"))
    return root


def row_home(root: Path) -> Path:
    return root.parent.parent


def test_dpo_version_is_chattable_through_v1_without_a_restart(home, tmp_path, live_server):
    from openai import OpenAI

    from tandem.engines.setup import build_catalog
    from tandem.web.app import create_app

    settings = Settings.from_env()
    catalog = build_catalog(settings)
    base_url = live_server(create_app(settings, catalog))
    with httpx.Client(base_url=base_url) as http:
        headers = new_user(http, "trainer@example.com")
    client = OpenAI(base_url=f"{base_url}/v1", api_key=headers["Authorization"].split()[1])
    before = {m.id for m in client.models.list()}
    assert BASE in before

    data = write_data(tmp_path, "preference")
    out = run_cli("train", "dpo", "--dataset", str(data), "--base", BASE, *TINY)
    row = only_child(BASE)
    assert f"registered {row.id} (candidate)" in out
    root = assert_registered(row, parent=BASE, method="dpo", data=data)
    assert row.config["precompute_ref_log_probs"] is True and row.config["full"] is False
    # Merged weights and the ONNX model on demand; the LoRA update is merged into them.
    result = CliRunner().invoke(app, ["models", "merge", row.id, "--onnx"])
    assert result.exit_code == 0, result.output
    merged = json.loads(result.stdout)
    assert merged == {"id": row.id, "hf": str(root / "hf"), "onnx": str(root / "onnx")}
    assert (root / "onnx" / "model.onnx").exists()
    from safetensors import safe_open

    name = "model.layers.0.self_attn.q_proj.weight"
    with (
        safe_open(root / "hf" / "model.safetensors", "pt") as new,
        safe_open(Path(home / "models" / BASE / "hf" / "model.safetensors"), "pt") as old,
    ):
        assert not new.get_tensor(name).equal(old.get_tensor(name))

    # The server was started before this version existed.
    assert row.id in {m.id for m in client.models.list()} - before
    reply = client.chat.completions.create(
        model=row.id,
        messages=[{"role": "user", "content": "What is 3 plus 3?"}],
        max_tokens=8,
        temperature=0,
    )
    assert reply.model == row.id
    assert reply.choices[0].message.content.strip()
    catalog.close()


def test_sft_then_kto_on_top_builds_a_lineage(home, tmp_path):
    sft_data, kto_data = write_data(tmp_path, "sft"), write_data(tmp_path, "kto")
    run_cli("train", "sft", "--dataset", str(sft_data), *TINY, "--no-build-onnx")
    sft = only_child(BASE)
    assert_registered(sft, parent=BASE, method="sft", data=sft_data)
    assert sft.config["learning_rate"] == 1e-4

    run_cli("train", "kto", "--dataset", str(kto_data), "--base", sft.id, *TINY, "--no-build-onnx")
    kto = only_child(sft.id)
    assert_registered(kto, parent=sft.id, method="kto", data=kto_data)
    # Training from the sft adapter version merged it first, and its row says so.
    sft_root = Path(sft.base_path)
    assert (sft_root / "hf" / "model.safetensors").exists()
    assert json.loads((sft_root / "manifest.json").read_text())["formats"]["hf"] == "hf"
    from tandem.cli.common import cli_session

    with cli_session(Settings.from_env()) as session:
        assert ModelVersionRepo(session).get(sft.id).formats["hf"] == "hf"

    tree = run_cli("models", "lineage").splitlines()
    assert tree[0].startswith(f"{BASE}  ")
    assert tree[1].startswith(f"└── {sft.id}  candidate  sft  data sha256:")
    assert tree[2].startswith(f"    └── {kto.id}  candidate  kto  data sha256:")
    assert run_cli("models", "lineage", kto.id).splitlines()[-1].endswith("◀")


def test_reward_model_is_registered_as_reward_and_not_served(home, tmp_path):
    from tandem.engines.setup import build_catalog

    data = write_data(tmp_path, "preference")
    run_cli("train", "reward", "--dataset", str(data), *TINY)
    row = only_child(BASE)
    root = assert_registered(row, parent=BASE, method="reward", data=data)
    assert row.config["kind"] == "reward" and row.formats == {"hf": "hf"}
    config = json.loads((root / "hf" / "config.json").read_text())
    assert config["architectures"] == ["LlamaForSequenceClassification"]
    assert len(config["id2label"]) == 1  # one scalar score per answer
    assert row.id not in {m.id for m in build_catalog(Settings.from_env()).list()}


CRASH_AFTER_FIRST_CHECKPOINT = textwrap.dedent(
    """
    import json, os, signal, sys
    from pathlib import Path
    from transformers import TrainerCallback
    from tandem.train import resolve_config, train

    class Crash(TrainerCallback):
        # A hard kill right after checkpoint-1 is on disk: no cleanup, no exception handling.
        def on_save(self, args, state, control, **kwargs):
            if state.global_step == 1:
                os.kill(os.getpid(), signal.SIGKILL)

    dataset, home, db, overrides = sys.argv[1:]
    train("sft", dataset, "smollm2-135m-instruct", home=Path(home), database_url=db,
          config=resolve_config("sft", overrides=json.loads(overrides)), callbacks=[Crash()])
    """
)


def test_a_killed_run_resumes_from_its_checkpoint(home, tmp_path):
    data = write_data(tmp_path, "sft")
    overrides = {
        "max_steps": 2, "batch_size": 2, "max_length": 128, "logging_steps": 1,
        "save_steps": 1, "build_onnx": False,
    }  # fmt: skip
    settings = Settings.from_env()
    crashed = subprocess.run(
        [sys.executable, "-c", CRASH_AFTER_FIRST_CHECKPOINT, str(data), str(home),
         settings.database_url, json.dumps(overrides)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr[-3000:]
    (run_dir,) = (home / "runs").iterdir()
    assert sorted(p.name for p in run_dir.glob("checkpoint-*")) == ["checkpoint-1"]
    assert not (home / "models" / run_dir.name).exists()

    # Other hyperparameters with the same name would resume into a mixture of two runs.
    mixed = CliRunner().invoke(
        app,
        ["train", "sft", "--dataset", str(data), *TINY, "--output-version", run_dir.name,
         "--learning-rate", "3e-4", "--no-build-onnx"],
    )  # fmt: skip
    assert mixed.exit_code == 2 and "learning_rate" in mixed.output

    # The same command again: same version name, so it finds the run and resumes it.
    out = run_cli("train", "sft", "--dataset", str(data), *TINY, "--save-steps", "1",
                  "--no-build-onnx")  # fmt: skip
    assert f"registered {run_dir.name}" in out
    row = only_child(BASE)
    assert row.id == run_dir.name
    assert row.metrics["resumed_from_step"] == 1 and row.metrics["steps"] == 2
    # Step 1's loss came from the checkpoint's log, step 2's from the resumed run.
    history = json.loads((Path(row.base_path) / "metrics.json").read_text())["log_history"]
    assert [e["step"] for e in history if "loss" in e] == [1, 2]
