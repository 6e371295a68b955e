"""The training configuration: one dataclass with help text; the CLI options and the YAML file
both come from it.

Precedence: the dataclass defaults < a YAML file (`--config run.yaml`) < options given on the
command line. Fields left at `None` are derived from the method (the learning rate) or from the
machine (bf16 on a GPU that supports it, fp32 on a CPU). The resolved config is saved next to
every artifact it made (`training_config.yaml`).

    config = resolve_config("dpo", Path("configs/train/dpo.yaml"), {"max_steps": 20})
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, get_type_hints

import yaml

from tandem.core.signals import TRAIN_METHODS

# LoRA learning rates: preference methods move the policy away from a reference, so they take
# smaller steps than SFT (TRL's examples use the same split).
DEFAULT_LEARNING_RATE = {"sft": 1e-4, "dpo": 5e-5, "kto": 5e-5, "reward": 1e-4}


class ConfigError(ValueError):
    """A config file or option that cannot be used; the message says which and why."""


def _knob(default: Any, help: str) -> Any:
    return field(default=default, metadata={"help": help})


@dataclass
class TrainConfig:
    """What `tandem train METHOD` does; every field is also a `--option` and a YAML key."""

    full: bool = _knob(False, "Full fine-tuning instead of LoRA (needs far more memory).")
    lora_r: int = _knob(16, "LoRA rank.")
    lora_alpha: int = _knob(32, "LoRA scaling (alpha); the update is scaled by alpha / r.")
    lora_dropout: float = _knob(0.05, "Dropout on the LoRA branch.")
    lora_target: str = _knob(
        "all-linear", "Modules LoRA adapts: 'all-linear' or a comma-separated list of names."
    )
    learning_rate: float | None = _knob(
        None, "Peak learning rate (default: 1e-4 for SFT and reward, 5e-5 for DPO and KTO)."
    )
    beta: float = _knob(0.1, "DPO/KTO: how far the policy may move from the reference.")
    max_length: int = _knob(512, "Tokens per example (prompt + answer); longer are truncated.")
    batch_size: int = _knob(4, "Examples per device per step.")
    grad_accum: int = _knob(1, "Gradient accumulation steps (effective batch = batch x this).")
    epochs: float = _knob(1.0, "Passes over the dataset (ignored when max_steps is set).")
    max_steps: int = _knob(-1, "Stop after this many optimizer steps (-1: use epochs).")
    warmup_ratio: float = _knob(0.0, "Fraction of the steps spent warming the learning rate up.")
    seed: int = _knob(42, "Seed for data order, LoRA initialisation and dropout.")
    save_steps: int = _knob(50, "Write a resumable checkpoint every N steps.")
    logging_steps: int = _knob(5, "Record the loss every N steps (the loss curve's resolution).")
    precompute_ref_log_probs: bool = _knob(
        True, "DPO/KTO: score the reference once before training instead of at every step."
    )
    build_onnx: bool = _knob(
        True,
        "Build the int8 ONNX model the default engine serves (full chat trainings only: a LoRA "
        "adapter is served over its base's model).",
    )
    precision: str = _knob(
        "auto",
        "auto (bf16 autocast where the GPU or CPU computes bf16 natively, else fp32), bf16 "
        "or fp32.",
    )
    gradient_checkpointing: bool | None = _knob(
        None, "Recompute activations in the backward pass (default: on a GPU, off on a CPU)."
    )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def fingerprint(self) -> str:
        """A short hash of the settings that change the trained weights (not the bookkeeping)."""
        bookkeeping = {"save_steps", "logging_steps", "build_onnx", "gradient_checkpointing"}
        relevant = {k: v for k, v in self.to_dict().items() if k not in bookkeeping}
        return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()[:8]


def field_help() -> dict[str, str]:
    return {f.name: f.metadata.get("help", "") for f in fields(TrainConfig)}


def field_types() -> dict[str, Any]:
    return get_type_hints(TrainConfig)


PRECISIONS = ("auto", "bf16", "fp32")


def form_fields() -> list[dict[str, Any]]:
    """The config as form fields: name, input type, default and help, in declaration order. The
    console's launch form is generated from this, as the CLI's options are from the dataclass:
    "optional" fields left empty mean "derive it" (the method's learning rate, the machine's
    gradient checkpointing)."""
    hints = field_types()
    out = []
    for f in fields(TrainConfig):
        kinds = [
            t for t in getattr(hints[f.name], "__args__", (hints[f.name],)) if t is not type(None)
        ]
        kind = {bool: "bool", int: "int", float: "float", str: "str"}[kinds[0]]
        entry: dict[str, Any] = {
            "name": f.name,
            "type": kind,
            "default": f.default,
            "help": f.metadata.get("help", ""),
            "optional": f.default is None,
        }
        if f.name == "precision":
            entry["choices"] = list(PRECISIONS)
        out.append(entry)
    return out


def _coerce(name: str, value: Any, hint: Any) -> Any:
    """YAML gives ints for floats (`epochs: 2`) and strings for anything quoted; accept the
    obvious conversions and refuse the rest with the field's name."""
    kinds = [t for t in getattr(hint, "__args__", (hint,)) if t is not type(None)]
    if value is None and type(None) in getattr(hint, "__args__", ()):
        return None
    kind = kinds[0]
    if kind is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{name}: expected true or false, got {value!r}")
    try:
        if kind is float and isinstance(value, (int, float, str)) and not isinstance(value, bool):
            return float(value)
        if kind is int and isinstance(value, (int, str)) and not isinstance(value, bool):
            return int(value)
        if kind is str and isinstance(value, str):
            return value
    except ValueError:
        pass
    raise ConfigError(f"{name}: expected {kind.__name__}, got {value!r}")


def load_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of option: value")
    return data


def resolve_config(
    method: str, config_file: Path | None = None, overrides: dict[str, Any] | None = None
) -> TrainConfig:
    """Defaults < YAML file < overrides (the options given on the command line; `None` values
    mean "not given"), then derived fields filled in and values checked."""
    if method not in TRAIN_METHODS:
        raise ConfigError(f"method must be one of {', '.join(TRAIN_METHODS)}, got {method!r}")
    values: dict[str, Any] = {}
    if config_file is not None:
        values.update(load_yaml(config_file))
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    hints = field_types()
    unknown = sorted(set(values) - set(hints))
    if unknown:
        raise ConfigError(f"unknown config keys {unknown}; known: {', '.join(hints)}")
    config = TrainConfig(**{k: _coerce(k, v, hints[k]) for k, v in values.items()})
    if config.learning_rate is None:
        config.learning_rate = DEFAULT_LEARNING_RATE[method]
    _check(config)
    return config


def _check(config: TrainConfig) -> None:
    positive = ("lora_r", "lora_alpha", "max_length", "batch_size", "grad_accum", "save_steps")
    for name in (*positive, "logging_steps"):
        if getattr(config, name) < 1:
            raise ConfigError(f"{name} must be at least 1")
    if not config.learning_rate or config.learning_rate <= 0:
        raise ConfigError("learning_rate must be positive")
    if config.max_steps == 0 or config.max_steps < -1:
        raise ConfigError("max_steps must be positive, or -1 to train for `epochs`")
    if config.max_steps == -1 and config.epochs <= 0:
        raise ConfigError("epochs must be positive")
    if not 0 <= config.lora_dropout < 1 or not 0 <= config.warmup_ratio < 1:
        raise ConfigError("lora_dropout and warmup_ratio must be in [0, 1)")
    if config.beta <= 0:
        raise ConfigError("beta must be positive")
    if config.precision not in PRECISIONS:
        raise ConfigError("precision must be auto, bf16 or fp32")


def save_config(config: TrainConfig, path: Path, extra: dict[str, Any] | None = None) -> None:
    """The resolved config as YAML (loadable again with `--config`), provenance in a comment."""
    header = "".join(f"# {k}: {v}\n" for k, v in (extra or {}).items())
    path.write_text(header + yaml.safe_dump(config.to_dict(), sort_keys=False))
