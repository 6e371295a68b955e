"""Promotion gates that must be shown, not merely not refuted: XSTest refusal held both ways, and
the online non-inferiority checks (thumbs-up difference by Newcombe's interval, head-to-head
win share by Wilson's) that the flywheel requires before it promotes.

    .venv/bin/python -m pytest -q tests/test_rollout_noninferiority.py
"""

from __future__ import annotations

import pytest

from tandem.core import GenerationRecord, Message, SamplingParams
from tandem.evals.online import newcombe_difference
from tandem.rollout.gates import GateConfig, check_gates, head_to_head, non_inferiority_checks
from tandem.store import (
    ComparisonRepo,
    ConversationRepo,
    EvalRepo,
    FeedbackRepo,
    GenerationRepo,
    RolloutRepo,
    UserRepo,
)

NON_INFERIORITY = GateConfig(online_margin=0.05, require_online=True, min_votes=30)


def record_run(session, suite: str, version: str, **summary: float) -> None:
    repo = EvalRepo(session)
    run = repo.start_run(suite, version, "fake", {})
    repo.finish_run(run.id, [], dict(summary), 1.0)


def _generation(session, user_id: str, version: str):
    record = GenerationRecord(
        model_version=version,
        engine="fake",
        sampling=SamplingParams(),
        seed=None,
        rendered_prompt=None,
        prompt_tokens=1,
        completion_tokens=1,
        latency_s=0.0,
        time_to_first_token_s=None,
        finish_reason="stop",
    )
    return GenerationRepo(session).add(user_id, record, output_text="an answer")


def rate(session, user_id: str, version: str, up: int, down: int) -> None:
    """`up` thumbs up and `down` thumbs down on answers of `version`."""
    feedback = FeedbackRepo(session)
    for i in range(up + down):
        gen = _generation(session, user_id, version)
        feedback.rate_generation(user_id, gen.id, "up" if i < up else "down")


def vote(
    session,
    user_id: str,
    candidate: str,
    production: str,
    wins: int,
    losses: int,
    ties: int = 0,
    both_bad: int = 0,
) -> None:
    """Blind comparisons of the two versions, the candidate on side a and side b in turn (the
    verdict names a side, never a version)."""
    convs, comparisons = ConversationRepo(session), ComparisonRepo(session)
    outcomes = ["win"] * wins + ["loss"] * losses + ["tie"] * ties + ["both_bad"] * both_bad
    for i, outcome in enumerate(outcomes):
        conv = convs.create(user_id)
        question = convs.add_message(user_id, conv.id, Message.text("user", "q"), None)
        first, second = (candidate, production) if i % 2 == 0 else (production, candidate)
        a, b = (
            convs.add_message(
                user_id,
                conv.id,
                Message.text("assistant", "an answer"),
                question.id,
                generation_id=_generation(session, user_id, version).id,
            )
            for version in (first, second)
        )
        candidate_side = "a" if first == candidate else "b"
        other_side = "b" if candidate_side == "a" else "a"
        verdict = {"win": candidate_side, "loss": other_side}.get(outcome, outcome)
        comparison = comparisons.create(user_id, conv.id, question.id, a.id, b.id)
        comparisons.vote(user_id, comparison.id, verdict)


def _checks(session, production: str, candidate: str, config: GateConfig):
    return {c.name: c for c in non_inferiority_checks(session, production, candidate, config)}


# -- offline: refusal both ways ---------------------------------------------------------------


def test_answering_unsafe_prompts_fails_the_gate_even_when_safe_prompts_improve(session):
    rollout = RolloutRepo(session).set_production(None, "prod", None)
    record_run(session, "ifeval", "prod", average_strict=0.5)
    record_run(session, "ifeval", "cand", average_strict=0.5)
    record_run(session, "xstest", "prod", safe_refusal_rate=0.10, contrast_refusal_rate=0.90)
    # Refuses fewer safe prompts (good) by refusing fewer unsafe ones too (bad).
    record_run(session, "xstest", "cand", safe_refusal_rate=0.05, contrast_refusal_rate=0.70)
    report = check_gates(session, rollout, "cand")
    checks = {c.name: c for c in report.checks}
    assert checks["offline:xstest"].passed
    contrast = checks["offline:xstest:contrast_refusal_rate"]
    assert not contrast.passed and not report.passed
    assert (contrast.production_value, contrast.candidate_value) == (0.90, 0.70)
    assert "higher is better" in contrast.why
    # The figure has a margin of its own, apart from the safe-prompt headline's.
    wide = GateConfig(margins={"xstest:contrast_refusal_rate": 0.25})
    assert check_gates(session, rollout, "cand", wide).passed
    # Refusing more unsafe prompts is no regression.
    record_run(session, "xstest", "cand", safe_refusal_rate=0.05, contrast_refusal_rate=0.95)
    assert check_gates(session, rollout, "cand").passed


def test_runs_without_the_contrast_figure_skip_that_check_only(session):
    rollout = RolloutRepo(session).set_production(None, "prod", None)
    for version in ("prod", "cand"):
        record_run(session, "ifeval", version, average_strict=0.5)
        record_run(session, "xstest", version, safe_refusal_rate=0.1)  # an older summary
    checks = {c.name: c for c in check_gates(session, rollout, "cand").checks}
    assert checks["offline:xstest"].passed and not checks["offline:xstest"].skipped
    assert checks["offline:xstest:contrast_refusal_rate"].skipped


# -- online: non-inferiority ------------------------------------------------------------------


def test_too_few_votes_fail_when_online_evidence_is_required(session):
    user = UserRepo(session).create("rater@x.io", None)
    rate(session, user.id, "prod", up=8, down=2)
    rate(session, user.id, "cand", up=9, down=1)
    vote(session, user.id, "cand", "prod", wins=9, losses=1)  # all good news, but 10 of 30
    required = _checks(session, "prod", "cand", NON_INFERIORITY)
    for name in ("online:thumbs_up", "online:arena"):
        assert not required[name].passed and not required[name].skipped, name
        assert required[name].why.startswith("required: fewer than 30 votes"), name
    optional = GateConfig(online_margin=0.05, require_online=False)
    for check in _checks(session, "prod", "cand", optional).values():
        assert check.passed and check.skipped


def test_head_to_head_counts_wins_by_side_and_ties_as_half(session):
    user = UserRepo(session).create("rater@x.io", None)
    vote(session, user.id, "cand", "prod", wins=3, losses=2, ties=2, both_bad=2)
    vote(session, user.id, "other", "prod", wins=5, losses=0)  # another pair: not counted
    assert head_to_head(session, "prod", "cand") == (3 + 1 + 1, 9)


@pytest.mark.parametrize(
    ("wins", "losses", "ties", "passed"),
    [
        (30, 18, 12, True),  # 36 of 60 (ties count half): Wilson low 0.474 >= 0.45
        (24, 24, 12, False),  # even: 60 votes cannot rule out a share below 0.45
        (18, 42, 0, False),  # loses most comparisons
    ],
)
def test_the_arena_check_asks_the_win_share_to_clear_half_minus_the_margin(
    session, wins: int, losses: int, ties: int, passed: bool
):
    user = UserRepo(session).create("rater@x.io", None)
    vote(session, user.id, "cand", "prod", wins=wins, losses=losses, ties=ties)
    arena = _checks(session, "prod", "cand", NON_INFERIORITY)["online:arena"]
    assert arena.passed is passed and not arena.skipped
    assert arena.candidate_value == pytest.approx((wins + ties / 2) / 60)
    assert "over 60 blind votes" in arena.why
    if not passed:
        assert "cannot rule out below 0.45" in arena.why


@pytest.mark.parametrize(
    ("candidate_up", "passed"),
    [
        (54, True),  # 0.90 vs 0.60: the difference's interval [+0.147, +0.437]
        (36, False),  # equal rates: [-0.170, +0.170] reaches below -0.05
        (24, False),  # 0.40 vs 0.60
    ],
)
def test_the_thumbs_check_asks_the_difference_interval_to_clear_the_margin(
    session, candidate_up: int, passed: bool
):
    user = UserRepo(session).create("rater@x.io", None)
    rate(session, user.id, "prod", up=36, down=24)
    rate(session, user.id, "cand", up=candidate_up, down=60 - candidate_up)
    thumbs = _checks(session, "prod", "cand", NON_INFERIORITY)["online:thumbs_up"]
    assert thumbs.passed is passed and not thumbs.skipped
    assert (thumbs.production_value, thumbs.candidate_value) == (0.6, candidate_up / 60)
    _, low, high = newcombe_difference(candidate_up, 60, 36, 60)
    assert f"[{low:+.3f}, {high:+.3f}]" in thumbs.why


def test_non_inferiority_replaces_the_overlap_rule_in_the_full_gate(session):
    user = UserRepo(session).create("rater@x.io", None)
    rollout = RolloutRepo(session).set_production(None, "prod", None)
    for version in ("prod", "cand"):
        record_run(session, "ifeval", version, average_strict=0.5)
        record_run(session, "xstest", version, safe_refusal_rate=0.1, contrast_refusal_rate=0.9)
    rate(session, user.id, "prod", up=36, down=24)
    rate(session, user.id, "cand", up=36, down=24)
    vote(session, user.id, "cand", "prod", wins=30, losses=30)
    # The overlap rule sees nothing wrong with identical figures ...
    assert check_gates(session, rollout, "cand").passed
    # ... non-inferiority asks the votes to show the candidate is no worse, and they cannot.
    report = check_gates(session, rollout, "cand", NON_INFERIORITY)
    failed = {c.name for c in report.checks if not c.passed}
    assert failed == {"online:thumbs_up", "online:arena"}


def test_newcombe_interval_is_built_from_the_two_wilson_intervals():
    # 56/70 vs 48/80, Newcombe (1998), method 10: 0.2 [0.0524, 0.3339]. Wilson 95% intervals
    # by hand: 56/70 -> [0.69183, 0.87695], 48/80 -> [0.49045, 0.70038].
    diff, low, high = newcombe_difference(56, 70, 48, 80)
    by_hand_low = 0.2 - ((0.8 - 0.69183) ** 2 + (0.70038 - 0.6) ** 2) ** 0.5
    by_hand_high = 0.2 + ((0.87695 - 0.8) ** 2 + (0.6 - 0.49045) ** 2) ** 0.5
    assert diff == pytest.approx(0.2)
    assert (low, high) == (
        pytest.approx(by_hand_low, abs=1e-4),
        pytest.approx(by_hand_high, abs=1e-4),
    )
    assert (low, high) == (pytest.approx(0.0524, abs=1e-4), pytest.approx(0.3339, abs=1e-4))
    # Swapping the sides mirrors the interval.
    assert newcombe_difference(48, 80, 56, 70) == pytest.approx((-0.2, -high, -low))
    with pytest.raises(ValueError):
        newcombe_difference(0, 0, 1, 2)


def test_an_ab_window_counts_only_what_users_said_since_the_candidate_joined(session):
    """The flywheel reads the online checks as an A/B test: production's older thumbs (other
    prompts, other users, earlier versions of the loop) stay out of the comparison."""
    user = UserRepo(session).create("rater@x.io", None)
    repo = RolloutRepo(session)
    rollout = repo.set_production(None, "prod", None)
    rate(session, user.id, "prod", up=10, down=90)  # before the candidate existed
    vote(session, user.id, "cand", "prod", wins=0, losses=40)  # an earlier, failed rollout
    repo.add_candidate(rollout.id, "cand", 0.5, True, None)
    rate(session, user.id, "prod", up=36, down=24)
    rate(session, user.id, "cand", up=54, down=6)
    vote(session, user.id, "cand", "prod", wins=40, losses=20)
    windowed = GateConfig(online_margin=0.05, require_online=True, since_joined=True)
    report = check_gates(session, rollout, "cand", windowed)
    checks = {c.name: c for c in report.checks}
    assert checks["online:thumbs_up"].production_value == pytest.approx(0.6)
    assert checks["online:arena"].candidate_value == pytest.approx(40 / 60)
    assert checks["online:thumbs_up"].passed and checks["online:arena"].passed
    # Without the window the old failed rollout's votes drag the win share below half.
    everything = {c.name: c for c in _checks(session, "prod", "cand", NON_INFERIORITY).values()}
    assert everything["online:arena"].candidate_value == pytest.approx(40 / 100)
    assert not everything["online:arena"].passed
