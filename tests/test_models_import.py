"""`tandem models import PATH`: a team's own Hugging Face checkpoint as a base version.

Hermetic: a tiny random-weight Llama (2 layers, hidden size 32) with a BPE tokenizer trained
here by the `tokenizers` library, saved with save_pretrained; no hub, no real model.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tandem.cli.common import ExitCode, cli_session
from tandem.cli.main import app
from tandem.core.settings import Settings
from tandem.store import ModelVersionRepo
from tiny_checkpoint import CHAT_TEMPLATE, build_tiny_checkpoint


@pytest.fixture(scope="session")
def tiny_checkpoint_once(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    """The checkpoint and its parameter count, built once per session."""
    out = tmp_path_factory.mktemp("checkpoints") / "acme-tiny"
    return out, build_tiny_checkpoint(out)


@pytest.fixture
def checkpoint(tiny_checkpoint_once: tuple[Path, int], tmp_path: Path) -> Path:
    """A copy of the tiny checkpoint this test may break."""
    copy = tmp_path / "src" / "acme-tiny"
    shutil.copytree(tiny_checkpoint_once[0], copy)
    return copy


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["models", "import", *args])
    return result.exit_code, result.stdout, result.stderr


def test_import_registers_a_base_version_with_card_and_manifest(
    checkpoint: Path, tiny_checkpoint_once: tuple[Path, int], tandem_home: Path
) -> None:
    from tandem.registry.lineage import render_lineage
    from tandem.registry.versions import chat_versions
    from tandem.train.run import base_checkpoint

    code, out, err = invoke(str(checkpoint), "--no-build-onnx")
    assert code == 0, err
    shown = json.loads(out)
    parameters = tiny_checkpoint_once[1]
    assert shown["id"] == "acme-tiny" and shown["formats"] == {"hf": "hf"}
    assert (shown["architecture"], shown["parameters"]) == ("LlamaForCausalLM", parameters)

    root = tandem_home / "models" / "acme-tiny"
    with cli_session(Settings.from_env()) as session:
        repo = ModelVersionRepo(session)
        row = repo.get("acme-tiny")
        assert (row.parent_id, row.status, row.base_path) == (None, "candidate", str(root))
        assert [v.id for v in repo.lineage("acme-tiny")] == ["acme-tiny"]  # a lineage root
        assert row.config["kind"] == "chat" and row.config["source"] == str(checkpoint)
        assert row.config["dtype"] == "float32" and row.config["linked"] is False
        assert render_lineage(repo.list()).startswith("acme-tiny  candidate")
        card = row.card
    manifest = json.loads((root / "manifest.json").read_text())
    assert (manifest["kind"], manifest["parent"]) == ("chat", None)
    assert manifest["formats"] == {"hf": "hf"}
    assert manifest["imported"]["parameters"] == parameters
    assert card == (root / "README.md").read_text()
    for fact in (str(checkpoint), "LlamaForCausalLM", f"{parameters:,}", "float32", "imported"):
        assert fact in card
    assert "chat template | present" in card and "--no-build-onnx" in card
    hf = root / "hf"
    assert (hf / "model.safetensors").is_file() and not (hf / "model.safetensors").is_symlink()
    files = {p.name for p in hf.iterdir()}
    assert {"config.json", "tokenizer.json", "tokenizer_config.json"} <= files
    assert not (tandem_home / "runs" / "acme-tiny.import-staging").exists()
    # What `tandem train --base` and the console's Jobs page read.
    assert "acme-tiny" in chat_versions(tandem_home)
    assert base_checkpoint(tandem_home, "acme-tiny") == hf


def test_link_symlinks_the_files_and_the_default_name_is_sanitized(
    checkpoint: Path, tandem_home: Path
) -> None:
    odd = checkpoint.rename(checkpoint.with_name("Acme Tiny@v2 (final)"))
    code, out, err = invoke(str(odd), "--link", "--no-build-onnx")
    assert code == 0, err
    name = json.loads(out)["id"]
    assert name == "Acme-Tiny-v2-final"
    weights = tandem_home / "models" / name / "hf" / "model.safetensors"
    assert weights.is_symlink() and weights.resolve() == odd / "model.safetensors"
    assert "symlinked" in (tandem_home / "models" / name / "README.md").read_text()


def test_sharded_weights_are_counted_once_and_a_missing_shard_is_refused(
    checkpoint: Path, tiny_checkpoint_once: tuple[Path, int]
) -> None:
    from safetensors.torch import load_file, save_file

    tensors = load_file(checkpoint / "model.safetensors")
    names = sorted(tensors)
    shards = {
        "model-00001-of-00002.safetensors": names[:5],
        "model-00002-of-00002.safetensors": names[5:],
    }
    for shard, keys in shards.items():
        save_file({k: tensors[k] for k in keys}, checkpoint / shard, metadata={"format": "pt"})
    weight_map = {k: shard for shard, keys in shards.items() for k in keys}
    (checkpoint / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    (checkpoint / "model.safetensors").rename(checkpoint / "stale.safetensors.old")
    code, out, err = invoke(str(checkpoint), "--no-build-onnx")
    assert code == 0, err
    assert json.loads(out)["parameters"] == tiny_checkpoint_once[1]
    (checkpoint / "model-00002-of-00002.safetensors").unlink()
    code, _, err = invoke(str(checkpoint), "--name", "again", "--no-build-onnx")
    assert code == ExitCode.USAGE
    assert (
        err == "error: weights incomplete: 1 shard(s) missing, model-00002-of-00002.safetensors\n"
    )


def test_the_onnx_default_follows_the_parameter_threshold(
    checkpoint: Path, tandem_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Small enough: the default engine's ONNX model is built (the builder is faked here);
    over the threshold: not, and the card says why."""
    import tandem.registry.checkpoint_import as importer
    import tandem.registry.versions as versions

    built: list[Path] = []

    def fake_build(hf: Path, out: Path, cache: Path) -> None:
        out.mkdir()
        (out / "model.onnx").write_bytes(b"")
        built.append(hf)

    monkeypatch.setattr(versions, "build_onnx", fake_build)
    assert invoke(str(checkpoint), "--name", "small")[0] == 0
    assert built and json.loads((tandem_home / "models/small/manifest.json").read_text())[
        "formats"
    ] == {"hf": "hf", "onnx-int8": "onnx"}

    monkeypatch.setattr(importer, "ONNX_MAX_PARAMETERS", 1000)
    assert invoke(str(checkpoint), "--name", "big")[0] == 0
    assert len(built) == 1
    assert "not built: over 1K parameters" in (tandem_home / "models/big/README.md").read_text()


def test_a_head_size_the_onnx_engine_cannot_run_is_left_to_transformers(
    checkpoint: Path, tandem_home: Path
) -> None:
    _edit_json("config.json", head_dim=8)(checkpoint)
    code, out, err = invoke(str(checkpoint))
    assert code == 0, err
    assert json.loads(out)["formats"] == {"hf": "hf"}
    card = (tandem_home / "models/acme-tiny/README.md").read_text()
    assert "not built: head size 8" in card and "`acme-tiny@transformers`" in card
    code, _, err = invoke(str(checkpoint), "--name", "forced", "--build-onnx")
    assert code == ExitCode.USAGE
    assert "the default engine cannot serve a head size of 8" in err


def test_a_failed_onnx_build_falls_back_unless_it_was_asked_for(
    checkpoint: Path, tandem_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tandem.registry.versions as versions
    from tandem.registry.embedded import PreparationError

    def broken_build(hf: Path, out: Path, cache: Path) -> None:
        out.mkdir()
        raise PreparationError("ONNX conversion failed:\nUnsupported head size 8")

    monkeypatch.setattr(versions, "build_onnx", broken_build)
    code, out, err = invoke(str(checkpoint), "--name", "auto")
    assert code == 0, err
    assert json.loads(out)["formats"] == {"hf": "hf"}
    assert not (tandem_home / "models/auto/onnx").exists()
    assert "Unsupported head size 8" in (tandem_home / "models/auto/README.md").read_text()

    code, out, err = invoke(str(checkpoint), "--name", "asked", "--build-onnx")
    assert code == ExitCode.USAGE
    assert err.strip() == "error: building the ONNX model failed: Unsupported head size 8"
    assert not (tandem_home / "models/asked").exists()
    assert not (tandem_home / "runs/asked.import-staging").exists()


def _remove(*names: str):  # type: ignore[no-untyped-def]
    def change(path: Path) -> None:
        for name in names:
            (path / name).unlink()

    return change


def _edit_json(name: str, **changes: object):  # type: ignore[no-untyped-def]
    def change(path: Path) -> None:
        data = json.loads((path / name).read_text())
        for key, value in changes.items():
            if value is None:
                data.pop(key, None)
            else:
                data[key] = value
        (path / name).write_text(json.dumps(data))

    return change


def _adapter_only(path: Path) -> None:
    (path / "config.json").rename(path / "adapter_config.json")


def _weights_as_bin(path: Path) -> None:
    (path / "model.safetensors").rename(path / "pytorch_model.bin")


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        (_remove("config.json"), "no config.json in {path}: not a Hugging Face checkpoint"),
        (
            _adapter_only,
            "{path} is a PEFT adapter, not a checkpoint: import it with --adapter-of BASE",
        ),
        (
            _weights_as_bin,
            "no safetensors weights in {path} (found pytorch_model.bin: save it with "
            "save_pretrained(safe_serialization=True))",
        ),
        (
            _remove("tokenizer.json"),
            "no tokenizer in {path}: expected tokenizer.json (or tokenizer.model, or "
            "vocab.json and merges.txt) beside config.json",
        ),
        (
            _edit_json("tokenizer_config.json", chat_template=None),
            "no chat template in {path}: add one (tokenizer_config.json's chat_template or "
            "chat_template.jinja); tandem renders every conversation with the model's own",
        ),
        (
            _edit_json("config.json", model_type="acme", architectures=["AcmeForCausalLM"]),
            "unsupported architecture AcmeForCausalLM: transformers {version} has no causal "
            "LM for model_type 'acme'",
        ),
        (
            _edit_json("config.json", architectures=["LlamaForSequenceClassification"]),
            "unsupported architecture LlamaForSequenceClassification: not a causal language "
            "model AutoModelForCausalLM loads",
        ),
        (
            _edit_json("config.json", quantization_config={"quant_method": "gptq"}),
            "{path} holds gptq weights: import the unquantized checkpoint (training and the "
            "ONNX builder start from float weights)",
        ),
    ],
    ids=["no-config", "adapter", "no-safetensors", "no-tokenizer", "no-chat-template",
         "unknown-arch", "not-causal", "quantized"],
)  # fmt: skip
def test_a_checkpoint_that_fails_a_check_is_refused_in_one_line(
    checkpoint: Path, tandem_home: Path, breakage, message: str
) -> None:
    import transformers

    (checkpoint / "chat_template.jinja").unlink(missing_ok=True)
    _edit_json("tokenizer_config.json", chat_template=CHAT_TEMPLATE)(checkpoint)
    breakage(checkpoint)
    code, out, err = invoke(str(checkpoint), "--no-build-onnx")
    expected = message.format(path=checkpoint, version=transformers.__version__)
    assert (code, out, err) == (ExitCode.USAGE, "", f"error: {expected}\n")
    assert not (tandem_home / "models" / "acme-tiny").exists()


def test_a_taken_name_and_a_bad_name_are_refused(checkpoint: Path) -> None:
    assert invoke(str(checkpoint), "--no-build-onnx")[0] == 0
    code, _, err = invoke(str(checkpoint), "--no-build-onnx")
    assert code == ExitCode.CONFLICT
    assert err == "error: model version 'acme-tiny' already exists: choose another --name\n"
    code, _, err = invoke(str(checkpoint), "--name", "smollm2@onnx", "--no-build-onnx")
    assert code == ExitCode.USAGE and "invalid version name 'smollm2@onnx'" in err
    code, _, err = invoke(str(checkpoint / "nowhere"))
    assert (code, err) == (ExitCode.USAGE, f"error: {checkpoint / 'nowhere'} is not a directory\n")


def test_an_adapter_trained_elsewhere_is_imported_as_an_adapter_version(
    checkpoint: Path, tandem_home: Path
) -> None:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    assert invoke(str(checkpoint), "--no-build-onnx")[0] == 0
    adapter = checkpoint.parent / "acme-lora"
    model = AutoModelForCausalLM.from_pretrained(checkpoint)
    get_peft_model(model, LoraConfig(r=4, target_modules="all-linear")).save_pretrained(adapter)

    code, out, err = invoke(str(adapter), "--adapter-of", "acme-tiny")
    assert code == 0, err
    assert json.loads(out)["adapter_of"] == "acme-tiny"
    root = tandem_home / "models" / "acme-lora"
    manifest = json.loads((root / "manifest.json").read_text())
    assert (manifest["adapter_of"], manifest["formats"]) == ("acme-tiny", {"adapter": "adapter"})
    assert (root / "adapter" / "adapter_model.safetensors").is_file()
    with cli_session(Settings.from_env()) as session:
        row = ModelVersionRepo(session).get("acme-lora")
        assert (row.parent_id, row.status) == ("acme-tiny", "candidate")
        assert "A LoRA adapter of acme-tiny (rank 4)" in row.card

    assert invoke(str(adapter), "--adapter-of", "acme-tiny")[0] == ExitCode.CONFLICT
    assert invoke(str(adapter), "--adapter-of", "nope", "--name", "x")[0] == ExitCode.NOT_FOUND
    code, _, err = invoke(str(checkpoint), "--adapter-of", "acme-tiny", "--name", "y")
    assert code == ExitCode.USAGE and "is not a PEFT adapter" in err


@pytest.mark.model  # a real (if tiny) TRL run: seconds of imports, kept out of the fast suite
def test_training_starts_from_an_imported_base(checkpoint: Path, tandem_home: Path) -> None:
    from tandem.train import resolve_config, train

    assert invoke(str(checkpoint), "--no-build-onnx")[0] == 0
    data = checkpoint.parent / "sft.jsonl"
    rows = [
        {
            "messages": [
                {"role": "user", "content": f"Spell {w}."},
                {"role": "assistant", "content": w},
            ]
        }
        for w in ("cat", "dog")
    ]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = resolve_config(
        "sft", overrides={"max_steps": 1, "batch_size": 2, "max_length": 64, "build_onnx": False}
    )
    settings = Settings.from_env()
    result = train(
        "sft",
        str(data),
        "acme-tiny",
        home=tandem_home,
        database_url=settings.database_url,
        config=config,
        output_version="acme-tiny-sft",
    )
    assert result.metrics["steps"] == 1
    with cli_session(settings) as session:
        repo = ModelVersionRepo(session)
        assert [v.id for v in repo.lineage("acme-tiny-sft")] == ["acme-tiny-sft", "acme-tiny"]
        # A LoRA run registers an adapter version: no merged weights, no ONNX model.
        assert repo.get("acme-tiny-sft").formats == {"adapter": "adapter"}
    root = tandem_home / "models" / "acme-tiny-sft"
    adapter = root / "adapter"
    assert (adapter / "adapter_model.safetensors").is_file()
    assert (adapter / "tokenizer.json").is_file() and not (root / "hf").exists()

    # Training from the adapter version merges it first; the new adapter adapts it.
    again = train(
        "sft",
        str(data),
        "acme-tiny-sft",
        home=tandem_home,
        database_url=settings.database_url,
        config=config,
        output_version="acme-tiny-sft-2",
    )
    assert again.metrics["steps"] == 1
    assert (root / "hf" / "model.safetensors").is_file()
    manifest = json.loads(
        (tandem_home / "models" / "acme-tiny-sft-2" / "manifest.json").read_text()
    )
    assert manifest["adapter_of"] == "acme-tiny-sft" and manifest["formats"] == {
        "adapter": "adapter"
    }
    with cli_session(settings) as session:
        assert ModelVersionRepo(session).get("acme-tiny-sft").formats["hf"] == "hf"
    from tandem.registry.versions import merged_checkpoint

    hf = merged_checkpoint(tandem_home, "acme-tiny-sft-2")
    assert (hf / "model.safetensors").is_file() and (hf / "tokenizer.json").is_file()


@pytest.mark.model  # the real ONNX builder (a subprocess, ~10 s) and both engines
def test_a_small_import_is_served_by_the_default_engine(checkpoint: Path) -> None:
    import asyncio

    from tandem.core import Message, SamplingParams
    from tandem.engines.setup import build_catalog

    code, out, err = invoke(str(checkpoint))
    assert code == 0, err
    assert json.loads(out)["formats"] == {"hf": "hf", "onnx-int8": "onnx"}
    catalog = build_catalog(Settings.from_env())
    greedy = SamplingParams(temperature=0, max_tokens=4)
    try:
        for model_id in ("acme-tiny", "acme-tiny@transformers"):
            prompt = [Message.text("user", "Spell cat.")]
            done = asyncio.run(catalog.get(model_id).complete(prompt, greedy))
            assert done.usage.completion_tokens == 4
            assert done.rendered_prompt.endswith("<|im_start|>assistant\n")
    finally:
        catalog.close()
