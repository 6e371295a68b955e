"""Adapter versions served by the embedded engine over their base's shared ONNX model.

A team's own (tiny, random) checkpoint is imported with its ONNX model; LoRA adapters are made
with PEFT and registered as versions. What users rely on: an adapter candidate answers as the
adapter does (the greedy answer of PEFT's own fp32 model), the base answers as before even when
both share a batch or a cached prompt, an adapter of an adapter applies both, and what cannot be
served over the base says how to serve it instead.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tandem.cli.common import cli_session
from tandem.cli.main import app
from tandem.core import Message, SamplingParams
from tandem.core.settings import Settings
from tandem.registry.embedded import build_fp32_onnx
from tandem.registry.versions import register_adapter
from tiny_checkpoint import build_tiny_checkpoint

pytestmark = pytest.mark.model  # the real ONNX builder (a subprocess, ~10 s)

# No repetition penalty: PEFT's reference (`generate`) has none.
GREEDY = SamplingParams(temperature=0, max_tokens=8, repetition_penalty=1.0)
SHORT = "Spell cat."
# Over the engine's 64-token minimum for the prefix cache, in the tiny tokenizer.
LONG = "hello world, spell cat and dog and user assistant " * 8


@pytest.fixture
def imported(tmp_path: Path) -> Path:
    checkpoint = tmp_path / "acme-tiny"
    build_tiny_checkpoint(checkpoint)
    result = CliRunner().invoke(app, ["models", "import", str(checkpoint), "--no-build-onnx"])
    assert result.exit_code == 0, result.output
    # The engine's graph from fp32 weights: int8 rounding would flip the near-ties of a random
    # model's greedy answers against PEFT's fp32 reference. The branches are the same in both.
    root = Settings.from_env().registry_dir / "acme-tiny"
    build_fp32_onnx(root / "hf", root / "onnx")
    return checkpoint


def _adapter(model, out: Path, seed: int, targets: object = "all-linear"):  # type: ignore[no-untyped-def]
    """A PEFT LoRA of `model` whose B is not zero (PEFT's start), saved in `out`."""
    import torch
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(seed)
    peft = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=targets))
    for name, param in peft.named_parameters():
        if "lora_B" in name:
            param.data.normal_(0, 0.5)
    peft.save_pretrained(out)
    return peft


def _greedy_reference(model, checkpoint: Path, text: str) -> str:  # type: ignore[no-untyped-def]
    import torch
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    ids = tokenizer.apply_chat_template(
        [{"role": "user", "content": text}], add_generation_prompt=True, return_dict=True
    )["input_ids"]
    with torch.no_grad():
        out = model.generate(torch.tensor([ids]), max_new_tokens=GREEDY.max_tokens, do_sample=False)
    # A random model's bytes often end inside a UTF-8 character: the engine's streaming decoder
    # holds such a tail back, `decode` shows it as U+FFFD.
    return str(tokenizer.decode(out[0, len(ids) :])).rstrip("\ufffd")


def _answer(engine, text: str) -> str:  # type: ignore[no-untyped-def]
    return asyncio.run(engine.complete([Message.text("user", text)], GREEDY)).text.rstrip("\ufffd")


def test_adapter_versions_answer_as_peft_over_one_shared_base(
    imported: Path, tmp_path: Path
) -> None:
    from transformers import AutoModelForCausalLM

    from tandem.engines.onnx import OnnxEngine
    from tandem.engines.onnx_adapter import AdapterEngine
    from tandem.engines.setup import build_catalog

    base_model = AutoModelForCausalLM.from_pretrained(imported)
    first = _adapter(base_model, tmp_path / "first", seed=1)
    merged_first = first.merge_and_unload()  # what the second adapter is trained on
    expected = {"acme-tiny-lora": _greedy_reference(merged_first, imported, SHORT)}
    second = _adapter(merged_first, tmp_path / "second", seed=2)
    expected["acme-tiny-lora-2"] = _greedy_reference(second, imported, SHORT)
    expected["acme-tiny"] = _greedy_reference(
        AutoModelForCausalLM.from_pretrained(imported), imported, SHORT
    )
    assert len(set(expected.values())) == 3  # the adapters change the answer

    settings = Settings.from_env()
    with cli_session(settings) as session:
        register_adapter(
            session, settings.home, "acme-tiny-lora", tmp_path / "first", parent="acme-tiny"
        )
        register_adapter(
            session, settings.home, "acme-tiny-lora-2", tmp_path / "second", parent="acme-tiny-lora"
        )
    catalog = build_catalog(settings)
    try:
        engines = {name: catalog.get(name) for name in expected}
        base = engines["acme-tiny"]
        assert isinstance(base, OnnxEngine)
        for name in ("acme-tiny-lora", "acme-tiny-lora-2"):
            assert isinstance(engines[name], AdapterEngine) and engines[name].base is base
        # one at a time, then all in one batch (each row its own branches)
        assert {name: _answer(e, SHORT) for name, e in engines.items()} == expected

        async def together() -> list[str]:
            prompt = [Message.text("user", SHORT)]
            names = list(expected) * 2
            done = await asyncio.gather(*(engines[n].complete(prompt, GREEDY) for n in names))
            return [c.text.rstrip("\ufffd") for c in done]

        assert asyncio.run(together()) == [*expected.values()] * 2

        # A long prompt the adapter answered first leaves its keys and values in the prefix
        # cache; the base must not reuse them (they came from other weights).
        alone = _greedy_reference(AutoModelForCausalLM.from_pretrained(imported), imported, LONG)
        _answer(engines["acme-tiny-lora"], LONG)
        reused = base.reused_prefix_tokens
        assert _answer(base, LONG) == alone
        assert base.reused_prefix_tokens == reused
        assert _answer(base, LONG) == alone
        assert base.reused_prefix_tokens > reused  # its own cached prompt is reused
    finally:
        catalog.close()


def test_an_adapter_the_base_cannot_carry_says_to_merge_it(imported: Path, tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM

    from tandem.engines.base import EngineError
    from tandem.engines.onnx import OnnxEngine
    from tandem.engines.setup import build_catalog

    model = AutoModelForCausalLM.from_pretrained(imported)
    projections = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    _adapter(model, tmp_path / "head", seed=3, targets=[*projections, "lm_head"])
    settings = Settings.from_env()
    with cli_session(settings) as session:
        register_adapter(
            session, settings.home, "acme-tiny-head", tmp_path / "head", parent="acme-tiny"
        )
    catalog = build_catalog(settings)
    try:
        with pytest.raises(EngineError, match="tandem models merge acme-tiny-head --onnx"):
            catalog.get("acme-tiny-head")
        assert _answer(catalog.get("acme-tiny"), SHORT)  # the base still serves
    finally:
        catalog.close()
    # Doing what the error says serves the version as a merged copy of its own.
    merged = CliRunner().invoke(app, ["models", "merge", "acme-tiny-head", "--onnx"])
    assert merged.exit_code == 0, merged.output
    catalog = build_catalog(settings)
    try:
        engine = catalog.get("acme-tiny-head")
        assert isinstance(engine, OnnxEngine) and engine is not catalog.get("acme-tiny")
        # int8 weights (the merged copy is built like any version): its answer is the
        # adapter's, not the base's; the exact tokens are the fp32 test's above.
        assert _answer(engine, SHORT) != _answer(catalog.get("acme-tiny"), SHORT)
    finally:
        catalog.close()
