"""The tally of a simulation run: what `tandem simulate run` prints as JSON at the end."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from tandem.core.signals import VERDICTS


@dataclass
class SimulationSummary:
    accounts: int = 0
    opted_out_accounts: int = 0
    # Requests that produced answers: new messages, explicit comparisons, regenerations.
    turns: int = 0
    regenerations: int = 0
    comparisons: int = 0
    thumbs_up: int = 0
    thumbs_down: int = 0
    thumbs_flipped: int = 0
    votes: dict[str, int] = field(default_factory=lambda: dict.fromkeys(VERDICTS, 0))
    votes_flipped: int = 0
    events_acknowledged: int = 0
    # By HTTP status ("422", "502"), stream error code ("stream:engine_error") or transport
    # failure ("ConnectError"); each failed request once.
    errors: Counter[str] = field(default_factory=Counter)
    # Graded answers per model version, where the API named it (comparisons: after the vote).
    answers_by_model: dict[str, dict[str, int]] = field(default_factory=dict)
    wall_seconds: float = 0.0
    config: dict[str, Any] = field(default_factory=dict)
    # With `implicit`: copies, stops, edits, follow-ups sent (tandem.simulate.implicit).
    implicit: dict[str, int] = field(default_factory=dict)

    def count_answer(self, model: str | None, good: bool) -> None:
        row = self.answers_by_model.setdefault(model or "unknown", {"answers": 0, "good": 0})
        row["answers"] += 1
        row["good"] += int(good)

    @property
    def turns_per_second(self) -> float:
        return self.turns / self.wall_seconds if self.wall_seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "accounts": self.accounts,
            "opted_out_accounts": self.opted_out_accounts,
            "turns": self.turns,
            "regenerations": self.regenerations,
            "comparisons": self.comparisons,
            "thumbs_up": self.thumbs_up,
            "thumbs_down": self.thumbs_down,
            "thumbs_flipped": self.thumbs_flipped,
            "votes": dict(self.votes),
            "votes_flipped": self.votes_flipped,
            "events_acknowledged": self.events_acknowledged,
            "errors": dict(sorted(self.errors.items())),
            "answers_by_model": self.answers_by_model,
            "wall_seconds": round(self.wall_seconds, 3),
            "turns_per_second": round(self.turns_per_second, 4),
            "config": self.config,
            "implicit": self.implicit,
        }
