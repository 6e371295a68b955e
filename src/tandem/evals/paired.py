"""Paired comparison of two eval runs on the same items: which flipped, and is it significant.

The exact McNemar test looks only at discordant items: b passed in A and failed in B, c the
reverse. Under "no difference" each discordant item is a fair coin, so the two-sided p-value is
2 * P(Binomial(b + c, 1/2) <= min(b, c)), capped at 1 (the sign test).

The paired bootstrap resamples items (prompts), both runs together, so its interval is of the
paired difference: the same prompt's luck is on both sides.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from math import comb
from typing import Any, TypeVar

T = TypeVar("T")


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value from the discordant counts b and c."""
    if b < 0 or c < 0:
        raise ValueError("counts must be non-negative")
    n = b + c
    if n == 0:
        return 1.0
    tail = sum(comb(n, k) for k in range(min(b, c) + 1))
    # Integers until the one division, so large n loses no precision to 0.5**n underflow.
    return min(1.0, 2 * tail / 2**n)


def paired_bootstrap(
    ids: Sequence[T], statistic: Callable[[list[T]], float], resamples: int, seed: int = 0
) -> tuple[float, float]:
    """95% percentile interval of `statistic` over `resamples` resamples of `ids` (with repeats).

    `statistic` computes the difference of the two runs on one resample, so each prompt's pair
    of outcomes is drawn together. The same draws as tandem.flywheel.stats' bootstrap, so the
    two give the same interval for the same seed.
    """
    if resamples < 1 or not ids:
        raise ValueError("need at least one resample and one item")
    rng = random.Random(seed)
    values = sorted(statistic(rng.choices(ids, k=len(ids))) for _ in range(resamples))
    return values[int(0.025 * resamples)], values[min(resamples - 1, int(0.975 * resamples))]


def compare_outcomes(a: Mapping[str, bool], b: Mapping[str, bool]) -> dict[str, Any]:
    """Compare pass/fail by example id over the items both runs graded."""
    common = sorted(set(a) & set(b))
    pass_to_fail = [k for k in common if a[k] and not b[k]]
    fail_to_pass = [k for k in common if not a[k] and b[k]]
    n = len(common)
    return {
        "n_common": n,
        "only_in_a": len(set(a) - set(b)),
        "only_in_b": len(set(b) - set(a)),
        "pass_rate_a": sum(a[k] for k in common) / n if n else None,
        "pass_rate_b": sum(b[k] for k in common) / n if n else None,
        "both_pass": sum(a[k] and b[k] for k in common),
        "both_fail": sum(not a[k] and not b[k] for k in common),
        "pass_to_fail": len(pass_to_fail),
        "fail_to_pass": len(fail_to_pass),
        "p_value": mcnemar_exact(len(pass_to_fail), len(fail_to_pass)),
        "pass_to_fail_ids": pass_to_fail,
        "fail_to_pass_ids": fail_to_pass,
    }
