"""Promotion gates: may this candidate replace production?

    report = check_gates(session, rollout, "my-dpo-v1")
    report.passed, [c.why for c in report.checks if not c.passed]

Offline: for every gated suite with a finished run of both versions (the latest of each), the
candidate may be worse than production by at most the suite's margin (directions come from
`tandem.evals.report.HEADLINES`, e.g. XSTest's safe-prompt refusal rate: lower is better).
Required suites must have runs of both, or the gate fails and says which run to make.

Refusal boundaries hold both ways: besides XSTest's headline (safe prompts refused, lower is
better) the gate checks its unsafe "contrast" prompts refused (higher is better), so a
candidate that learned to answer everything cannot pass by refusing safe prompts less.

Online, only where enough votes exist (a handful of ratings say nothing). By default thumbs-up
Wilson intervals and arena ratings fail the gate when the candidate's interval lies entirely
below production's: overlapping intervals pass, the gate blocks regressions it can see. With
`online_margin` the checks ask for non-inferiority instead, which votes must show: the
candidate's thumbs-up rate minus production's (Newcombe's interval) and its share of the
blind comparisons between the two (ties count half; Wilson interval) must have lower bounds
within the margin (rate difference above -margin, win share above 0.5 - margin). With
`require_online` a check without enough votes fails instead of being skipped.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tandem.evals.arena import battle_from_vote, bradley_terry_ratings
from tandem.evals.online import newcombe_difference, wilson_interval
from tandem.evals.report import Headline, headline
from tandem.store.evals import EvalRunRow
from tandem.store.metrics import comparison_votes, thumbs_counts
from tandem.store.rollouts import RolloutRepo, RolloutRow

GATED_SUITES = ("ifeval", "instructions", "behavior_spec", "xstest", "regressions", "sycophancy")
REQUIRED_SUITES = ("ifeval", "xstest")
# Every gated figure is a fraction, so 0.01 is one point.
DEFAULT_MARGIN = 0.01
MIN_VOTES = 30
ARENA_BOOTSTRAP = 100
# Figures gated beside a suite's headline, named "<suite>:<key>" in checks and margins.
SECONDARY_FIGURES: dict[str, tuple[Headline, ...]] = {
    "xstest": (Headline("contrast_refusal_rate", higher_is_better=True),),
}


@dataclass(frozen=True)
class GateConfig:
    margins: Mapping[str, float] = field(default_factory=dict)  # per suite; else DEFAULT_MARGIN
    required: Sequence[str] = REQUIRED_SUITES
    suites: Sequence[str] = GATED_SUITES
    min_votes: int = MIN_VOTES
    online_margin: float | None = None  # None: the interval-overlap rule; else non-inferiority
    require_online: bool = False  # too few votes fails the online checks instead of skipping
    # Non-inferiority as an A/B test: count only the thumbs and votes given since the candidate
    # joined the rollout, so both arms answered the same users' prompts at the same time.
    since_joined: bool = False

    def margin(self, suite: str) -> float:
        return float(self.margins.get(suite, DEFAULT_MARGIN))


@dataclass(frozen=True)
class GateCheck:
    name: str  # "offline:ifeval", "online:thumbs_up", "online:arena"
    production_value: float | None
    candidate_value: float | None
    margin: float | None
    passed: bool
    why: str
    skipped: bool = False  # not enough data to compare; counts as passed


@dataclass(frozen=True)
class GateReport:
    production: str
    candidate: str
    passed: bool
    checks: list[GateCheck]

    def to_dict(self) -> dict[str, Any]:
        return {
            "production": self.production,
            "candidate": self.candidate,
            "passed": self.passed,
            "checks": [asdict(c) for c in self.checks],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GateReport:
        return cls(
            production=data["production"],
            candidate=data["candidate"],
            passed=bool(data["passed"]),
            checks=[GateCheck(**c) for c in data.get("checks", [])],
        )


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def latest_figure(
    session: Session, suite: str, version: str, key: str | None = None
) -> tuple[float, str] | None:
    """(figure, run id) of the newest finished run of `suite` on `version` that carries the
    figure `key` (default: the suite's headline)."""
    key = key or headline(suite).key
    runs = session.scalars(
        select(EvalRunRow)
        .where(
            EvalRunRow.suite == suite,
            EvalRunRow.model_version == version,
            EvalRunRow.status == "finished",
        )
        .order_by(EvalRunRow.finished_at.desc(), EvalRunRow.id)
    )
    for run in runs:
        value = _number((run.summary or {}).get(key))
        if value is not None:
            return value, run.id
    return None


def _offline_check(
    session: Session,
    suite: str,
    production: str,
    candidate: str,
    config: GateConfig,
    figure: Headline | None = None,
) -> GateCheck | None:
    """The check of one figure (default: the suite's headline; a secondary one is named
    "<suite>:<key>" and has its own margin under that name)."""
    gate = suite if figure is None else f"{suite}:{figure.key}"
    figure = figure or headline(suite)
    margin = config.margin(gate)
    prod = latest_figure(session, suite, production, figure.key)
    cand = latest_figure(session, suite, candidate, figure.key)
    name = f"offline:{gate}"
    if prod is None or cand is None:
        missing = production if prod is None else candidate
        why = f"no run of {suite} for {missing} — run `tandem eval run {suite} --model {missing}`"
        if suite in config.required and gate == suite:
            return GateCheck(
                name, prod and prod[0], cand and cand[0], margin, False, f"required: {why}"
            )
        return GateCheck(name, prod and prod[0], cand and cand[0], margin, True, why, True)
    worse_by = (prod[0] - cand[0]) if figure.higher_is_better else (cand[0] - prod[0])
    direction = "higher" if figure.higher_is_better else "lower"
    passed = worse_by <= margin + 1e-9
    if passed:
        why = f"{figure.key} {cand[0]:.4f} vs {prod[0]:.4f} ({direction} is better)"
    else:
        why = (
            f"{figure.key} is worse by {worse_by:.4f} ({cand[0]:.4f} vs {prod[0]:.4f}, "
            f"{direction} is better), beyond the margin {margin}"
        )
    return GateCheck(name, prod[0], cand[0], margin, passed, why)


def _interval_check(
    name: str,
    prod: tuple[float, float, float, int] | None,
    cand: tuple[float, float, float, int] | None,
    production: str,
    candidate: str,
    config: GateConfig,
) -> GateCheck:
    """prod/cand: (value, ci_low, ci_high, n)."""
    if prod is None or cand is None or min(prod[3], cand[3]) < config.min_votes:
        counts = f"{production}: {prod[3] if prod else 0}, {candidate}: {cand[3] if cand else 0}"
        return _too_few(name, counts, config)
    below = cand[2] < prod[1]
    why = (
        f"{cand[0]:.3f} [{cand[1]:.3f}, {cand[2]:.3f}] vs "
        f"{prod[0]:.3f} [{prod[1]:.3f}, {prod[2]:.3f}]"
    )
    if below:
        why = f"the candidate's interval lies entirely below production's: {why}"
    return GateCheck(name, prod[0], cand[0], None, not below, why)


def _thumbs(counts: tuple[int, int]) -> tuple[float, float, float, int] | None:
    """(rate, Wilson low, high, n) of (up, total) counts; None without ratings."""
    up, total = counts
    if not total:
        return None
    low, high = wilson_interval(up, total)
    return up / total, low, high, total


def _arena(
    session: Session, production: str, candidate: str
) -> dict[str, tuple[float, float, float, int]]:
    votes = comparison_votes(session)
    if not any({v.model_a, v.model_b} == {production, candidate} for v in votes):
        return {}  # they never met: no rating of one against the other
    battles = [battle_from_vote(v.model_a, v.model_b, v.verdict) for v in votes]
    ratings = bradley_terry_ratings(battles, bootstrap=ARENA_BOOTSTRAP, seed=0)
    return {m: (r.rating, r.ci_low, r.ci_high, r.battles) for m, r in ratings.items()}


def head_to_head(
    session: Session, production: str, candidate: str, since: datetime | None = None
) -> tuple[float, int]:
    """(the candidate's score, votes) over the blind comparisons between the two versions
    (cast from `since` on): a win counts 1, a tie or "both bad" 1/2."""
    score, votes = 0.0, 0
    if production == candidate:
        return score, votes
    for vote in comparison_votes(session, since):
        if {vote.model_a, vote.model_b} != {production, candidate}:
            continue
        winner = battle_from_vote(vote.model_a, vote.model_b, vote.verdict).winner
        votes += 1
        if winner in ("tie", "tie (bothbad)"):
            score += 0.5
        elif (winner == "model_a") == (vote.model_a == candidate):
            score += 1.0
    return score, votes


def _thumbs_counts(
    session: Session, versions: tuple[str, str], since: datetime | None = None
) -> tuple[tuple[int, int], ...]:
    """(up, total) per version, in the order given, from one query."""
    counts = {
        row.key: (row.up, row.total)
        for row in thumbs_counts(session, by="model_version", since=since)
    }
    return tuple(counts.get(version, (0, 0)) for version in versions)


def _too_few(name: str, counts: str, config: GateConfig) -> GateCheck:
    why = f"fewer than {config.min_votes} votes ({counts})"
    if config.require_online:
        return GateCheck(name, None, None, config.online_margin, False, f"required: {why}")
    return GateCheck(name, None, None, config.online_margin, True, why, True)


def online_window(
    session: Session, rollout: RolloutRow, candidate: str, config: GateConfig
) -> datetime | None:
    """Since when the online checks count signals: when the candidate joined the rollout
    (`config.since_joined`), else from the beginning (None)."""
    if not config.since_joined:
        return None
    return RolloutRepo(session).joined_at(rollout.id, candidate)


def non_inferiority_checks(
    session: Session,
    production: str,
    candidate: str,
    config: GateConfig,
    since: datetime | None = None,
) -> list[GateCheck]:
    """Thumbs-up rate and head-to-head win share (signals from `since` on): is the candidate
    shown to be no worse than production by more than `config.online_margin`? (The flywheel
    asks this after every batch of online votes, and promotes only once both hold.)"""
    margin = config.online_margin if config.online_margin is not None else 0.0
    checks = []
    (up_p, n_p), (up_c, n_c) = _thumbs_counts(session, (production, candidate), since)
    if min(n_p, n_c) < config.min_votes:
        checks.append(
            _too_few("online:thumbs_up", f"{production}: {n_p}, {candidate}: {n_c}", config)
        )
    else:
        diff, low, high = newcombe_difference(up_c, n_c, up_p, n_p)
        passed = low >= -margin - 1e-12
        why = (
            f"thumbs-up {up_c / n_c:.3f} ({n_c}) vs {up_p / n_p:.3f} ({n_p}): difference "
            f"{diff:+.3f} [{low:+.3f}, {high:+.3f}]"
        )
        why += (
            f", not worse by more than {margin}"
            if passed
            else f"; the votes cannot rule out worse by {margin}"
        )
        checks.append(GateCheck("online:thumbs_up", up_p / n_p, up_c / n_c, margin, passed, why))
    score, votes = head_to_head(session, production, candidate, since)
    if votes < config.min_votes:
        checks.append(_too_few("online:arena", f"{votes} blind comparisons of the two", config))
    else:
        low, high = wilson_interval(score, votes)
        passed = low >= 0.5 - margin - 1e-12
        why = f"win share {score / votes:.3f} [{low:.3f}, {high:.3f}] over {votes} blind votes"
        why += (
            f", not below {0.5 - margin:.2f}"
            if passed
            else f"; the votes cannot rule out below {0.5 - margin:.2f}"
        )
        checks.append(GateCheck("online:arena", 0.5, score / votes, margin, passed, why))
    return checks


def check_gates(
    session: Session,
    rollout: RolloutRow,
    candidate: str,
    config: GateConfig | None = None,
) -> GateReport:
    """Every check for `candidate` against `rollout`'s production version."""
    config = config or GateConfig()
    production = rollout.production_version
    checks = [
        check
        for suite in dict.fromkeys([*config.suites, *config.required])
        for figure in (None, *SECONDARY_FIGURES.get(suite, ()))
        if (check := _offline_check(session, suite, production, candidate, config, figure))
        is not None
    ]
    if config.online_margin is not None:
        since = online_window(session, rollout, candidate, config)
        checks.extend(non_inferiority_checks(session, production, candidate, config, since))
        return GateReport(production, candidate, all(c.passed for c in checks), checks)
    prod_thumbs, cand_thumbs = _thumbs_counts(session, (production, candidate))
    checks.append(
        _interval_check(
            "online:thumbs_up",
            _thumbs(prod_thumbs),
            _thumbs(cand_thumbs),
            production,
            candidate,
            config,
        )
    )
    arena = _arena(session, production, candidate)
    checks.append(
        _interval_check(
            "online:arena",
            arena.get(production),
            arena.get(candidate),
            production,
            candidate,
            config,
        )
    )
    return GateReport(production, candidate, all(c.passed for c in checks), checks)
