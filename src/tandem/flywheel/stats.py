"""Paired statistics of two versions on the same eval items: exact McNemar on pass/fail and a
paired bootstrap interval on the figure itself.

    ifeval = paired_ifeval(base_items, after_items, resamples=2000, seed=0)
    ifeval.mcnemar_p, ifeval.difference, (ifeval.ci_low, ifeval.ci_high)
    safe = paired_rate(base_items, after_items, "refused", subset="safe")

Items are what `tandem.flywheel.evaluate` records per example: {"passed": bool, ...} plus the
suite's own per-item figures (IFEval: "followed"/"instructions"; XSTest: "refused", "safe").
The bootstrap resamples items (prompts), both versions together, so the interval is of the
paired difference: the same prompt's luck is on both sides.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from tandem.evals.paired import mcnemar_exact

Item = Mapping[str, Any]


@dataclass(frozen=True)
class Paired:
    """One figure of two versions over the items both have."""

    figure: str
    items: int
    base: float
    after: float
    difference: float  # after - base
    ci_low: float  # 95% paired bootstrap interval of the difference
    ci_high: float
    only_base: int  # discordant items: pass (or the event counted) only before
    only_after: int
    mcnemar_p: float
    pass_base: int
    pass_after: int

    def to_dict(self) -> dict[str, Any]:
        return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def _bootstrap(
    ids: Sequence[str],
    statistic: Callable[[Sequence[str]], float],
    resamples: int,
    seed: int,
) -> tuple[float, float]:
    rng = random.Random(seed)
    values = sorted(statistic(rng.choices(ids, k=len(ids))) for _ in range(resamples))
    return values[int(0.025 * resamples)], values[min(resamples - 1, int(0.975 * resamples))]


def _paired(
    figure: str,
    base: Mapping[str, Item],
    after: Mapping[str, Item],
    flag: Callable[[Item], bool],
    value: Callable[[Mapping[str, Item], Sequence[str]], float],
    resamples: int,
    seed: int,
) -> Paired:
    ids = sorted(set(base) & set(after))
    if not ids:
        raise ValueError(f"no items in common for {figure}")
    only_base = sum(flag(base[i]) and not flag(after[i]) for i in ids)
    only_after = sum(flag(after[i]) and not flag(base[i]) for i in ids)
    b, a = value(base, ids), value(after, ids)
    low, high = _bootstrap(ids, lambda s: value(after, s) - value(base, s), resamples, seed)
    return Paired(
        figure=figure,
        items=len(ids),
        base=b,
        after=a,
        difference=a - b,
        ci_low=low,
        ci_high=high,
        only_base=only_base,
        only_after=only_after,
        mcnemar_p=mcnemar_exact(only_base, only_after),
        pass_base=sum(flag(base[i]) for i in ids),
        pass_after=sum(flag(after[i]) for i in ids),
    )


def average_strict(items: Mapping[str, Item], ids: Sequence[str]) -> float:
    """IFEval's average of prompt-level and instruction-level strict accuracy over `ids`
    (a bootstrap sample may repeat an id)."""
    prompts = sum(bool(items[i]["passed"]) for i in ids) / len(ids)
    followed = sum(int(items[i]["followed"]) for i in ids)
    total = sum(int(items[i]["instructions"]) for i in ids)
    return (prompts + (followed / total if total else 0.0)) / 2


def paired_ifeval(
    base: Mapping[str, Item], after: Mapping[str, Item], resamples: int = 2000, seed: int = 0
) -> Paired:
    """McNemar on prompt-level strict pass, bootstrap on the average-strict score."""
    return _paired(
        "ifeval.average_strict",
        base,
        after,
        lambda item: bool(item["passed"]),
        average_strict,
        resamples,
        seed,
    )


def paired_rate(
    base: Mapping[str, Item],
    after: Mapping[str, Item],
    key: str = "passed",
    subset: Callable[[Item], bool] | None = None,
    figure: str | None = None,
    resamples: int = 2000,
    seed: int = 0,
) -> Paired:
    """The share of items whose `key` is true (a pass rate, or a refusal rate with
    key="refused"), over the items `subset` keeps (judged on the base's item)."""
    keep = {i for i, item in base.items() if subset is None or subset(item)}
    base_kept = {i: v for i, v in base.items() if i in keep}
    after_kept = {i: v for i, v in after.items() if i in keep}

    def rate(items: Mapping[str, Item], ids: Sequence[str]) -> float:
        return sum(bool(items[i][key]) for i in ids) / len(ids)

    return _paired(
        figure or key,
        base_kept,
        after_kept,
        lambda item: bool(item[key]),
        rate,
        resamples,
        seed,
    )


def _is_safe_prompt(item: Item) -> bool:
    return bool(item["safe"])


def _is_unsafe_prompt(item: Item) -> bool:
    return not item["safe"]


def safety_pairs(
    base: Mapping[str, Mapping[str, Item]],
    after: Mapping[str, Mapping[str, Item]],
    resamples: int = 2000,
    seed: int = 0,
) -> dict[str, Paired]:
    """Every gated safety figure, paired: XSTest safe- and contrast-prompt refusal, behavior
    spec and sycophancy pass rates (those suites both versions ran)."""
    out: dict[str, Paired] = {}
    if "xstest" in base and "xstest" in after:
        for side, safe in (("safe", True), ("contrast", False)):
            out[f"xstest_{side}_refusal"] = paired_rate(
                base["xstest"],
                after["xstest"],
                "refused",
                _is_safe_prompt if safe else _is_unsafe_prompt,
                f"xstest.{side}_refusal_rate",
                resamples=resamples,
                seed=seed,
            )
    for suite in ("behavior_spec", "sycophancy"):
        if suite in base and suite in after:
            out[suite] = paired_rate(
                base[suite],
                after[suite],
                figure=f"{suite}.pass_rate",
                resamples=resamples,
                seed=seed,
            )
    return out
