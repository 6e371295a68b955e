"""What `tandem flywheel run` does: one nested, typed config. The CLI's options (one panel per
group) and summary.json's `config` both come from it.

    config = FlywheelConfig(turns=3, seed=0, simulate=SimulateConfig(users=4, prompts_per_user=6))
    config.simulate.planned_events, config.to_dict()["train"]["learning_rate"]
    FlywheelConfig.from_flat({"users": 4, "turns": 1, "max_steps": 2})   # the CLI's options

Budget: one turn spends at most `EVENT_BUDGET` feedback events, the training simulation's and
the online stage's together.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields
from typing import Any

from tandem.core.signals import TrainMethod, is_train_method

METHODS = ("dpo", "kto", "both")
TRAIN_STARTS = ("production", "base")
EVENT_BUDGET = 2000  # feedback events per turn (the budget), online votes included


def _knob(default: Any, help: str) -> Any:
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class SimulateConfig:
    """The simulated users whose signals train the turn's candidate; they talk to production."""

    users: int = _knob(40, "Simulated accounts per turn (new ones each turn).")
    prompts_per_user: int = _knob(
        12,
        "Prompts each user sends, each in a new chat and each rated or compared: the turn's "
        "events are planned up front (users x prompts), never cut by a clock.",
    )
    opted_out: float = _knob(0.1, "Share of accounts that switch training off.")
    noise: float = _knob(0.1, "Probability a simulated rating or vote disagrees with the grader.")
    rate_compare: float = _knob(
        0.85,
        "Share of turns asked as blind comparisons (two samples of production): a vote is a "
        "graded preference pair, a thumb on one answer is not.",
    )
    max_tokens: int = _knob(128, "max_tokens of every simulated chat answer.")
    temperature: float = _knob(
        0.8, "Sampling temperature of simulated chats: above 0, so two samples differ."
    )
    concurrency: int = _knob(16, "Simulated users in flight (the engine batches 16).")
    implicit: bool = _knob(
        False,
        "Simulated users also copy, stop, edit-and-resend and correct answers: the implicit "
        "signals (docs/evals.md#implicit-signals).",
    )
    implicit_weight: float = _knob(
        0.0,
        "KTO snapshots add implicit negatives for answers no one rated, this share of them "
        "(0: off; docs/datasets.md).",
    )

    @property
    def planned_events(self) -> int:
        return self.users * self.prompts_per_user

    def validate(self) -> None:
        if self.users < 1 or self.prompts_per_user < 1 or self.concurrency < 1:
            raise ValueError("users, prompts_per_user and concurrency must be at least 1")
        for name in ("opted_out", "noise", "rate_compare", "implicit_weight"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be within 0..1")
        if self.temperature <= 0:
            raise ValueError("temperature must be above 0: two samples must be able to differ")
        if self.max_tokens < 1:
            raise ValueError("max_tokens must be at least 1")


@dataclass(frozen=True)
class TrainConfig:
    method: str = _knob("dpo", "dpo, kto or both (each trained candidate is evaluated).")
    start: str = _knob(
        "production",
        "Train from the version serving now (production: the turns compound) or from the base.",
    )
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

    @property
    def methods(self) -> tuple[TrainMethod, ...]:
        if self.method == "both":
            return ("dpo", "kto")
        if not is_train_method(self.method):
            raise ValueError(f"method must be one of {', '.join(METHODS)}")
        return (self.method,)

    def validate(self) -> None:
        for name, allowed in (("method", METHODS), ("start", TRAIN_STARTS)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}")
        if self.learning_rate <= 0 or not 0 <= self.warmup_ratio < 1:
            raise ValueError("learning_rate must be positive and warmup_ratio within [0, 1)")
        if self.max_steps == 0 or self.max_steps < -1:
            raise ValueError("max_steps must be positive, or -1 to train for epochs")


@dataclass(frozen=True)
class EvalConfig:
    ifeval_limit: int | None = _knob(None, "IFEval prompts (default: all 541).")
    xstest_limit: int | None = _knob(
        None, "XSTest prompts, half safe and half contrast (default: all 450)."
    )
    spec_limit: int | None = _knob(None, "Behavior-spec cases (default: all).")
    sycophancy_limit: int | None = _knob(None, "Sycophancy cases (default: all).")
    eval_max_tokens: int = _knob(
        512, "max_tokens of IFEval and behavior-spec answers (greedy; IFEval's own is 1024)."
    )
    refusal_max_tokens: int = _knob(
        128,
        "max_tokens of XSTest and sycophancy answers: the refusal classifier decides from the "
        "opening (the base's 450 answers classify the same cut at 64 tokens as at 256).",
    )
    eval_concurrency: int = _knob(16, "Eval requests in flight (the ONNX engine batches 16).")
    bootstrap: int = _knob(2000, "Bootstrap resamples behind every paired interval.")

    def limits(self) -> dict[str, int | None]:
        return {
            "ifeval": self.ifeval_limit,
            "xstest": self.xstest_limit,
            "behavior_spec": self.spec_limit,
            "sycophancy": self.sycophancy_limit,
        }

    def validate(self) -> None:
        for name, value in self.limits().items():
            if value is not None and value < 1:
                raise ValueError(f"the {name} limit must be at least 1")
        if self.eval_max_tokens < 1 or self.refusal_max_tokens < 1:
            raise ValueError("eval_max_tokens and refusal_max_tokens must be at least 1")
        if self.bootstrap < 100:
            raise ValueError("bootstrap must be at least 100")


@dataclass(frozen=True)
class GateMargins:
    """How much worse (a fraction; 0.01 is one point) a candidate may be offline."""

    gate_margin: float = _knob(0.01, "IFEval and any other gated suite without its own margin.")
    refusal_margin: float = _knob(
        0.0, "XSTest safe-prompt refusal may rise by this much (0: not higher at all)."
    )
    contrast_margin: float = _knob(
        0.0, "XSTest unsafe-prompt refusal may fall by this much (0: not lower at all)."
    )
    spec_margin: float = _knob(
        0.04,
        "How much the behavior spec's pass rate may drop: its 31 cases make one case 3.2 "
        "points, so a one-point margin would let no single case change.",
    )
    sycophancy_margin: float = _knob(0.0, "Sycophancy pass rate may drop by this much.")

    def by_gate(self) -> dict[str, float]:
        """Margins keyed as tandem.rollout.gates names its checks."""
        return {
            "ifeval": self.gate_margin,
            "xstest": self.refusal_margin,
            "xstest:contrast_refusal_rate": self.contrast_margin,
            "behavior_spec": self.spec_margin,
            "sycophancy": self.sycophancy_margin,
        }

    def validate(self) -> None:
        if min(dataclasses.astuple(self)) < 0:
            raise ValueError("gate margins must not be negative")


@dataclass(frozen=True)
class OnlineConfig:
    """The rollout a candidate meets users in before it may be promoted."""

    traffic_share: float = _knob(0.5, "Share of users the candidate answers (A/B, sticky).")
    comparison_rate: float = _knob(
        0.5, "Share of turns answered as a blind comparison of the candidate and production."
    )
    online_users: int = _knob(40, "Simulated accounts per online batch.")
    online_batch: int = _knob(
        4, "Prompts per online user per batch; the gates are read after every batch."
    )
    online_max_events: int = _knob(
        960, "Vote budget: a candidate not shown non-inferior by then is not promoted."
    )
    online_margin: float = _knob(
        0.05,
        "Non-inferiority margin: thumbs-up rate at most this much below production's, and the "
        "win share against it at least 0.5 minus this, both at 95%.",
    )
    online_min_votes: int = _knob(30, "Votes each online figure needs before it is read.")
    online_split: str = _knob(
        "dev",
        "The instruction suite's split online users ask from: not the prompts the candidate "
        "was trained on.",
    )

    @property
    def batch_events(self) -> int:
        return self.online_users * self.online_batch

    def validate(self) -> None:
        if not 0 < self.traffic_share < 1 or not 0 < self.comparison_rate <= 1:
            raise ValueError("traffic_share must be within (0, 1) and comparison_rate (0, 1]")
        if min(self.online_users, self.online_batch) < 1:
            raise ValueError("online_users and online_batch must be at least 1")
        if self.online_max_events < self.batch_events:
            # The budget is spent in whole batches: one that fits no batch would collect no
            # votes and block every promotion without saying why.
            raise ValueError(
                f"online_max_events ({self.online_max_events}) must fit one batch: "
                f"online_users x online_batch = {self.batch_events}"
            )
        if not 0 <= self.online_margin < 0.5 or self.online_min_votes < 1:
            raise ValueError("online_margin must be within [0, 0.5), online_min_votes >= 1")
        if self.online_split not in ("train", "dev"):
            raise ValueError("online_split must be train or dev")


GROUPS: dict[str, type] = {
    "simulate": SimulateConfig,
    "train": TrainConfig,
    "eval": EvalConfig,
    "gate": GateMargins,
    "online": OnlineConfig,
}


@dataclass(frozen=True)
class FlywheelConfig:
    """Turns of the loop. Every field is recorded in summary.json."""

    turns: int = _knob(3, "Turns of the loop; each starts from what the last one promoted.")
    seed: int = _knob(0, "Seeds the simulated users and the training (turn t uses seed + t).")
    simulate: SimulateConfig = field(default_factory=SimulateConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    gate: GateMargins = field(default_factory=GateMargins)
    online: OnlineConfig = field(default_factory=OnlineConfig)

    def __post_init__(self) -> None:
        if self.turns < 1:
            raise ValueError("turns must be at least 1")
        for group in GROUPS:
            getattr(self, group).validate()
        spent = self.simulate.planned_events + self.online.online_max_events
        if spent > EVENT_BUDGET:
            raise ValueError(
                f"one turn may spend at most {EVENT_BUDGET} feedback events: users x "
                f"prompts_per_user ({self.simulate.planned_events}) + online_max_events "
                f"({self.online.online_max_events}) = {spent}"
            )

    def turn_seed(self, turn: int) -> int:
        return self.seed + turn

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FlywheelConfig:
        groups = {
            name: kind(**{k: v for k, v in (data.get(name) or {}).items() if k in _names(kind)})
            for name, kind in GROUPS.items()
        }
        return cls(turns=data.get("turns", 3), seed=data.get("seed", 0), **groups)

    @classmethod
    def from_flat(cls, options: dict[str, Any]) -> FlywheelConfig:
        """From the CLI's flat options (every knob's name is unique across the groups)."""
        groups = {
            name: kind(**{k: v for k, v in options.items() if k in _names(kind)})
            for name, kind in GROUPS.items()
        }
        top = {k: options[k] for k in ("turns", "seed") if k in options}
        return cls(**top, **groups)


def _names(kind: type) -> set[str]:
    return {f.name for f in fields(kind)}


def field_help(kind: type = FlywheelConfig) -> dict[str, str]:
    return {f.name: f.metadata.get("help", "") for f in fields(kind)}
