"""Online metrics from users' signals: thumbs-up rates with Wilson intervals, arena ratings.

tandem eval online [--json] [--bootstrap 100] [--seed 0]

wilson_interval(45, 50)          # (0.7864..., 0.9565...)
online_report(session)           # {"thumbs_up": {...}, "arena": {...}}
"""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy.orm import Session

from tandem.evals.arena import battle_from_vote, bradley_terry_ratings
from tandem.store.metrics import ThumbsCount, comparison_votes, thumbs_counts


def wilson_interval(successes: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (`successes` may be fractional: a
    comparison's tie counts half a win).

    Chosen over the normal approximation because it stays inside [0, 1] and behaves at 0/n
    and n/n, which is exactly where a new model version with a handful of ratings sits.
    With n == 0 nothing is known: (0.0, 1.0)."""
    if n < 0 or not 0 <= successes <= n:
        raise ValueError("need 0 <= successes <= n")
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z / (1 + z2 / n) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def newcombe_difference(
    successes_a: float, n_a: int, successes_b: float, n_b: int, z: float = 1.96
) -> tuple[float, float, float]:
    """(p_a - p_b, low, high): Newcombe's hybrid score interval for a difference of two
    independent proportions, built from each side's Wilson interval (it keeps Wilson's good
    behaviour near 0 and 1, where a thumbs-up rate of a weak model sits)."""
    if n_a <= 0 or n_b <= 0:
        raise ValueError("both sides need at least one observation")
    p_a, p_b = successes_a / n_a, successes_b / n_b
    low_a, high_a = wilson_interval(successes_a, n_a, z)
    low_b, high_b = wilson_interval(successes_b, n_b, z)
    diff = p_a - p_b
    low = diff - math.sqrt((p_a - low_a) ** 2 + (high_b - p_b) ** 2)
    high = diff + math.sqrt((high_a - p_a) ** 2 + (p_b - low_b) ** 2)
    return diff, low, high


def _rates(counts: list[ThumbsCount]) -> dict[str, dict[str, Any]]:
    out = {}
    for row in counts:
        low, high = wilson_interval(row.up, row.total)
        out[row.key if row.key is not None else "(none)"] = {
            "up": row.up,
            "total": row.total,
            "rate": round(row.up / row.total, 4) if row.total else None,
            "ci_low": round(low, 4),
            "ci_high": round(high, 4),
        }
    return out


def online_report(session: Session, bootstrap: int = 100, seed: int = 0) -> dict[str, Any]:
    """Thumbs-up rates per model version and per profile, and arena ratings from votes."""
    battles = [battle_from_vote(v.model_a, v.model_b, v.verdict) for v in comparison_votes(session)]
    ratings = bradley_terry_ratings(battles, bootstrap=bootstrap, seed=seed)
    return {
        "thumbs_up": {
            "by_model_version": _rates(thumbs_counts(session, by="model_version")),
            "by_profile": _rates(thumbs_counts(session, by="profile")),
        },
        "arena": {
            "votes": len(battles),
            "ratings": {model: r.to_dict() for model, r in ratings.items()},
        },
    }


def format_report(report: dict[str, Any]) -> str:
    """The report as aligned plain-text tables for a terminal."""
    lines = []
    for title, key in (("model version", "by_model_version"), ("profile", "by_profile")):
        lines.append(f"Thumbs-up rate by {title} (95% Wilson interval)")
        rows = report["thumbs_up"][key]
        if not rows:
            lines.append("  (no ratings yet)")
        for name, r in rows.items():
            lines.append(
                f"  {name:<32} {r['rate']:>6.1%}  [{r['ci_low']:.1%}, {r['ci_high']:.1%}]"
                f"  {r['up']}/{r['total']}"
            )
        lines.append("")
    arena = report["arena"]
    lines.append(f"Arena ratings (Bradley–Terry, 95% bootstrap interval; {arena['votes']} votes)")
    if not arena["ratings"]:
        lines.append("  (no comparisons between different model versions yet)")
    for name, r in arena["ratings"].items():
        lines.append(
            f"  {name:<32} {r['rating']:>7.1f}  [{r['ci_low']:.1f}, {r['ci_high']:.1f}]"
            f"  {r['battles']} battles"
        )
    return "\n".join(lines)
