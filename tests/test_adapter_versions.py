"""A LoRA training registers an adapter version on its base (`adapter/` + `"adapter_of"`, no
merged weights); `merged_checkpoint` and `tandem models merge` build the full weights only when
something asks, recursively through adapters of adapters.

Hermetic: the tiny random-weight Llama of tests/tiny_checkpoint.py imported with
`tandem models import`, adapters made with PEFT directly (random, non-zero LoRA weights so a
merge visibly changes the model).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from typer.testing import CliRunner

from tandem.cli.common import cli_session
from tandem.cli.main import app
from tandem.core.settings import Settings
from tandem.store import ModelVersionRepo
from tiny_checkpoint import build_tiny_checkpoint

pytest.importorskip("peft")

BASE = "acme-tiny"


@pytest.fixture(scope="session")
def tiny_once(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("checkpoints") / BASE
    build_tiny_checkpoint(out)
    return out


@pytest.fixture
def base(tiny_once: Path, tandem_home: Path) -> Path:
    """The tiny checkpoint imported as the base version; its `hf/` directory."""
    result = CliRunner().invoke(app, ["models", "import", str(tiny_once), "--no-build-onnx"])
    assert result.exit_code == 0, result.stderr
    return tandem_home / "models" / BASE / "hf"


def _peft_model(hf: Path, seed: int) -> Any:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(hf, dtype=torch.float32)
    # init_lora_weights=False: random A and B, so the adapter is not a no-op.
    lora = LoraConfig(
        r=2,
        lora_alpha=4,
        target_modules="all-linear",
        init_lora_weights=False,
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, lora)


def _trainer(model: Any, hf: Path) -> SimpleNamespace:
    """What `save_trained` reads of a TRL trainer, for one process."""
    from transformers import AutoTokenizer

    accelerator = SimpleNamespace(num_processes=1, is_main_process=True, unwrap_model=lambda m: m)
    return SimpleNamespace(
        model=model,
        processing_class=AutoTokenizer.from_pretrained(hf),
        accelerator=accelerator,
        is_deepspeed_enabled=False,
        is_fsdp_enabled=False,
    )


def _register_lora(home: Path, version: str, parent: str, seed: int) -> Path:
    """What `tandem train` does after a LoRA run of a chat model: save, then register."""
    from tandem.registry.versions import merged_checkpoint, register_trained
    from tandem.train.registry_files import save_trained

    settings = Settings.from_env()
    with cli_session(settings) as session:
        parent_hf = merged_checkpoint(home, parent)
        staging = home / "runs" / version / "version"
        trainer = _trainer(_peft_model(parent_hf, seed), parent_hf)
        save_trained("sft", trainer, parent_hf, staging.parent, staging)
        (staging / "metrics.json").write_text("{}")
        register_trained(
            session, home, version, staging, parent=parent, config={}, metrics={}, card="# c"
        )
    return home / "models" / version


def _expected_merge(base_hf: Path, adapter: Path) -> dict[str, Any]:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base_hf, dtype=torch.float32)
    return dict(PeftModel.from_pretrained(model, adapter).merge_and_unload().state_dict())


def _assert_weights(hf: Path, expected: dict[str, Any]) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    got = AutoModelForCausalLM.from_pretrained(hf, dtype=torch.float32).state_dict()
    assert got.keys() == expected.keys()
    for name, tensor in expected.items():
        assert torch.allclose(got[name], tensor, atol=1e-6), name


def test_a_lora_training_registers_an_adapter_only_version(base: Path, tandem_home: Path):
    from tandem.engines.lora import read_adapter
    from tandem.registry.versions import chat_versions

    root = _register_lora(tandem_home, "lora-v1", BASE, seed=1)
    assert not (root / "hf").exists() and not (root / "onnx").exists()
    adapter = root / "adapter"
    assert json.loads((adapter / "adapter_config.json").read_text())["r"] == 2
    assert (adapter / "adapter_model.safetensors").is_file()
    # The tokenizer and chat template travel with it: the version renders like its base.
    assert (adapter / "tokenizer.json").is_file()
    assert (adapter / "chat_template.jinja").is_file() or "chat_template" in json.loads(
        (adapter / "tokenizer_config.json").read_text()
    )
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["formats"] == {"adapter": "adapter"}
    assert (manifest["adapter_of"], manifest["parent"], manifest["kind"]) == (BASE, BASE, "chat")
    with cli_session(Settings.from_env()) as session:
        row = ModelVersionRepo(session).get("lora-v1")
        assert (row.parent_id, row.formats) == (BASE, {"adapter": "adapter"})
    found = read_adapter(tandem_home / "models", "lora-v1")
    assert found is not None and found.base == BASE and found.path == adapter
    # A base to train from: merged on demand.
    assert chat_versions(tandem_home) == [BASE, "lora-v1"]


def test_merging_on_demand_equals_peft_merge_and_unload(base: Path, tandem_home: Path):
    from tandem.registry.versions import merged_checkpoint

    root = _register_lora(tandem_home, "lora-v1", BASE, seed=1)
    expected = _expected_merge(base, root / "adapter")
    settings = Settings.from_env()
    with cli_session(settings) as session:
        hf = merged_checkpoint(tandem_home, "lora-v1", session)
        assert hf == root / "hf"
        assert ModelVersionRepo(session).get("lora-v1").formats == {
            "adapter": "adapter",
            "hf": "hf",
        }
    _assert_weights(hf, expected)
    assert (hf / "tokenizer.json").is_file()
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["formats"] == {"adapter": "adapter", "hf": "hf"}
    assert sorted(p.name for p in root.iterdir() if p.name.startswith(".")) == []  # no temp left
    # A second ask reads what is there.
    stamp = (hf / "model.safetensors").stat().st_mtime_ns
    assert merged_checkpoint(tandem_home, "lora-v1") == hf
    assert (hf / "model.safetensors").stat().st_mtime_ns == stamp


def test_an_adapter_of_an_adapter_version_merges_through_the_chain(base: Path, tandem_home: Path):
    import torch

    from tandem.registry.versions import merged_checkpoint

    first = _register_lora(tandem_home, "lora-v1", BASE, seed=1)  # merges nothing yet
    assert not (first / "hf").exists()
    second = _register_lora(tandem_home, "lora-v2", "lora-v1", seed=2)
    assert json.loads((second / "manifest.json").read_text())["adapter_of"] == "lora-v1"
    # Start over from adapters alone: the chain must merge lora-v1 first, then lora-v2 on it.
    shutil.rmtree(first / "hf")
    hf = merged_checkpoint(tandem_home, "lora-v2")
    assert (first / "hf" / "config.json").exists()
    expected_first = _expected_merge(base, first / "adapter")
    _assert_weights(first / "hf", expected_first)
    expected = _expected_merge(first / "hf", second / "adapter")
    _assert_weights(hf, expected)
    # Not just the first adapter again: the second one moved the weights.
    name = next(k for k in expected if k.endswith("q_proj.weight"))
    assert not torch.allclose(expected[name], expected_first[name])


def test_training_asks_for_an_adapter_versions_merged_weights(base: Path, tandem_home: Path):
    from tandem.train.config import ConfigError
    from tandem.train.run import base_checkpoint

    root = _register_lora(tandem_home, "lora-v1", BASE, seed=1)
    shutil.rmtree(root / "hf", ignore_errors=True)
    assert base_checkpoint(tandem_home, "lora-v1") == root / "hf"
    assert (root / "hf" / "model.safetensors").is_file()
    assert base_checkpoint(tandem_home, BASE) == base

    # An adapter whose base has no weights here (served by another server) cannot be trained.
    orphan = tandem_home / "models" / "orphan"
    shutil.copytree(root / "adapter", orphan / "adapter")
    manifest = {"kind": "chat", "adapter_of": "remote-base", "formats": {"adapter": "adapter"}}
    (orphan / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ConfigError, match="orphan"):
        base_checkpoint(tandem_home, "orphan")
    from tandem.registry.versions import chat_versions

    assert "orphan" not in chat_versions(tandem_home)


def test_models_merge_command_builds_hf_and_onnx_on_demand(
    base: Path, tandem_home: Path, monkeypatch: pytest.MonkeyPatch
):
    from tandem.registry import versions

    built: list[Path] = []

    def fake_build(hf: Path, out: Path, cache: Path) -> None:
        assert (hf / "config.json").exists()  # built from the merged weights
        out.mkdir(parents=True)
        (out / "model.onnx").write_bytes(b"")
        built.append(hf)

    monkeypatch.setattr(versions, "build_onnx", fake_build)
    root = _register_lora(tandem_home, "lora-v1", BASE, seed=1)
    assert built == []  # nothing built at training time

    result = CliRunner().invoke(app, ["models", "merge", "lora-v1", "--onnx"])
    assert result.exit_code == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown == {"id": "lora-v1", "hf": str(root / "hf"), "onnx": str(root / "onnx")}
    assert built == [root / "hf"] and (root / "onnx" / "model.onnx").exists()
    manifest = json.loads((root / "manifest.json").read_text())
    formats = {"adapter": "adapter", "hf": "hf", "onnx-int8": "onnx"}
    assert manifest["formats"] == formats and manifest["adapter_of"] == BASE
    with cli_session(Settings.from_env()) as session:
        assert ModelVersionRepo(session).get("lora-v1").formats == formats

    # Merging a version with weights already is a no-op; an unknown one is "not found".
    assert CliRunner().invoke(app, ["models", "merge", BASE]).exit_code == 0
    assert CliRunner().invoke(app, ["models", "merge", "nowhere"]).exit_code != 0
