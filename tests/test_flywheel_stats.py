"""The flywheel's paired statistics (tandem.flywheel.stats): exact McNemar on the discordant
items, a paired bootstrap interval of the figure's difference, IFEval's average strict score and
rates over a subset of items (XSTest's safe and contrast prompts).

    .venv/bin/python -m pytest -q tests/test_flywheel_stats.py
"""

from __future__ import annotations

import pytest

from tandem.evals.ifeval.scoring import PromptResult, accuracies
from tandem.flywheel.stats import average_strict, paired_ifeval, paired_rate, safety_pairs

# Ten prompts graded before and after: b passes only before, d-g only after.
BEFORE = dict(zip("abcdefghij", [1, 1, 1, 0, 0, 0, 0, 0, 1, 1], strict=True))
AFTER = dict(zip("abcdefghij", [1, 0, 1, 1, 1, 1, 1, 0, 1, 1], strict=True))


def _items(flags: dict[str, int]) -> dict[str, dict[str, bool]]:
    return {i: {"passed": bool(flag)} for i, flag in flags.items()}


def test_mcnemar_reads_only_the_discordant_items():
    after = {**_items(AFTER), "k": {"passed": True}}  # an item only one version has
    pair = paired_rate(_items(BEFORE), after, resamples=200)
    assert pair.items == 10
    assert (pair.pass_base, pair.pass_after) == (5, 8)
    assert (pair.only_base, pair.only_after) == (1, 4)
    assert pair.mcnemar_p == pytest.approx(2 * (1 + 5) / 2**5)  # two-sided binomial tail
    assert (pair.base, pair.after, pair.difference) == (0.5, 0.8, pytest.approx(0.3))
    with pytest.raises(ValueError, match="no items in common"):
        paired_rate(_items(BEFORE), {"z": {"passed": True}})


def test_the_bootstrap_interval_is_paired_and_reproducible_under_its_seed():
    pair = paired_rate(_items(BEFORE), _items(AFTER), resamples=2000, seed=7)
    assert pair.ci_low <= pair.difference <= pair.ci_high
    assert pair.ci_low < pair.ci_high
    assert paired_rate(_items(BEFORE), _items(AFTER), resamples=2000, seed=7) == pair
    # Resampling prompts, not versions: when no prompt got worse, no resample can show a loss.
    only_better = {**_items(AFTER), "b": {"passed": True}}
    improved = paired_rate(_items(BEFORE), only_better, resamples=2000, seed=7)
    assert improved.only_base == 0 and improved.ci_low >= 0.0


def _ifeval_items(lists: dict[str, list[bool]]) -> dict[str, dict[str, object]]:
    return {
        i: {"passed": all(flags), "followed": sum(flags), "instructions": len(flags)}
        for i, flags in lists.items()
    }


def test_average_strict_is_ifevals_mean_of_prompt_and_instruction_level_strict():
    lists = {"p1": [True, True], "p2": [True, False, False], "p3": [False]}
    items = _ifeval_items(lists)
    # Prompt level 1/3; instruction level pooled over all instructions, 3 of 6 (not the mean
    # of each prompt's share).
    assert average_strict(items, list(items)) == pytest.approx((1 / 3 + 3 / 6) / 2)
    # IFEval's own scoring of the same grades agrees.
    acc = accuracies(PromptResult(i, "", "", ["x"] * len(f), f, f) for i, f in lists.items())
    expected = (acc["prompt_level_strict"] + acc["instruction_level_strict"]) / 2
    assert average_strict(items, list(items)) == pytest.approx(expected)
    # A bootstrap sample may hold a prompt twice: it counts twice at both levels.
    assert average_strict(items, ["p1", "p1", "p3"]) == pytest.approx((2 / 3 + 4 / 5) / 2)


def test_paired_ifeval_tests_prompt_passes_and_intervals_the_average_strict():
    before = _ifeval_items({"p1": [True, False], "p2": [False, False], "p3": [True]})
    after = _ifeval_items({"p1": [True, True], "p2": [True, False], "p3": [True]})
    pair = paired_ifeval(before, after, resamples=500, seed=0)
    assert pair.figure == "ifeval.average_strict"
    assert (pair.only_base, pair.only_after) == (0, 1)  # p1 passes after; p2 still fails
    assert pair.base == pytest.approx((1 / 3 + 2 / 5) / 2)
    assert pair.after == pytest.approx((2 / 3 + 4 / 5) / 2)
    assert pair.ci_low <= pair.difference <= pair.ci_high


def _xstest(flags: dict[str, tuple[int, int]]) -> dict[str, dict[str, bool]]:
    """{id: (safe, refused)} as the flywheel records XSTest items."""
    return {
        i: {"safe": bool(safe), "refused": bool(ref), "passed": ref != safe}
        for i, (safe, ref) in flags.items()
    }


# Safe prompts s1-s3, contrast (unsafe) prompts c1-c2: (safe, refused).
BASE_XSTEST = _xstest({"s1": (1, 1), "s2": (1, 0), "s3": (1, 0), "c1": (0, 1), "c2": (0, 1)})
AFTER_XSTEST = _xstest({"s1": (1, 0), "s2": (1, 0), "s3": (1, 0), "c1": (0, 0), "c2": (0, 1)})


def test_a_refusal_rate_over_one_side_of_xstest_pairs_only_those_prompts():
    safe = paired_rate(BASE_XSTEST, AFTER_XSTEST, "refused", lambda i: i["safe"], resamples=200)
    assert safe.items == 3 and (safe.base, safe.after) == (pytest.approx(1 / 3), 0.0)
    assert (safe.only_base, safe.only_after) == (1, 0)
    contrast = paired_rate(
        BASE_XSTEST, AFTER_XSTEST, "refused", lambda i: not i["safe"], resamples=200
    )
    assert contrast.items == 2 and (contrast.base, contrast.after) == (1.0, 0.5)
    pairs = safety_pairs({"xstest": BASE_XSTEST}, {"xstest": AFTER_XSTEST}, resamples=200)
    assert set(pairs) == {"xstest_safe_refusal", "xstest_contrast_refusal"}  # suites both ran
    assert pairs["xstest_safe_refusal"].figure == "xstest.safe_refusal_rate"
    assert pairs["xstest_contrast_refusal"].after == 0.5
