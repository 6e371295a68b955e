"""Two finished runs of one suite, prompt by prompt: what improved, what regressed, and whether
the difference is more than luck. GET /api/evals/compare and the Compare panel of /admin/evals.

    result = compare_runs(EvalRepo(session), run_a_id, run_b_id, resamples=1000, seed=0)
    result["paired"]    # both / neither / only_a / only_b passed, exact McNemar p, headline
    result["items"]     # one per example both runs graded, change: improved | regressed | same
    result["unpaired"]  # examples only one run graded (runs with different --limit, say)

Items are paired by example id (the suite's own key for a prompt). A is the baseline and B the
candidate: "improved" means failed in A and passed in B. The headline is the suite's ranking
figure (tandem.evals.report.headline) recomputed on the paired items only, so that the
interval is of the difference on the same prompts, not of two runs' unrelated summaries.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from tandem.core.errors import InvalidInput, NotFound
from tandem.core.messages import Message
from tandem.evals.paired import compare_outcomes, paired_bootstrap
from tandem.evals.pairwise import prompt_text
from tandem.evals.report import headline
from tandem.evals.tasks import Example
from tandem.store.evals import EvalItemRow, EvalRepo, EvalRunRow

CHANGES = ("improved", "regressed", "same")

Parts = tuple[float, ...]


@dataclass(frozen=True)
class _Figure:
    """A headline as a sum over items: each item gives `parts`, `combine` turns their sums (and
    the item count) into the figure. Sums make a bootstrap resample cheap to score."""

    key: str
    parts: Callable[[EvalItemRow], Parts]
    combine: Callable[[Parts, int], float]
    keep: Callable[[EvalItemRow], bool] | None = None  # the items the figure is over


def _mean(sums: Parts, n: int) -> float:
    return sums[0] / n


def _strict(item: EvalItemRow) -> list[Any] | None:
    value = (item.details or {}).get("follow_instruction_list_strict")
    return value if isinstance(value, list) else None


def _average_strict(sums: Parts, n: int) -> float:
    # IFEval's figure: the mean of prompt-level and instruction-level strict accuracy.
    return (sums[0] / n + (sums[1] / sums[2] if sums[2] else 0.0)) / 2


def _score(name: str) -> Callable[[EvalItemRow], Parts]:
    return lambda item: (float((item.scores or {})[name]),)


def _passed(item: EvalItemRow) -> Parts:
    return (float(item.passed),)


PASS_RATE = _Figure("pass_rate", _passed, _mean)
FIGURES: dict[str, _Figure] = {
    "pass_rate": PASS_RATE,
    "average_strict": _Figure(
        "average_strict",
        lambda i: (float(i.passed), float(sum(map(bool, _strict(i) or []))), len(_strict(i) or [])),
        _average_strict,
    ),
    # XSTest: the share of safe prompts refused (lower is better), over the safe prompts only.
    "safe_refusal_rate": _Figure(
        "safe_refusal_rate",
        _score("refusal"),
        _mean,
        keep=lambda i: (i.details or {}).get("safe") is True,
    ),
    # Pairwise runs: a tie counts half, as in the run's own summary.
    "win_rate": _Figure("win_rate", _score("score"), _mean),
}


def _usable(figure: _Figure, items: Sequence[EvalItemRow]) -> bool:
    """Whether every item carries what the figure needs (an older run may not)."""
    try:
        parts = [figure.parts(i) for i in items]
    except (KeyError, TypeError, ValueError):
        return False
    if figure.key == "average_strict" and any(_strict(i) is None for i in items):
        return False
    return all(math.isfinite(x) for p in parts for x in p)


def _figure_for(suite: str, items: Sequence[EvalItemRow]) -> _Figure:
    """The suite's headline where its items carry it, else the pass rate every item has."""
    figure = FIGURES.get(headline(suite).key)
    return figure if figure is not None and _usable(figure, items) else PASS_RATE


def _score_of(figure: _Figure, parts: Sequence[Parts]) -> float:
    sums = tuple(math.fsum(p[k] for p in parts) for k in range(len(parts[0])))
    return figure.combine(sums, len(parts))


def headline_difference(
    suite: str,
    pairs: Sequence[tuple[EvalItemRow, EvalItemRow]],
    resamples: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """The suite's headline in A and in B over the paired items, B - A, and its paired bootstrap
    95% interval (None without items or with resamples=0)."""
    figure = _figure_for(suite, [i for pair in pairs for i in pair])
    kept = [(a, b) for a, b in pairs if figure.keep is None or figure.keep(a)]
    out: dict[str, Any] = {
        "key": figure.key,
        "higher_is_better": headline(suite).higher_is_better if figure is not PASS_RATE else True,
        "n": len(kept),
        "resamples": resamples,
        "a": None,
        "b": None,
        "difference": None,
        "ci_low": None,
        "ci_high": None,
    }
    if not kept:
        return out
    parts_a = [figure.parts(a) for a, _ in kept]
    parts_b = [figure.parts(b) for _, b in kept]
    value_a, value_b = _score_of(figure, parts_a), _score_of(figure, parts_b)
    out |= {"a": value_a, "b": value_b, "difference": value_b - value_a}
    if resamples > 0:

        def difference(sample: list[int]) -> float:
            return _score_of(figure, [parts_b[k] for k in sample]) - _score_of(
                figure, [parts_a[k] for k in sample]
            )

        out["ci_low"], out["ci_high"] = paired_bootstrap(
            range(len(kept)), difference, resamples, seed
        )
    return {k: round(v, 6) if isinstance(v, float) else v for k, v in out.items()}


def prompt_of(messages: Sequence[Any]) -> str:
    """The prompt as a person reads it: the user's message, or the transcript of a longer one
    (a stored row that is not a message is skipped rather than failing the comparison)."""
    parsed = tuple(
        Message.from_dict(m)
        for m in messages
        if isinstance(m, dict) and isinstance(m.get("role"), str)
    )
    return prompt_text(Example(id="", messages=parsed)) if parsed else ""


def _grade(item: EvalItemRow) -> dict[str, Any]:
    return {
        "answer": item.response,
        "passed": item.passed,
        "scores": item.scores or {},
        "details": item.details or {},
        "generation_id": item.generation_id,
    }


def change(a: EvalItemRow, b: EvalItemRow) -> str:
    """improved: failed in A, passed in B; regressed: the reverse; same: one verdict in both."""
    if a.passed == b.passed:
        return "same"
    return "improved" if b.passed else "regressed"


def _run_head(run: EvalRunRow) -> dict[str, Any]:
    key = headline(run.suite).key
    return {
        "id": run.id,
        "model_version": run.model_version,
        "backend": run.backend,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "n_items": run.n_items,
        "summary": run.summary or {},
        # The whole run's figure as its summary has it (the paired one is over common items).
        "headline": {"key": key, "value": (run.summary or {}).get(key)},
    }


def _finished_run(repo: EvalRepo, run_id: str, side: str) -> EvalRunRow:
    try:
        run = repo.get_run(run_id)
    except NotFound:
        raise NotFound(f"eval run {run_id} ({side})") from None
    if run.status != "finished":
        raise InvalidInput(
            f"eval run {run_id} ({side}) is {run.status}: only finished runs can be compared"
        )
    return run


def compare_runs(
    repo: EvalRepo, run_a: str, run_b: str, resamples: int = 1000, seed: int = 0
) -> dict[str, Any]:
    """Runs A (baseline) and B (candidate) paired prompt by prompt; NotFound for an unknown id,
    InvalidInput for the same run twice, an unfinished run or two suites."""
    if run_a == run_b:
        raise InvalidInput("a and b are the same run: pick two different runs")
    a, b = _finished_run(repo, run_a, "a"), _finished_run(repo, run_b, "b")
    if a.suite != b.suite:
        raise InvalidInput(
            f"the runs are of different suites ({a.suite}, {b.suite}): compare runs of one suite"
        )
    items_a = {i.example_id: i for i in repo.items(a.id)}
    items_b = {i.example_id: i for i in repo.items(b.id)}
    counts = compare_outcomes(
        {k: i.passed for k, i in items_a.items()}, {k: i.passed for k, i in items_b.items()}
    )
    common = sorted(set(items_a) & set(items_b))
    pairs = [(items_a[k], items_b[k]) for k in common]
    items = [
        {
            "example_id": ia.example_id,
            "prompt": prompt_of(ia.prompt_messages),
            "prompt_messages": ia.prompt_messages,
            "a": _grade(ia),
            "b": _grade(ib),
            "change": change(ia, ib),
            "answer_changed": ia.response != ib.response,
        }
        for ia, ib in pairs
    ]
    unpaired = [
        {"example_id": k, "run": side, "prompt": prompt_of(i.prompt_messages)} | _grade(i)
        for side, mine, other in (("a", items_a, items_b), ("b", items_b, items_a))
        for k, i in sorted(mine.items())
        if k not in other
    ]
    return {
        "suite": a.suite,
        "a": _run_head(a),
        "b": _run_head(b),
        "paired": {
            "n": counts["n_common"],
            "both": counts["both_pass"],
            "neither": counts["both_fail"],
            "only_a": counts["pass_to_fail"],
            "only_b": counts["fail_to_pass"],
            "mcnemar_p": counts["p_value"],
            "headline": headline_difference(a.suite, pairs, resamples, seed),
        },
        "items": items,
        "unpaired": {
            "only_in_a": counts["only_in_a"],
            "only_in_b": counts["only_in_b"],
            "items": unpaired,
        },
    }
