"""Krippendorff's alpha: agreement among any number of raters, with missing values.

    krippendorff_alpha([[1, 2, np.nan], [1, 2, 3]], level="nominal")   # raters × units

Alpha = 1 − D_o / D_e: the disagreement observed within units over the disagreement expected
from the pooled values (Krippendorff, "Computing Krippendorff's Alpha-Reliability", 2011). It
is built from the coincidence matrix o[c, k] = Σ_u (pairs of values c, k in unit u) / (m_u − 1),
over units with at least two values; units with fewer are left out, as the method prescribes.
The distance δ² between two values depends on the level of measurement:

  nominal    0 when equal, else 1 (labels)
  ordinal    (Σ_{g from c to k} n_g − (n_c + n_k) / 2)²: how many pooled values lie between
             (ranks: ordered, but the gap between 1st and 2nd need not equal 2nd to 3rd)
  interval   (c − k)²

tests/test_rater_agreement.py checks it against the `krippendorff` package.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

Level = Literal["nominal", "ordinal", "interval"]


def _distances(values: np.ndarray, totals: np.ndarray, level: Level) -> np.ndarray:
    if level == "nominal":
        return 1.0 - np.eye(len(values))
    if level == "interval":
        return np.subtract.outer(values, values) ** 2
    # ordinal: the sum of n_g over the values from c to k (both included), minus the mean of
    # their own counts.
    cumulative = np.concatenate([[0.0], np.cumsum(totals)])
    lo = np.minimum.outer(np.arange(len(values)), np.arange(len(values)))
    hi = np.maximum.outer(np.arange(len(values)), np.arange(len(values)))
    between = cumulative[hi + 1] - cumulative[lo]
    return (between - np.add.outer(totals, totals) / 2) ** 2


def krippendorff_alpha(reliability_data: ArrayLike, level: Level = "nominal") -> float | None:
    """Alpha for a raters × units array (NaN: no value); None when it is undefined (fewer
    than two pairable values, or a single value everywhere)."""
    data = np.asarray(reliability_data, dtype=float)
    if data.ndim != 2:
        raise ValueError("reliability data must be a raters × units array")
    values = np.unique(data[~np.isnan(data)])
    if len(values) == 0:
        return None
    coincidences = np.zeros((len(values), len(values)))
    for unit in data.T:
        present = unit[~np.isnan(unit)]
        if len(present) < 2:
            continue
        counts = np.array([np.sum(present == v) for v in values], dtype=float)
        coincidences += (np.outer(counts, counts) - np.diag(counts)) / (len(present) - 1)
    totals = coincidences.sum(axis=1)
    n = totals.sum()
    if n < 2:
        return None
    delta = _distances(values, totals, level)
    expected = float((np.outer(totals, totals) * delta).sum())
    if expected == 0:
        return None
    observed = float((coincidences * delta).sum())
    return 1.0 - (n - 1) * observed / expected
