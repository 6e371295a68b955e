"""The statistics of a behavior experiment's result (tandem.evals.experiments) on synthetic
votes with a known answer: a split that must be found, a uniform preference that must not be
called one, no difference, three variants.

    .venv/bin/python -m pytest -q tests/test_experiments_stats.py
"""

from __future__ import annotations

import random

import pytest

from tandem.evals.experiments import (
    binomial_tail,
    chi_square_homogeneity,
    chi_square_sf,
    experiment_result,
)
from tandem.store.experiments import ExperimentVote


def crowd(
    groups: list[tuple[int, float, str | None]], votes_each: int = 20, seed: int = 0
) -> list[ExperimentVote]:
    """Users in groups of (count, P(they pick "concise" over "detailed"), the profile they chat
    in); sides are random, as the server draws them; one vote in ten is a tie."""
    rng = random.Random(seed)
    out, n = [], 0
    for count, p_concise, segment in groups:
        for _ in range(count):
            user = f"u{n}"
            n += 1
            for i in range(votes_each):
                a, b = rng.sample(["concise", "detailed"], 2)
                if rng.random() < 0.1:
                    verdict = "tie"
                else:
                    winner = "concise" if rng.random() < p_concise else "detailed"
                    verdict = "a" if winner == a else "b"
                out.append(ExperimentVote(f"{user}-{i}", user, a, b, verdict, segment, segment))
    return out


VARIANTS = ["concise", "detailed"]


def test_textbook_values() -> None:
    assert chi_square_sf(3.841, 1) == pytest.approx(0.05, abs=5e-4)
    assert chi_square_sf(5.991, 2) == pytest.approx(0.05, abs=5e-4)
    assert chi_square_sf(7.815, 3) == pytest.approx(0.05, abs=5e-4)
    assert chi_square_sf(0.0, 4) == 1.0
    assert binomial_tail(1, 8, 0.5) == pytest.approx(9 / 256)
    assert binomial_tail(7, 8, 0.5, upper=True) == pytest.approx(9 / 256)
    assert binomial_tail(2, 2000, 0.05, upper=True) == pytest.approx(1.0)
    stat, df, p = chi_square_homogeneity([(30, 10), (10, 30)])
    assert df == 1 and stat == pytest.approx(20.0) and p < 1e-4
    assert chi_square_homogeneity([(10, 10)]) == (0.0, 0, 1.0)


def test_a_minority_that_prefers_the_other_variant_is_found() -> None:
    # 14 users like concise answers, 6 (who chat in the "Deep dives" profile) detailed ones.
    votes = crowd([(14, 0.85, "quick"), (6, 0.15, "deep")])
    result = experiment_result(votes, VARIANTS)
    assert result["leader"] == "concise" and result["clear_winner"]
    concise = result["variants"][0]
    assert concise["ci_low"] > 0.5 and concise["comparisons"] == 400
    users = result["users"]
    assert users["tested"] == 20 and users["split"]
    assert 4 <= users["opposite"] <= 6 and users["prefer"] == {"detailed": users["opposite"]}
    segments = result["segments"]
    assert segments["split"] and segments["opposite"] == ["deep"]
    assert segments["p_value"] < 0.001
    rec = result["recommendation"]
    assert rec["action"] == "personalize" and rec["variant"] == "detailed"
    assert "keep concise as the default" in rec["why"]


def test_an_even_split_is_personalization_not_no_difference() -> None:
    votes = crowd([(10, 0.9, None), (10, 0.1, None)], seed=1)
    result = experiment_result(votes, VARIANTS)
    assert not result["clear_winner"]
    assert result["users"]["split"] and result["users"]["opposite"] >= 8
    assert result["segments"]["df"] == 0 and not result["segments"]["split"]
    assert result["recommendation"]["action"] == "personalize"


@pytest.mark.parametrize("seed", range(5))
def test_a_uniform_preference_is_not_called_split(seed: int) -> None:
    # Everyone prefers concise answers 70% of the time, in two profiles alike.
    votes = crowd([(15, 0.7, "quick"), (15, 0.7, "deep")], seed=seed)
    result = experiment_result(votes, VARIANTS)
    assert result["users"]["opposite"] <= 1 and not result["users"]["split"]
    assert not result["segments"]["split"]
    assert result["recommendation"]["action"] == "make_default"
    assert result["recommendation"]["variant"] == "concise"


@pytest.mark.parametrize("seed", range(5))
def test_no_preference_is_no_difference(seed: int) -> None:
    votes = crowd([(10, 0.5, "quick"), (10, 0.5, "deep")], seed=seed)
    result = experiment_result(votes, VARIANTS)
    assert not result["clear_winner"] and not result["users"]["split"]
    assert result["recommendation"]["action"] == "no_difference"


def test_no_votes_yet() -> None:
    result = experiment_result([], VARIANTS)
    assert result["leader"] is None and result["variants"][0]["win_share"] is None
    assert result["recommendation"]["action"] == "no_difference"


def test_three_variants_get_bradley_terry_strengths() -> None:
    rng = random.Random(3)
    strength = {"short": 3.0, "medium": 1.0, "long": 0.3}
    votes = []
    for i in range(600):
        a, b = rng.sample(list(strength), 2)
        verdict = "a" if rng.random() < strength[a] / (strength[a] + strength[b]) else "b"
        votes.append(ExperimentVote(str(i), f"u{i % 30}", a, b, verdict, None, None))
    result = experiment_result(votes, ["short", "medium", "long"], bootstrap=50)
    bt = result["bradley_terry"]
    assert list(bt) == ["short", "medium", "long"]
    assert bt["short"]["ci_low"] > bt["medium"]["ci_high"]
    assert result["leader"] == "short" and result["clear_winner"]
    assert result["recommendation"]["action"] == "make_default"
