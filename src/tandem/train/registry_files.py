"""What a finished training run leaves in its version's staging directory for the registry
(`tandem.registry.versions.register_trained` turns that directory into the version):

    save_trained("dpo", trainer, base_hf, run_dir, run_dir / "version")

A LoRA run of a chat model (sft, dpo, kto) saves only its PEFT adapter, `adapter/`
(registry ADAPTER_FORMAT), with the tokenizer and chat template so the version renders like its
base: an adapter version, merged into full weights only when something asks
(`tandem.registry.versions.merged_checkpoint`). A full run, and a reward model (its score head
is new, not an adapter of the base), is saved as a plain fp32 Hugging Face checkpoint, `hf/`,
any LoRA merged into the weights (`merge_and_unload`).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

ADAPTER_DIR = "adapter"  # tandem.registry.versions.ADAPTER_FORMAT
HF_DIR = "hf"


def save_trained(method: str, trainer: Any, base_hf: Path, run_dir: Path, staging: Path) -> None:
    """Save the trainer's model into `staging` (see the module docstring); every process calls
    it. One process: save from (or merge) the trained model in place, no second copy in memory.
    Several (accelerate, DeepSpeed, FSDP) the weights may be sharded, so the trainer saves
    first (gathering them; with LoRA it writes the adapter) and the main process copies the
    adapter, or reloads base + adapter on the CPU and merges there."""
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    tokenizer = trainer.processing_class
    adapter = None if method == "reward" else staging / ADAPTER_DIR
    sharded = trainer.is_deepspeed_enabled or trainer.is_fsdp_enabled
    if not sharded and trainer.accelerator.num_processes == 1:
        model = trainer.accelerator.unwrap_model(trainer.model)
        if hasattr(model, "merge_and_unload"):
            if adapter is not None:
                model.save_pretrained(adapter)
                tokenizer.save_pretrained(adapter)
                return
            model = model.merge_and_unload()
    else:
        final = run_dir / "final"
        trainer.save_model(str(final))
        if not trainer.accelerator.is_main_process:
            return
        auto = AutoModelForSequenceClassification if method == "reward" else AutoModelForCausalLM
        extra: dict[str, Any] = {"num_labels": 1} if method == "reward" else {}
        if (final / "adapter_config.json").exists():
            from peft import PeftModel

            if adapter is not None:
                # The Trainer's pickled arguments are no part of the version.
                skip = shutil.ignore_patterns("training_args.bin")
                shutil.copytree(final, adapter, dirs_exist_ok=True, ignore=skip)
                tokenizer.save_pretrained(adapter)
                return
            base = auto.from_pretrained(base_hf, dtype=torch.float32, **extra)
            model = PeftModel.from_pretrained(base, final).merge_and_unload()
        else:
            model = auto.from_pretrained(final, dtype=torch.float32, **extra)
    model = model.to("cpu", dtype=torch.float32)  # the registry keeps fp32 checkpoints
    model.config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(staging / HF_DIR)
    tokenizer.save_pretrained(staging / HF_DIR)  # with the chat template: renders like its base
