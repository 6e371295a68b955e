"""A rater task's submissions → a snapshot: demonstrations as SFT rows, rankings as preference
pairs from the raters' consensus.

    result = build_rater_snapshot(session, home, RaterBuild(task_id="ab12…", min_agreement=0.5))

Rows (docs/raters.md):
  - demonstration: each submitted conversation is one `messages` row;
  - ranking: `prompt`/`chosen`/`rejected` for every pair of answers that a strict majority of
    the item's raters orders the same way (ties give no pair). An item the admin adjudicated
    uses the adjudicated order instead, and a gold item its gold order; both skip
    `min_agreement`, because a person who knows the answer decided them.

Filters: `min_agreement` leaves out ranking items whose raters order fewer than that share of
answer pairs alike (`tandem.core.rankings.item_agreement`); `min_gold_accuracy` leaves out the
submissions of raters whose gold accuracy is below it, or unknown (no gold item answered).
Raters who withdrew consent (`use_for_training`) are never read. Each row's provenance names
the task, the item, the raters, their assignments and the item's agreement.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from tandem.core.errors import InvalidInput
from tandem.core.rankings import consensus_pairs, gold_accuracy, item_agreement, ordered_pairs
from tandem.core.signals import DATASET_KIND_FOR_TASK, is_rater_task_kind
from tandem.data.build import BuildResult, finish_snapshot
from tandem.data.builders import Example
from tandem.store.models import User
from tandem.store.rater_tasks import RaterAssignment, RaterItem, RaterTaskRepo

RATER_RULES = (
    "demonstration → the submitted conversation is one SFT row; "
    "ranking → chosen/rejected for each answer pair a strict majority of raters orders alike "
    "(ties: no pair); adjudicated items use the admin's order, gold items the gold order."
)


@dataclass(frozen=True)
class RaterBuild:
    task_id: str
    min_agreement: float | None = None
    min_gold_accuracy: float | None = None
    test_fraction: float = 0.1
    near_duplicate_threshold: float = 0.9
    name: str = ""

    def filters(self) -> dict[str, Any]:
        return {
            "consent": "use_for_training (always enforced)",
            "task_id": self.task_id,
            "min_agreement": self.min_agreement,
            "min_gold_accuracy": self.min_gold_accuracy,
            "test_fraction": self.test_fraction,
            "near_duplicate_threshold": self.near_duplicate_threshold,
            "rules": RATER_RULES,
        }


def _messages(prompt: list[dict[str, Any]]) -> list[dict[str, str]]:
    return [{"role": str(m["role"]), "content": str(m["content"])} for m in prompt]


def _sources(task_id: str, item: RaterItem, given: list[RaterAssignment], agreement: Any) -> dict:
    sources = {
        "rater_task": [task_id],
        "rater_item": [item.id],
        "rater": sorted({a.rater_id for a in given}),
        "assignment": sorted(a.id for a in given),
        "item_agreement": ["n/a" if agreement is None else f"{agreement:.3f}"],
    }
    if item.resolution is not None:
        sources["adjudicated_by"] = [item.resolved_by or "unknown"]
    return sources


def _ranking_examples(
    task_id: str, items: list[RaterItem], given: dict[str, list[RaterAssignment]], build: RaterBuild
) -> list[Example]:
    out = []
    for item in items:
        mine = given.get(item.id, [])
        rankings = [a.result["ranks"] for a in mine if a.result]
        agreement = item_agreement(rankings)
        if item.resolution is not None:
            pairs = ordered_pairs(item.resolution["ranks"])
        elif item.is_gold and item.gold:
            pairs = ordered_pairs(item.gold)
        else:
            if not rankings:
                continue
            if build.min_agreement is not None and (agreement or 0.0) < build.min_agreement:
                continue
            pairs = consensus_pairs(rankings)
        texts = [str(a["text"]) for a in item.answers]
        models = tuple(sorted({str(a["model"]) for a in item.answers if a.get("model")}))
        at = max((a.submitted_at for a in mine if a.submitted_at), default=None)
        for win, lose in pairs:
            if texts[win] == texts[lose]:
                continue
            row = {
                "prompt": _messages(item.prompt),
                "chosen": [{"role": "assistant", "content": texts[win]}],
                "rejected": [{"role": "assistant", "content": texts[lose]}],
            }
            sources = _sources(task_id, item, mine, agreement)
            out.append(Example(row, sources, None, at, "rater_ranking", models))
    return out


def _demonstration_examples(
    task_id: str, items: list[RaterItem], given: dict[str, list[RaterAssignment]]
) -> list[Example]:
    out = []
    for item in items:
        for a in given.get(item.id, []):
            if not a.result:
                continue
            models = tuple(sorted({str(g["model"]) for g in a.generations if g.get("model")}))
            row = {"messages": _messages(a.result["messages"])}
            sources = _sources(task_id, item, [a], None)
            out.append(Example(row, sources, a.rater_id, a.submitted_at, "rater_demo", models))
    return out


def build_rater_snapshot(
    session: Session, home: Path, build: RaterBuild, *, created_by: str | None = None
) -> BuildResult:
    """Build (or find) the snapshot of one task's submissions."""
    repo = RaterTaskRepo(session)
    task = repo.get(build.task_id)
    if not is_rater_task_kind(task.kind) or task.kind not in DATASET_KIND_FOR_TASK:
        raise InvalidInput(f"tasks of kind {task.kind!r} do not make datasets")
    if build.min_agreement is not None and task.kind != "ranking":
        raise InvalidInput("min_agreement applies to ranking tasks only")
    if build.min_gold_accuracy is not None and task.kind != "ranking":
        raise InvalidInput("min_gold_accuracy applies to ranking tasks (they have gold items)")
    items = repo.items(task.id)
    by_id = {i.id: i for i in items}
    submitted = [a for a in repo.assignments(task.id) if a.status == "submitted" and a.result]
    consenting = {
        uid
        for uid in {a.rater_id for a in submitted}
        if (user := session.get(User, uid)) is not None and user.use_for_training
    }
    submitted = [a for a in submitted if a.rater_id in consenting]
    if build.min_gold_accuracy is not None:
        keep = set()
        for rater in {a.rater_id for a in submitted}:
            gold = [
                (a.result["ranks"], by_id[a.item_id].gold or [])
                for a in submitted
                if a.rater_id == rater and by_id[a.item_id].is_gold and a.result
            ]
            accuracy = gold_accuracy(gold)
            if accuracy is not None and accuracy >= build.min_gold_accuracy:
                keep.add(rater)
        submitted = [a for a in submitted if a.rater_id in keep]
    given: dict[str, list[RaterAssignment]] = {}
    for a in submitted:
        given.setdefault(a.item_id, []).append(a)
    if task.kind == "ranking":
        examples = _ranking_examples(task.id, items, given, build)
    else:
        examples = _demonstration_examples(task.id, items, given)
    return finish_snapshot(
        session,
        home,
        DATASET_KIND_FOR_TASK[task.kind],
        examples,
        test_fraction=build.test_fraction,
        near_duplicate_threshold=build.near_duplicate_threshold,
        per_user_cap=None,
        filters=build.filters(),
        source=f"rater_task:{task.id}",
        name=build.name or task.title,
        created_by=created_by,
    )
