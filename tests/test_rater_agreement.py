"""Krippendorff's alpha and gold accuracy against independent computations: alpha against the
`krippendorff` package (nominal, ordinal and interval, with missing values), gold accuracy
against a plain count written here; and the report's numbers on a synthetic ranking task.

    .venv/bin/python -m pytest -q tests/test_rater_agreement.py
"""

from __future__ import annotations

import krippendorff
import numpy as np
import pytest

from tandem.core.rankings import consensus_pairs, gold_accuracy, item_agreement
from tandem.evals.agreement import krippendorff_alpha
from tandem.evals.rater_report import ranking_alpha
from tandem.store.rater_tasks import RaterAssignment, RaterItem


@pytest.mark.parametrize("level", ["nominal", "ordinal", "interval"])
@pytest.mark.parametrize("seed", range(6))
def test_alpha_matches_the_krippendorff_package_with_missing_values(level, seed):
    rng = np.random.default_rng(seed)
    raters, units = rng.integers(2, 6), rng.integers(5, 30)
    truth = rng.integers(1, 5, size=units)
    # Raters mostly agree with a truth, sometimes not, and skip a quarter of the units.
    noise = rng.integers(1, 5, size=(raters, units))
    data = np.where(rng.random((raters, units)) < 0.7, truth, noise).astype(float)
    data[rng.random(data.shape) < 0.25] = np.nan
    ours = krippendorff_alpha(data, level)
    theirs = krippendorff.alpha(reliability_data=data, level_of_measurement=level)
    assert ours == pytest.approx(theirs, abs=1e-9)


def test_alpha_known_values():
    assert krippendorff_alpha([[1, 2, 3, 1], [1, 2, 3, 1]]) == pytest.approx(1.0)
    # Krippendorff (2011), the nominal example with missing values: alpha 0.743.
    nan = np.nan
    data = [
        [1, 2, 3, 3, 2, 1, 4, 1, 2, nan, nan, nan],
        [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, nan, 3],
        [nan, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, nan],
        [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, nan],
    ]
    assert krippendorff_alpha(data, "nominal") == pytest.approx(0.743, abs=5e-4)
    assert krippendorff_alpha([[1, 1], [1, 1]]) is None  # one value: undefined
    assert krippendorff_alpha([[1, np.nan], [np.nan, 2]]) is None  # nothing pairable


def _plain_gold_accuracy(answers):
    """Independent: count the items where the rater's set of first-ranked answers is exactly
    the one answer the gold ranking puts first."""
    right = 0
    for ranks, gold in answers:
        rater_first = {k for k in range(len(ranks)) if ranks[k] == min(ranks)}
        gold_first = {k for k in range(len(gold)) if gold[k] == 1}
        right += rater_first == gold_first
    return right / len(answers)


def test_gold_accuracy_matches_a_plain_count():
    rng = np.random.default_rng(7)
    answers = []
    for _ in range(200):
        n = int(rng.integers(2, 6))
        gold = list(rng.permutation(n) + 1)
        ranks = [int(x) for x in rng.integers(1, n + 1, size=n)]  # ties happen
        answers.append((ranks, gold))
    assert gold_accuracy(answers) == pytest.approx(_plain_gold_accuracy(answers))
    assert gold_accuracy([]) is None
    assert gold_accuracy([([1, 1, 2], [1, 2, 3])]) == 0.0  # a tie on top picks no best


def test_item_agreement_and_consensus():
    assert item_agreement([[1, 2, 3], [1, 3, 2]]) == pytest.approx(2 / 3)
    assert item_agreement([[1, 2]]) is None
    assert consensus_pairs([[1, 2], [1, 2], [2, 1]]) == [(0, 1)]
    assert consensus_pairs([[1, 2], [2, 1]]) == []  # no majority
    assert consensus_pairs([[1, 1], [1, 1], [1, 2]]) == []  # the majority is a tie


def test_the_reports_alpha_is_ordinal_alpha_over_answers():
    """A synthetic task: 3 raters, 4 items of 3 answers, one rater missing an item. The report's
    alpha equals the package's ordinal alpha on the raters × (item, answer) matrix of ranks."""
    rankings = {
        "r1": {"i1": [1, 2, 3], "i2": [2, 1, 3], "i3": [1, 1, 2], "i4": [3, 2, 1]},
        "r2": {"i1": [1, 3, 2], "i2": [2, 1, 3], "i3": [1, 2, 3], "i4": [3, 1, 2]},
        "r3": {"i1": [1, 2, 3], "i3": [2, 1, 3], "i4": [3, 2, 1]},
    }
    items = [RaterItem(id=i, answers=[{"text": str(k)} for k in range(3)]) for i in rankings["r1"]]
    submitted = [
        RaterAssignment(item_id=i, rater_id=r, result={"ranks": ranks})
        for r, mine in rankings.items()
        for i, ranks in mine.items()
    ]
    matrix = [
        [mine.get(i.id, [np.nan] * 3)[k] for i in items for k in range(3)]
        for mine in rankings.values()
    ]
    expected = krippendorff.alpha(
        reliability_data=np.array(matrix, dtype=float), level_of_measurement="ordinal"
    )
    assert ranking_alpha(items, submitted) == pytest.approx(expected, abs=1e-9)
