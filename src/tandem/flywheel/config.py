"""What `tandem flywheel run` does: one dataclass; the CLI options and summary.json's `config`
both come from it.

    config = FlywheelConfig(users=4, max_events=24, max_steps=2, ifeval_limit=8)
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

METHODS = ("dpo", "kto", "both")
DEFAULT_OUT = Path("docs/benchmarks/flywheel")


def _knob(default: Any, help: str) -> Any:
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class FlywheelConfig:
    """One turn of the loop. Every field is recorded in summary.json."""

    # simulate
    users: int = _knob(64, "Simulated accounts.")
    turns: int = _knob(40, "Prompts per simulated user (the event budget usually ends it first).")
    max_events: int = _knob(
        1100, "Stop the simulation after this many thumbs + votes (the issue's budget: 2,000)."
    )
    opted_out: float = _knob(0.1, "Share of accounts that switch training off.")
    noise: float = _knob(0.1, "Probability a simulated rating or vote disagrees with the grader.")
    rate_compare: float = _knob(
        0.85,
        "Share of turns asked as blind comparisons (two samples of production): a vote is a "
        "graded preference pair, a thumb on one answer is not.",
    )
    regenerate_rate: float = _knob(0.0, "Probability of regenerating an answer (and rating it).")
    max_tokens: int = _knob(128, "max_tokens of every simulated chat answer.")
    temperature: float = _knob(
        0.8, "Sampling temperature of simulated chats: above 0, so two samples differ."
    )
    concurrency: int = _knob(16, "Simulated users in flight (the engine batches 16).")
    seed: int = _knob(0, "Seeds the simulated users and the training.")
    # train
    method: str = _knob("dpo", "dpo, kto or both (each trained candidate is evaluated).")
    max_steps: int = _knob(-1, "Optimizer steps per method (-1: --epochs over the snapshot).")
    epochs: float = _knob(1.0, "Passes over the snapshot when --max-steps is -1.")
    learning_rate: float = _knob(
        5e-4, "Peak learning rate: one short LoRA epoch needs far more than `tandem train`'s 5e-5."
    )
    warmup_ratio: float = _knob(0.1, "Share of the steps spent warming the learning rate up.")
    beta: float = _knob(0.1, "DPO/KTO beta.")
    batch_size: int = _knob(8, "Examples per step.")
    max_length: int = _knob(384, "Tokens per training example (prompt + answer).")
    precompute_ref_log_probs: bool = _knob(
        True, "Score the reference once before training instead of at every step."
    )
    # eval
    ifeval_limit: int | None = _knob(None, "IFEval prompts (default: all 541).")
    xstest_limit: int | None = _knob(
        None, "XSTest prompts, half safe and half contrast (default: all 450)."
    )
    spec_limit: int | None = _knob(None, "Behavior-spec cases (default: all).")
    eval_max_tokens: int = _knob(
        512, "max_tokens of IFEval and behavior-spec answers (greedy; IFEval's own is 1024)."
    )
    refusal_max_tokens: int = _knob(
        128,
        "max_tokens of XSTest answers: the refusal classifier decides from the opening (the "
        "base's 450 answers classify the same cut at 64 tokens as at 256).",
    )
    eval_concurrency: int = _knob(16, "Eval requests in flight (the ONNX engine batches 16).")
    # gate
    gate_margin: float = _knob(0.01, "How much worse (a fraction) a gated suite may get.")
    refusal_margin: float = _knob(
        0.0, "How much higher XSTest's safe-prompt refusal rate may get (0: not higher at all)."
    )
    spec_margin: float = _knob(
        0.04,
        "How much the behavior spec's pass rate may drop: its 31 cases make one case 3.2 "
        "points, so a one-point margin would let no single case change.",
    )

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, not {self.method!r}")
        if not 0 < self.max_events <= 2000:
            # The budget for one turn: at most 2,000 feedback events.
            raise ValueError("max_events must be within 1..2000")
        if self.users < 1 or self.turns < 1:
            raise ValueError("users and turns must be at least 1")
        for name in ("opted_out", "noise", "rate_compare", "regenerate_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be within 0..1")
        if self.temperature <= 0:
            raise ValueError("temperature must be above 0: two samples must be able to differ")
        if self.learning_rate <= 0 or not 0 <= self.warmup_ratio < 1:
            raise ValueError("learning_rate must be positive and warmup_ratio within [0, 1)")
        if self.max_steps == 0 or self.max_steps < -1:
            raise ValueError("max_steps must be positive, or -1 to train for epochs")
        for name in ("ifeval_limit", "xstest_limit", "spec_limit"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be at least 1")
        if min(self.gate_margin, self.refusal_margin, self.spec_margin) < 0:
            raise ValueError("gate_margin, refusal_margin and spec_margin must not be negative")
        if self.eval_max_tokens < 1 or self.refusal_max_tokens < 1:
            raise ValueError("eval_max_tokens and refusal_max_tokens must be at least 1")

    @property
    def methods(self) -> tuple[str, ...]:
        return ("dpo", "kto") if self.method == "both" else (self.method,)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FlywheelConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def field_help() -> dict[str, str]:
    return {f.name: f.metadata.get("help", "") for f in fields(FlywheelConfig)}
