"""What `tandem simulate run` does: one dataclass with help text; the CLI options come from it.

config = SimulationConfig(base_url="http://127.0.0.1:8000", users=32, turns=4, noise=0.1)
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields
from typing import Any

from tandem.simulate.judgement import TASTES

# Evaluation-only suites (docs/evals.md): simulated signals become training data, so prompts may
# never come from them. Public benchmarks, and tandem's own sycophancy suite, which must keep
# measuring whether thumbs-up training taught flattery rather than be trained on.
HELD_OUT_TASKS = frozenset({"ifeval", "xstest", "sycophancy"})


def _knob(default: Any, help: str) -> Any:
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class SimulationConfig:
    """Every field is a `tandem simulate run --option`; `base_url` is required there."""

    base_url: str = _knob("http://127.0.0.1:8000", "The tandem server to talk to.")
    users: int = _knob(16, "Accounts to sign up (each one a simulated person).")
    turns: int = _knob(4, "Prompts each user sends, each in a new chat.")
    opted_out: float = _knob(
        0.2, "Share of the accounts that switch training off (use_for_training false)."
    )
    concurrency: int = _knob(
        16, "Users in flight at once; the embedded engine batches 16 requests."
    )
    seed: int = _knob(0, "Seeds every user's own random stream: prompts, ratings, noise.")
    noise: float = _knob(0.1, "Probability that a rating or vote disagrees with the grader.")
    rate_feedback: float = _knob(1.0, "Probability that an answer gets a thumbs up or down.")
    rate_compare: float = _knob(
        0.0, "Probability that a turn asks for a blind comparison (the compare endpoint)."
    )
    regenerate_rate: float = _knob(
        0.1, "Probability of regenerating an answer (and rating the new one too)."
    )
    max_events: int | None = _knob(
        None, "Stop once this many feedback events (thumbs + votes) are acknowledged."
    )
    max_tokens: int = _knob(128, "max_tokens of every answer (sent as a sampling parameter).")
    temperature: float | None = _knob(None, "Sampling temperature (default: the server's).")
    pass_threshold: float | None = _knob(
        None, "An answer is good when its reward reaches this (default: the grader's pass)."
    )
    task: str = _knob("instructions", "The eval task whose prompts and grader users use.")
    split: str | None = _knob("train", "The task's split (instructions: train or dev).")
    profiles: tuple[str, ...] = _knob(
        (), "Profile ids; each chat opens with one of them, chosen at random."
    )
    stream: bool = _knob(False, "Read answers as server-sent events instead of JSON.")
    implicit: bool = _knob(
        False,
        "Also act without rating: copy answers, stop streams, edit and resend questions, send "
        "corrective follow-ups, more often after bad answers (tandem.simulate.implicit). "
        "Answers are then read streamed.",
    )
    tastes: tuple[str, ...] = _knob(
        (),
        "Answer-length tastes dealt to users in turn (concise, detailed): a user votes for the "
        "shorter or the longer of two answers instead of by the grader. Empty: the grader.",
    )
    taste_profiles: tuple[str, ...] = _knob(
        (), "One profile id per taste: a user of that taste opens every chat with it."
    )
    account_prefix: str | None = _knob(
        None, "Emails are PREFIX-N@simulated.invalid (default: sim-SEED-<random>)."
    )
    timeout_s: float = _knob(600.0, "Per-request timeout in seconds.")

    def __post_init__(self) -> None:
        for name in ("opted_out", "noise", "rate_feedback", "rate_compare", "regenerate_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be within 0..1, not {value}")
        if self.users < 0 or self.turns < 0:
            raise ValueError("users and turns must not be negative")
        if self.concurrency < 1 or self.max_tokens < 1:
            raise ValueError("concurrency and max_tokens must be at least 1")
        if self.max_events is not None and self.max_events < 0:
            raise ValueError("max_events must not be negative")
        unknown = [t for t in self.tastes if t not in TASTES]
        if unknown:
            raise ValueError(f"tastes must be among {TASTES}, not {unknown}")
        if self.taste_profiles and len(self.taste_profiles) != len(self.tastes):
            raise ValueError("give one taste profile per taste")
        if self.task in HELD_OUT_TASKS:
            raise ValueError(
                f"{self.task} is a held-out evaluation suite: its prompts may not become "
                "training signals; use --task instructions"
            )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def field_help() -> dict[str, str]:
    return {f.name: f.metadata.get("help", "") for f in fields(SimulationConfig)}
