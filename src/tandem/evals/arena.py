"""Arena ratings: Bradley–Terry on pairwise battles, computed the way Chatbot Arena does.

    battles = read_battles(Path("arena.jsonl"))     # {"model_a", "model_b", "winner"} per line
    ratings = bradley_terry_ratings(battles, bootstrap=100, seed=0)
    ratings["model-x"].rating, ratings["model-x"].ci_low, ratings["model-x"].ci_high

Method (FastChat's `compute_mle_elo` + `get_bootstrap_result`): a logistic regression with no
intercept on one row per battle, +ln(10) for model_a's column and -ln(10) for model_b's, so
P(a beats b) = 1 / (1 + 10 ** ((R_b - R_a) / 400)). A tie (either kind) is half a win each way.
Ratings are 400 * coefficient + 1000; the unpenalised fit started from zero keeps the
coefficients summing to zero, so **the mean rating is 1000** (the Arena's optional re-anchoring
on one named model is `anchor=(model, rating)` here). 95% intervals are the 2.5th and 97.5th
percentiles of the ratings refitted on battles resampled with replacement.

The fit is Newton's method on the pairwise win table rather than sklearn: the log-likelihood
only depends on how often each ordered pair won, so a bootstrap round is a reweighting of the
same table and costs microseconds.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

SCALE = 400.0
BASE = 10.0
INIT_RATING = 1000.0
# Chatbot Arena's log vocabulary; tandem's own verdicts map onto it in `battle_from_vote`.
WINNERS = ("model_a", "model_b", "tie", "tie (bothbad)")
VERDICT_TO_WINNER = {"a": "model_a", "b": "model_b", "tie": "tie", "both_bad": "tie (bothbad)"}
# A model that never loses has an infinite MLE; this ridge (per battle) keeps it finite while
# moving ratings on ordinary data by far less than a hundredth of a point.
_RIDGE_PER_BATTLE = 1e-9


@dataclass(frozen=True)
class Battle:
    """One pairwise vote in Chatbot Arena's log format."""

    model_a: str
    model_b: str
    winner: str

    def __post_init__(self) -> None:
        if self.winner not in WINNERS:
            raise ValueError(f"winner must be one of {WINNERS}, not {self.winner!r}")
        if not self.model_a or not self.model_b:
            raise ValueError("model_a and model_b must be non-empty")

    @classmethod
    def from_dict(cls, row: dict[str, Any]) -> Battle:
        try:
            return cls(str(row["model_a"]), str(row["model_b"]), str(row["winner"]))
        except KeyError as exc:
            raise ValueError(f"battle is missing {exc.args[0]!r}") from None

    def to_dict(self) -> dict[str, str]:
        return {"model_a": self.model_a, "model_b": self.model_b, "winner": self.winner}


@dataclass(frozen=True)
class ArenaRating:
    rating: float
    ci_low: float
    ci_high: float
    battles: int

    def to_dict(self) -> dict[str, float | int]:
        return {
            "rating": round(self.rating, 2),
            "ci_low": round(self.ci_low, 2),
            "ci_high": round(self.ci_high, 2),
            "battles": self.battles,
        }


def battle_from_vote(model_a: str, model_b: str, verdict: str) -> Battle:
    """tandem's comparison verdict (a|b|tie|both_bad) as an Arena battle: the one conversion
    every DB vote goes through, so stored votes and imported logs share the same fit."""
    if verdict not in VERDICT_TO_WINNER:
        raise ValueError(f"verdict must be one of {tuple(VERDICT_TO_WINNER)}, not {verdict!r}")
    return Battle(model_a, model_b, VERDICT_TO_WINNER[verdict])


def read_battles(path: Path) -> list[Battle]:
    """Battles from a JSONL file (one object per line; extra keys such as `judge` are ignored)."""
    battles = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                if not isinstance(row, dict):
                    raise ValueError("expected a JSON object")
                battles.append(Battle.from_dict(row))
            except ValueError as exc:
                raise ValueError(f"{path}:{number}: {exc}") from None
    return battles


def _encode(battles: Sequence[Battle]) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """Models (sorted) and, per battle, the index of a, of b, and a's score (1, 0 or 0.5).

    A model against itself says nothing about ratings (its row of the design matrix is zero),
    so such battles are dropped here, as they would contribute nothing to the fit anyway."""
    kept = [b for b in battles if b.model_a != b.model_b]
    models = sorted({b.model_a for b in kept} | {b.model_b for b in kept})
    index = {m: i for i, m in enumerate(models)}
    score = {"model_a": 1.0, "model_b": 0.0, "tie": 0.5, "tie (bothbad)": 0.5}
    a = np.array([index[b.model_a] for b in kept], dtype=np.int64)
    b = np.array([index[b.model_b] for b in kept], dtype=np.int64)
    s = np.array([score[b.winner] for b in kept], dtype=np.float64)
    return models, a, b, s


def _fit(k: int, a: np.ndarray, b: np.ndarray, s: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Bradley–Terry strengths (natural-log units, summing to zero) by damped Newton."""
    wins = np.zeros((k, k))  # wins[i, j]: weighted wins of i over j, a tie half to each
    np.add.at(wins, (a, b), weight * s)
    np.add.at(wins, (b, a), weight * (1.0 - s))
    games = wins + wins.T
    ridge = _RIDGE_PER_BATTLE * max(float(weight.sum()), 1.0)

    def loglik(theta: np.ndarray) -> float:
        diff = theta[:, None] - theta[None, :]
        # log sigmoid(d) = -log(1 + e^-d), computed stably.
        return float(-(wins * np.logaddexp(0.0, -diff)).sum() - 0.5 * ridge * theta @ theta)

    theta = np.zeros(k)
    current = loglik(theta)
    for _ in range(200):
        p = 1.0 / (1.0 + np.exp(-(theta[:, None] - theta[None, :])))
        grad = (wins - games * p).sum(axis=1) - ridge * theta
        curvature = games * p * (1.0 - p)
        hessian = curvature - np.diag(curvature.sum(axis=1)) - ridge * np.eye(k)
        # lstsq: a disconnected comparison graph leaves H singular; take the min-norm step.
        step = np.linalg.lstsq(-hessian, grad, rcond=None)[0]
        size = 1.0
        while size > 1e-8:
            candidate = theta + size * step
            value = loglik(candidate)
            if value >= current - 1e-12:
                break
            size /= 2
        theta, current = candidate, value
        if np.max(np.abs(size * step)) < 1e-10:
            break
    return theta - theta.mean()


def _to_ratings(theta: np.ndarray) -> np.ndarray:
    return SCALE * theta / math.log(BASE) + INIT_RATING


def bradley_terry_ratings(
    battles: Iterable[Battle],
    bootstrap: int = 100,
    seed: int = 0,
    anchor: tuple[str, float] | None = None,
) -> dict[str, ArenaRating]:
    """Arena ratings with bootstrap 95% intervals, best first.

    `bootstrap=0` skips the resampling (the interval is then the point estimate). With
    `anchor=("model-x", 1114.0)` every rating is shifted so that model-x sits at 1114, as the
    leaderboard does with mixtral; otherwise the mean rating is 1000."""
    if bootstrap < 0:
        raise ValueError("bootstrap must be >= 0")
    models, a, b, s = _encode(list(battles))
    if not models:
        return {}
    k, n = len(models), len(a)
    point = _to_ratings(_fit(k, a, b, s, np.ones(n)))
    rng = np.random.default_rng(seed)
    rounds = np.empty((bootstrap, k))
    for r in range(bootstrap):
        # Multinomial counts over battles == sampling n battles with replacement.
        counts = rng.multinomial(n, np.full(n, 1.0 / n)).astype(np.float64)
        rounds[r] = _to_ratings(_fit(k, a, b, s, counts))
    shift = 0.0
    if anchor is not None:
        name, value = anchor
        if name not in models:
            raise ValueError(f"anchor model {name!r} has no battles")
        where = models.index(name)
        shift = value - point[where]
        rounds += (value - rounds[:, where])[:, None]
    point = point + shift
    if bootstrap:
        low, high = np.percentile(rounds, [2.5, 97.5], axis=0)
    else:
        low, high = point, point
    played = np.bincount(np.concatenate([a, b]), minlength=k)
    ratings = {
        m: ArenaRating(float(point[i]), float(low[i]), float(high[i]), int(played[i]))
        for i, m in enumerate(models)
    }
    return dict(sorted(ratings.items(), key=lambda item: -item[1].rating))
