"""Training configuration and inputs, without a model: the dataclass, the YAML file, the CLI
options generated from it, and the dataset files a run accepts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tandem.cli.main import app
from tandem.train.config import ConfigError, TrainConfig, resolve_config, save_config
from tandem.train.training_data import resolve_training_data

PAIR = {
    "prompt": [{"role": "user", "content": "2+2?"}],
    "chosen": [{"role": "assistant", "content": "4"}],
    "rejected": [{"role": "assistant", "content": "5"}],
}


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_defaults_depend_on_the_method():
    assert resolve_config("sft").learning_rate == 1e-4
    dpo = resolve_config("dpo")
    assert (dpo.learning_rate, dpo.beta, dpo.lora_r, dpo.lora_alpha) == (5e-5, 0.1, 16, 32)
    assert (dpo.max_length, dpo.batch_size, dpo.lora_target, dpo.full) == (
        512,
        4,
        "all-linear",
        False,
    )


def test_yaml_overrides_defaults_and_options_override_yaml(tmp_path: Path):
    yaml_file = tmp_path / "run.yaml"
    yaml_file.write_text("learning_rate: 2e-5\nepochs: 2\nbatch_size: 8\nfull: true\n")
    config = resolve_config("dpo", yaml_file, {"batch_size": 2, "seed": None})
    assert config.learning_rate == 2e-5  # YAML's string "2e-5" is a float
    assert config.epochs == 2.0 and isinstance(config.epochs, float)
    assert config.batch_size == 2  # the option given on the command line wins
    assert config.full is True
    assert config.seed == 42  # None means "not given"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("lora_rank: 8\n", "unknown config keys"),
        ("batch_size: lots\n", "batch_size: expected int"),
        ("full: 1\n", "full: expected true or false"),
        ("- 1\n- 2\n", "expected a mapping"),
        ("max_steps: 0\n", "max_steps must be positive"),
        ("precision: fp16\n", "precision must be"),
        ("learning_rate: [1\n", "not valid YAML"),
    ],
)
def test_bad_config_files_say_what_is_wrong(tmp_path: Path, text: str, message: str):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        resolve_config("sft", path)


def test_saved_config_loads_back_to_the_same_config(tmp_path: Path):
    config = resolve_config("kto", overrides={"max_steps": 7, "lora_target": "q_proj,v_proj"})
    save_config(config, tmp_path / "c.yaml", {"dataset": "sha256:abc"})
    assert resolve_config("kto", tmp_path / "c.yaml") == config


def test_fingerprint_ignores_bookkeeping_but_not_hyperparameters():
    base = TrainConfig()
    assert base.fingerprint() == TrainConfig(save_steps=3, logging_steps=1).fingerprint()
    assert base.fingerprint() != TrainConfig(beta=0.2).fingerprint()


def test_cli_options_and_yaml_reach_the_trainer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    seen = {}

    def fake_train(method, dataset, base, *, config, output_version, resume, **_):
        seen.update(method=method, dataset=dataset, base=base, config=config, resume=resume)
        seen["output_version"] = output_version
        raise ConfigError("stop here")

    monkeypatch.setattr("tandem.train.run.train", fake_train)
    yaml_file = tmp_path / "run.yaml"
    yaml_file.write_text("beta: 0.3\nmax_steps: 10\n")
    result = CliRunner().invoke(
        app,
        [
            "train", "dpo", "--dataset", "prefs.jsonl", "--config", str(yaml_file),
            "--max-steps", "4", "--no-precompute-ref-log-probs", "--full", "--restart",
            "--output-version", "mine",
        ],
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    assert "stop here" in result.output
    config = seen["config"]
    assert (config.beta, config.max_steps, config.full) == (0.3, 4, True)
    assert config.precompute_ref_log_probs is False
    assert config.learning_rate == 5e-5
    assert (seen["method"], seen["base"], seen["resume"]) == ("dpo", "smollm2-135m-instruct", False)
    assert seen["output_version"] == "mine"


def test_cli_rejects_a_bad_option_value_before_loading_anything(tmp_path: Path):
    result = CliRunner().invoke(app, ["train", "sft", "--dataset", "x.jsonl", "--batch-size", "0"])
    assert result.exit_code == 2
    assert "batch_size must be at least 1" in result.output


def test_a_jsonl_file_is_hashed_and_its_kind_checked(tmp_path: Path):
    path = write_jsonl(tmp_path / "prefs.jsonl", [PAIR, PAIR])
    data = resolve_training_data(tmp_path, str(path), "preference")
    assert data.kind == "preference" and data.rows == 2 and data.snapshot_id is None
    assert data.hash.startswith("sha256:") and len(data.hash) == len("sha256:") + 64
    with pytest.raises(ConfigError, match="is a preference dataset; this method needs sft"):
        resolve_training_data(tmp_path, str(path), "sft")
    # Any change to the data changes the hash the version records.
    write_jsonl(path, [PAIR])
    assert resolve_training_data(tmp_path, str(path), "preference").hash != data.hash


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "no examples|columns must be"),
        ("{not json\n", r"prefs.jsonl:1: not JSON"),
        (json.dumps({"text": "hi"}) + "\n", "unrecognised columns|columns must be"),
        (json.dumps(PAIR) + "\n" + json.dumps({"prompt": []}) + "\n", "example 2 lacks"),
    ],
)
def test_broken_dataset_files_fail_with_the_line(tmp_path: Path, content: str, message: str):
    path = tmp_path / "prefs.jsonl"
    path.write_text(content)
    with pytest.raises(ConfigError, match=message):
        resolve_training_data(tmp_path, str(path), "preference")


def test_an_unknown_dataset_reference_is_a_config_error(tmp_path: Path):
    with pytest.raises(ConfigError, match="no-such-snapshot"):
        resolve_training_data(tmp_path, "no-such-snapshot", "sft")


REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("method", ["sft", "dpo", "kto", "reward"])
def test_example_config_files_load(method: str):
    config = resolve_config(method, REPO / "configs" / "train" / f"{method}.yaml")
    assert config.seed == 42


@pytest.mark.parametrize(
    ("name", "kind"),
    [("deepspeed_zero2", "DEEPSPEED"), ("deepspeed_zero3", "DEEPSPEED"), ("fsdp", "FSDP")],
)
def test_accelerate_configs_are_ready_to_launch(name: str, kind: str):
    import yaml

    config = yaml.safe_load((REPO / "configs" / "accelerate" / f"{name}.yaml").read_text())
    assert config["distributed_type"] == kind and config["mixed_precision"] == "bf16"
    # The registered checkpoint is gathered from shards: FSDP must save a full state dict and
    # ZeRO-3 must gather 16-bit weights, or the main process would save only its shard.
    if name == "fsdp":
        assert config["fsdp_config"]["fsdp_state_dict_type"] == "FULL_STATE_DICT"
    if name == "deepspeed_zero3":
        assert config["deepspeed_config"]["zero3_save_16bit_model"] is True


DRY_RUN_ENV = {  # what each config makes the launcher set in the processes' environment
    "deepspeed_zero2": {"ACCELERATE_USE_DEEPSPEED": "true", "ACCELERATE_DEEPSPEED_ZERO_STAGE": "2"},
    "deepspeed_zero3": {"ACCELERATE_DEEPSPEED_ZERO3_SAVE_16BIT_MODEL": "true"},
    "fsdp": {"ACCELERATE_USE_FSDP": "true", "FSDP_STATE_DICT_TYPE": "FULL_STATE_DICT"},
}


@pytest.mark.parametrize(("name", "env"), DRY_RUN_ENV.items())
def test_accelerate_configs_pass_a_dry_run(name: str, env: dict[str, str]):
    """accelerate's own launch steps, short of starting processes (no GPU, no DeepSpeed)."""
    from tandem.train.dry_run import plan_launch

    train_args = ["dpo", "--dataset", "prefs-v1", "--base", "smollm2-135m-instruct"]
    plan = plan_launch(REPO / "configs" / "accelerate" / f"{name}.yaml", 4, train_args)
    assert plan.problems == []
    assert (plan.num_processes, plan.mixed_precision) == (4, "bf16")
    assert "--nproc_per_node=4" in plan.command
    assert plan.command[-7:] == ["-m", "tandem.train", *train_args]
    assert env.items() <= plan.env.items()
    assert plan.plugin  # the FSDP / DeepSpeed plugin accepted the environment


def test_a_dry_run_refuses_what_would_not_launch_or_register(tmp_path: Path, capsys):
    import yaml

    from tandem.train.dry_run import main

    zero3 = yaml.safe_load((REPO / "configs" / "accelerate" / "deepspeed_zero3.yaml").read_text())
    zero3["deepspeed_config"]["zero3_save_16bit_model"] = False
    (tmp_path / "z3.yaml").write_text(yaml.safe_dump(zero3))
    assert main([str(tmp_path / "z3.yaml")]) == 2
    assert "ZeRO-3 needs zero3_save_16bit_model" in capsys.readouterr().err
    fsdp = yaml.safe_load((REPO / "configs" / "accelerate" / "fsdp.yaml").read_text())
    fsdp["fsdp_config"]["fsdp_state_dict_type"] = "SHARDED_STATE_DICT"
    (tmp_path / "fsdp.yaml").write_text(yaml.safe_dump(fsdp))
    assert main([str(tmp_path / "fsdp.yaml")]) == 2
    assert "fsdp_state_dict_type must be FULL_STATE_DICT" in capsys.readouterr().err
    (tmp_path / "typo.yaml").write_text(yaml.safe_dump({**fsdp, "num_proceses": 2}))
    assert main([str(tmp_path / "typo.yaml")]) == 2
    assert "num_proceses" in capsys.readouterr().err
    assert main([str(REPO / "configs" / "accelerate" / "fsdp.yaml"), "--", "sft"]) == 0
    assert "would run: torchrun" in capsys.readouterr().out


def test_a_dataset_snapshot_is_resolved_by_id_name_and_hash(session, tandem_home, tmp_path):
    from tandem.data.importing import import_file

    pairs = [
        {**PAIR, "prompt": [{"role": "user", "content": f"What is {n} + {n}?"}]} for n in range(6)
    ]
    built = import_file(
        session, tandem_home, write_jsonl(tmp_path / "p.jsonl", pairs), "preference",
        name="prefs-v1", test_fraction=0,
    )  # fmt: skip
    snapshot = built.snapshot
    for ref in (snapshot.id, "prefs-v1", snapshot.hash):
        data = resolve_training_data(tandem_home, ref, "preference")
        assert (data.snapshot_id, data.hash, data.kind) == (
            snapshot.id,
            snapshot.hash,
            "preference",
        )
        assert data.train_file == snapshot.train_file and data.rows == 6
        assert data.summary  # the snapshot card's opening goes into the model card
    with pytest.raises(ConfigError, match="needs kto data"):
        resolve_training_data(tandem_home, snapshot.id, "kto")


def test_resume_picks_the_newest_complete_checkpoint(tmp_path: Path):
    from tandem.train.run import latest_checkpoint

    assert latest_checkpoint(tmp_path) is None
    for step in (2, 10):
        (tmp_path / f"checkpoint-{step}").mkdir()
        (tmp_path / f"checkpoint-{step}" / "trainer_state.json").write_text("{}")
    (tmp_path / "checkpoint-12").mkdir()  # interrupted while saving: no trainer_state.json
    assert latest_checkpoint(tmp_path) == tmp_path / "checkpoint-10"  # numeric, not 2 > 10
