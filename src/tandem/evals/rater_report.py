"""A rater task's report: progress, Krippendorff's alpha, each rater's gold accuracy and speed,
and the items raters disagree on (for the admin to adjudicate).

    report = task_report(session, task_id)     # GET /api/admin/tasks/{id}, /admin/tasks

Rankings: alpha is **ordinal** over units (item, answer) whose values are the ranks raters gave
that answer. Ranks are ordered but not equally spaced in meaning (first vs second is not
"the same distance" as second vs third), and ties make some ranks more common than others;
ordinal alpha weighs a disagreement by how many pooled ranks lie between, which is exactly
that. Gold accuracy: the share of gold items on which the rater put the gold best answer first
and alone (`tandem.core.rankings.top_choice_correct`), a number a person can check by eye.
Speed: the median seconds from opening an item to submitting it.

Red team: no agreement (each finding is one rater's); the findings, each a regression case
(`tandem.evals.regressions.finding_case`).

Spec labels: alpha is **nominal** over units (item, behavior): pass, fail and not applicable
are categories without an order. Gold accuracy is the share of a rater's labels on gold items
that equal the gold label; an item's agreement the share of its behaviors all raters label
alike.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from tandem.core.rankings import (
    consensus_pairs,
    gold_accuracy,
    item_agreement,
    median_seconds,
)
from tandem.core.signals import SPEC_LABELS
from tandem.evals.agreement import Level, krippendorff_alpha
from tandem.store.rater_tasks import RaterAssignment, RaterItem, RaterTaskRepo

ALPHA_LEVEL: Level = "ordinal"
SPEC_ALPHA_LEVEL: Level = "nominal"


def spec_label_alpha(items: list[RaterItem], submitted: list[RaterAssignment]) -> float | None:
    """Nominal alpha over (item, behavior) units; labels coded by their place in SPEC_LABELS."""
    raters = sorted({a.rater_id for a in submitted})
    width = max((len((a.result or {}).get("labels", [])) for a in submitted), default=0)
    units = [(item.id, k) for item in items for k in range(width)]
    if not raters or not units:
        return None
    row = {r: n for n, r in enumerate(raters)}
    col = {u: n for n, u in enumerate(units)}
    data = np.full((len(raters), len(units)), np.nan)
    for a in submitted:
        for k, label in enumerate((a.result or {}).get("labels", [])):
            data[row[a.rater_id], col[(a.item_id, k)]] = SPEC_LABELS.index(label)
    return krippendorff_alpha(data, SPEC_ALPHA_LEVEL)


def labels_agreement(labelings: list[list[str]]) -> float | None:
    """The share of behaviors every rater labels alike; None with fewer than two."""
    if len(labelings) < 2 or not labelings[0]:
        return None
    columns = list(zip(*labelings, strict=True))
    return sum(1 for c in columns if len(set(c)) == 1) / len(columns)


def _label_gold(mine: list[RaterAssignment], by_id: dict[str, RaterItem]) -> tuple[int, int]:
    """(labels right, labels on gold items) for one rater."""
    pairs = [
        (given, known)
        for a in mine
        if by_id[a.item_id].is_gold
        for given, known in zip(
            (a.result or {})["labels"], by_id[a.item_id].gold or [], strict=True
        )
    ]
    return sum(1 for given, known in pairs if given == known), len(pairs)


def ranking_alpha(items: list[RaterItem], submitted: list[RaterAssignment]) -> float | None:
    """Ordinal alpha over (item, answer) units; raters are the rows."""
    raters = sorted({a.rater_id for a in submitted})
    units = [(item.id, k) for item in items for k in range(len(item.answers))]
    if not raters or not units:
        return None
    row = {r: n for n, r in enumerate(raters)}
    col = {u: n for n, u in enumerate(units)}
    data = np.full((len(raters), len(units)), np.nan)
    for a in submitted:
        for k, rank in enumerate((a.result or {}).get("ranks", [])):
            if (a.item_id, k) in col:
                data[row[a.rater_id], col[(a.item_id, k)]] = rank
    return krippendorff_alpha(data, ALPHA_LEVEL)


def _seconds(a: RaterAssignment) -> float | None:
    if a.started_at is None or a.submitted_at is None:
        return None
    return (a.submitted_at - a.started_at).total_seconds()


def task_report(session: Session, task_id: str) -> dict[str, Any]:
    repo = RaterTaskRepo(session)
    task = repo.get(task_id)
    items = repo.items(task_id)
    by_id = {i.id: i for i in items}
    submitted = [a for a in repo.assignments(task_id) if a.status == "submitted"]
    emails = repo.rater_emails(task_id)
    ranking = task.kind == "ranking"
    spec = task.kind == "spec_label"

    raters = []
    for rater_id in sorted({a.rater_id for a in submitted}, key=lambda r: emails.get(r, r)):
        mine = [a for a in submitted if a.rater_id == rater_id]
        gold = [
            ((a.result or {})["ranks"], by_id[a.item_id].gold or [])
            for a in mine
            if ranking and by_id[a.item_id].is_gold
        ]
        seconds = [s for s in map(_seconds, mine) if s is not None]
        correct = sum(1 for r, g in gold if gold_accuracy([(r, g)]) == 1.0)
        total, accuracy = len(gold), gold_accuracy(gold)
        if spec:  # counted per label, not per item
            correct, total = _label_gold(mine, by_id)
            accuracy = correct / total if total else None
        raters.append(
            {
                "rater_id": rater_id,
                "email": emails.get(rater_id, ""),
                "submitted": len(mine),
                "gold_items": total,
                "gold_correct": correct,
                "gold_accuracy": accuracy,
                "median_seconds": median_seconds(seconds),
                "findings": sum(1 for a in mine if (a.result or {}).get("finding")),
            }
        )

    disagreements = []
    if ranking or spec:
        key = "ranks" if ranking else "labels"
        for item in items:
            given = [a for a in submitted if a.item_id == item.id]
            rankings = [(a.result or {})[key] for a in given]
            agreement = item_agreement(rankings) if ranking else labels_agreement(rankings)
            if agreement is None or agreement == 1.0:
                continue
            disagreements.append(
                {
                    "item_id": item.id,
                    "position": item.position,
                    "is_gold": item.is_gold,
                    "gold": item.gold,
                    "prompt": item.prompt,
                    "answers": [a["text"] for a in item.answers],
                    "agreement": agreement,
                    "rankings": [
                        {
                            "rater": emails.get(a.rater_id, a.rater_id),
                            key: r,
                            "rationales": (a.result or {}).get("rationales"),
                        }
                        for a, r in zip(given, rankings, strict=True)
                    ],
                    "consensus": consensus_pairs(rankings) if ranking else None,
                    "resolution": item.resolution,
                }
            )
    findings = [
        {
            "assignment_id": a.id,
            "rater": emails.get(a.rater_id, a.rater_id),
            "rule": by_id[a.item_id].rule,
            "messages": (a.result or {})["messages"],
            "explanation": (a.result or {})["finding"]["explanation"],
            "regression_case": f"regression-redteam-{a.id}",
        }
        for a in submitted
        if (a.result or {}).get("finding")
    ]
    return {
        "progress": repo.progress(task_id),
        "findings": findings,
        "alpha": {
            "value": ranking_alpha(items, submitted)
            if ranking
            else spec_label_alpha(items, submitted)
            if spec
            else None,
            "level": ALPHA_LEVEL if ranking else SPEC_ALPHA_LEVEL if spec else None,
            "applies": ranking or spec,
        },
        "raters": raters,
        "disagreements": disagreements,
    }
