"""A LoRA run keeps its adapter alone (merged weights only on demand, tests/
test_adapter_versions.py), and the registry marks the version as an adapter of its base, which
is what a vLLM backend with `"lora": true` loads (tandem.engines.lora, docs/howto/vllm.md)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from tandem.engines.lora import read_adapter
from tandem.registry.versions import chat_versions, write_version_files


def _trainer(model: object) -> SimpleNamespace:
    """What `save_trained` reads of a TRL trainer, for one process."""

    class Tokenizer:
        pad_token_id = 0

        def save_pretrained(self, out: Path) -> None:
            Path(out, "tokenizer_config.json").write_text("{}")

    accelerator = SimpleNamespace(num_processes=1, is_main_process=True, unwrap_model=lambda m: m)
    return SimpleNamespace(
        model=model,
        processing_class=Tokenizer(),
        accelerator=accelerator,
        is_deepspeed_enabled=False,
        is_fsdp_enabled=False,
    )


def test_a_lora_run_registers_its_adapter_alone(tmp_path: Path):
    pytest.importorskip("peft")
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    from tandem.train.registry_files import save_trained

    config = LlamaConfig(
        vocab_size=32,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
    )
    lora = LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
    model = get_peft_model(LlamaForCausalLM(config), lora)
    staging = tmp_path / "staging"
    save_trained("sft", _trainer(model), tmp_path, tmp_path, staging)
    assert not (staging / "hf").exists()  # no merged weights at training time
    adapter = staging / "adapter"
    assert json.loads((adapter / "adapter_config.json").read_text())["r"] == 2
    assert any(adapter.glob("adapter_model.*"))

    home = tmp_path / "home"
    root = write_version_files(
        home, "lora-v1", staging, kind="chat", parent="base-v1", build_onnx_format=False
    )
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["formats"] == {"adapter": "adapter"}
    assert manifest["adapter_of"] == "base-v1"
    found = read_adapter(home / "models", "lora-v1")
    assert found is not None and found.base == "base-v1" and found.path == root / "adapter"
    assert chat_versions(home) == []  # its base has no weights here: nothing to merge onto
    (home / "models" / "base-v1" / "hf").mkdir(parents=True)
    (home / "models" / "base-v1" / "manifest.json").write_text('{"kind": "chat"}')
    assert chat_versions(home) == ["base-v1", "lora-v1"]  # mergeable: a base to train from


def test_a_reward_run_keeps_no_adapter(tmp_path: Path):
    staging = tmp_path / "staging"
    (staging / "hf").mkdir(parents=True)
    (staging / "hf" / "config.json").write_text("{}")
    home = tmp_path / "home"
    root = write_version_files(home, "rm-v1", staging, kind="reward", parent="base-v1")
    assert "adapter_of" not in json.loads((root / "manifest.json").read_text())
    assert read_adapter(home / "models", "rm-v1") is None
