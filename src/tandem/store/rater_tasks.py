"""Rater tasks: an admin's task (title, guideline, kind) with items, some gold; raters' queues of
assignments, one per (item, rater), each holding what that rater submitted.

    repo = RaterTaskRepo(session)
    task = repo.create_task(admin_id, TaskSpec("Rank answers", "…", "ranking", 2), items)
    queue = repo.claim(rater_id)          # hands out work, then lists the rater's assignments
    repo.submit(rater_id, assignment_id, {"ranks": [1, 2]})

Assignment is first come, first served when a rater opens their queue: an ordinary item goes to
`raters_per_item` raters, a gold item (its answer is known) to every rater, so each rater's gold
accuracy can be measured. A rater's queue is in an order of its own (`queue_key`, a hash of
rater and item), so gold items sit among the others and nothing tells them apart. A rater only
ever reads their own assignments: another rater's id answers NotFound, like a missing one.
Submitted results are never changed (a snapshot may have read them); an admin's adjudication is
stored beside them on the item.
"""

from __future__ import annotations

import builtins
import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text, UniqueConstraint, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from tandem.core.errors import Conflict, NotFound
from tandem.store.models import Base, User, new_id, utcnow


class RaterTask(Base):
    __tablename__ = "rater_tasks"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    title: Mapped[str] = mapped_column(String(200))
    guideline: Mapped[str] = mapped_column(Text, default="")  # markdown, shown beside each item
    kind: Mapped[str] = mapped_column(String(20))  # tandem.core.signals.RATER_TASK_KINDS
    raters_per_item: Mapped[int] = mapped_column(Integer, default=2)
    # The version that answers in a demonstration (None: the catalog's default).
    model: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # Spec labels: the behavior spec's behavior ids the raters judge, in order; else [].
    behaviors: Mapped[list[Any]] = mapped_column(default=list)
    created_by: Mapped[str | None] = mapped_column(
        String(32), ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class RaterItem(Base):
    __tablename__ = "rater_items"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    task_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("rater_tasks.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer)
    prompt: Mapped[list[Any]] = mapped_column()  # [{"role", "content"}, ...]
    # Ranking: [{"text", "model"}, ...] (model None when the admin wrote it); else [].
    answers: Mapped[list[Any]] = mapped_column(default=list)
    is_gold: Mapped[bool] = mapped_column(Boolean, default=False)
    # The known answer: a ranking's ranks, or a spec label's labels (one per task behavior).
    gold: Mapped[list[Any] | None] = mapped_column(nullable=True)
    # Red team: the rule raters try to make the model break.
    rule: Mapped[str | None] = mapped_column(Text, nullable=True)
    # An admin's adjudication of a disagreement ({"ranks" or "labels": [...], "note": ...}).
    resolution: Mapped[dict[str, Any] | None] = mapped_column(nullable=True)
    resolved_by: Mapped[str | None] = mapped_column(
        String(32), ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
    resolved_at: Mapped[datetime | None] = mapped_column(nullable=True)


class RaterAssignment(Base):
    __tablename__ = "rater_assignments"
    __table_args__ = (
        UniqueConstraint("item_id", "rater_id", name="uq_rater_assignments_item_rater"),
    )
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    item_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("rater_items.id", ondelete="CASCADE")
    )
    task_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("rater_tasks.id", ondelete="CASCADE"), index=True
    )
    rater_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    queue_key: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(12), default="pending")  # ASSIGNMENT_STATUSES
    # Demonstrations: every model turn generated for this rater ({"model", "text", ...}).
    generations: Mapped[list[Any]] = mapped_column(default=list)
    result: Mapped[dict[str, Any] | None] = mapped_column(nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(nullable=True)  # first opened
    submitted_at: Mapped[datetime | None] = mapped_column(nullable=True)


@dataclass(frozen=True)
class TaskSpec:
    title: str
    guideline: str
    kind: str
    raters_per_item: int = 2
    model: str | None = None
    behaviors: tuple[str, ...] = ()


@dataclass(frozen=True)
class ItemSpec:
    prompt: list[dict[str, Any]]
    answers: list[dict[str, Any]]
    is_gold: bool = False
    gold: list[Any] | None = None
    rule: str | None = None


@dataclass(frozen=True)
class Work:
    """One assignment with its item and task: what a rater's page and the reports read."""

    assignment: RaterAssignment
    item: RaterItem
    task: RaterTask


def queue_key(rater_id: str, item_id: str) -> str:
    return hashlib.sha256(f"{rater_id}:{item_id}".encode()).hexdigest()[:32]


class RaterTaskRepo:
    def __init__(self, session: Session) -> None:
        self.session = session

    # -- admin ----------------------------------------------------------------------------------

    def create_task(
        self, created_by: str | None, spec: TaskSpec, items: builtins.list[ItemSpec]
    ) -> RaterTask:
        task = RaterTask(
            title=spec.title,
            guideline=spec.guideline,
            kind=spec.kind,
            raters_per_item=spec.raters_per_item,
            model=spec.model,
            behaviors=list(spec.behaviors),
            created_by=created_by,
        )
        self.session.add(task)
        self.session.flush()
        self.session.add_all(
            RaterItem(
                task_id=task.id,
                position=n,
                prompt=item.prompt,
                answers=item.answers,
                is_gold=item.is_gold,
                gold=item.gold,
                rule=item.rule,
            )
            for n, item in enumerate(items)
        )
        self.session.commit()
        return task

    def list(self) -> builtins.list[RaterTask]:
        return builtins.list(
            self.session.scalars(
                select(RaterTask).order_by(RaterTask.created_at.desc(), RaterTask.id)
            )
        )

    def get(self, task_id: str) -> RaterTask:
        task = self.session.get(RaterTask, task_id)
        if task is None:
            raise NotFound("task", task_id)
        return task

    def items(self, task_id: str) -> builtins.list[RaterItem]:
        return builtins.list(
            self.session.scalars(
                select(RaterItem).where(RaterItem.task_id == task_id).order_by(RaterItem.position)
            )
        )

    def assignments(self, task_id: str) -> builtins.list[RaterAssignment]:
        return builtins.list(
            self.session.scalars(
                select(RaterAssignment)
                .where(RaterAssignment.task_id == task_id)
                .order_by(RaterAssignment.created_at, RaterAssignment.id)
            )
        )

    def progress(self, task_id: str) -> dict[str, int]:
        """Assignments handed out and submitted, and the task's item count."""
        rows = self.session.execute(
            select(RaterAssignment.status, func.count())
            .where(RaterAssignment.task_id == task_id)
            .group_by(RaterAssignment.status)
        )
        by_status = {status: n for status, n in rows}
        n_items = self.session.scalar(
            select(func.count()).select_from(RaterItem).where(RaterItem.task_id == task_id)
        )
        return {
            "items": int(n_items or 0),
            "assigned": sum(by_status.values()),
            "submitted": by_status.get("submitted", 0),
        }

    def rater_emails(self, task_id: str) -> dict[str, str]:
        rows = self.session.execute(
            select(User.id, User.email)
            .join(RaterAssignment, RaterAssignment.rater_id == User.id)
            .where(RaterAssignment.task_id == task_id)
            .distinct()
        )
        return {uid: email for uid, email in rows}

    def findings(self) -> builtins.list[Work]:
        """Every submitted red-team assignment that found a break, oldest first (the regression
        suite's red-team cases)."""
        rows = self.session.execute(
            select(RaterAssignment, RaterItem, RaterTask)
            .join(RaterItem, RaterItem.id == RaterAssignment.item_id)
            .join(RaterTask, RaterTask.id == RaterAssignment.task_id)
            .where(RaterTask.kind == "red_team", RaterAssignment.status == "submitted")
            .order_by(RaterAssignment.submitted_at, RaterAssignment.id)
        )
        return [Work(a, i, t) for a, i, t in rows if (a.result or {}).get("finding")]

    def get_item(self, task_id: str, item_id: str) -> RaterItem:
        item = self.session.get(RaterItem, item_id)
        if item is None or item.task_id != task_id:
            raise NotFound("item", item_id)
        return item

    def resolve(
        self, admin_id: str, task_id: str, item_id: str, resolution: dict[str, Any]
    ) -> RaterItem:
        """Adjudicate an item (again: a later resolution replaces an earlier one)."""
        item = self.get_item(task_id, item_id)
        item.resolution = resolution
        item.resolved_by = admin_id
        item.resolved_at = utcnow()
        self.session.commit()
        return item

    # -- raters ---------------------------------------------------------------------------------

    def claim(self, rater_id: str) -> builtins.list[Work]:
        """Hand the rater what is left for them in every task, then list their queue.
        Two raters claiming at once may take an item one past raters_per_item; the unique
        (item, rater) key keeps a rater from getting one item twice."""
        mine = set(
            self.session.scalars(
                select(RaterAssignment.item_id).where(RaterAssignment.rater_id == rater_id)
            )
        )
        counts = dict(
            self.session.execute(
                select(RaterAssignment.item_id, func.count()).group_by(RaterAssignment.item_id)
            ).all()
        )
        added = False
        for task in self.list():
            for item in self.items(task.id):
                if item.id in mine:
                    continue
                if item.is_gold or counts.get(item.id, 0) < task.raters_per_item:
                    self.session.add(
                        RaterAssignment(
                            item_id=item.id,
                            task_id=task.id,
                            rater_id=rater_id,
                            queue_key=queue_key(rater_id, item.id),
                        )
                    )
                    added = True
        if added:
            try:
                self.session.commit()
            except IntegrityError:  # the same rater's queue opened twice at once
                self.session.rollback()
        return self.queue(rater_id)

    def queue(self, rater_id: str) -> builtins.list[Work]:
        rows = self.session.execute(
            select(RaterAssignment, RaterItem, RaterTask)
            .join(RaterItem, RaterItem.id == RaterAssignment.item_id)
            .join(RaterTask, RaterTask.id == RaterAssignment.task_id)
            .where(RaterAssignment.rater_id == rater_id)
            .order_by(RaterTask.created_at, RaterTask.id, RaterAssignment.queue_key)
        )
        return [Work(a, i, t) for a, i, t in rows]

    def work(self, rater_id: str, assignment_id: str) -> Work:
        """The rater's own assignment; anyone else's answers NotFound, like a missing id."""
        a = self.session.get(RaterAssignment, assignment_id)
        if a is None or a.rater_id != rater_id:
            raise NotFound("assignment", assignment_id)
        item = self.session.get(RaterItem, a.item_id)
        task = self.session.get(RaterTask, a.task_id)
        assert item is not None and task is not None  # foreign keys
        return Work(a, item, task)

    def open(self, rater_id: str, assignment_id: str) -> Work:
        """The assignment, its clock started the first time it is opened (speed)."""
        work = self.work(rater_id, assignment_id)
        if work.assignment.started_at is None:
            work.assignment.started_at = utcnow()
            self.session.commit()
        return work

    def add_generation(self, rater_id: str, assignment_id: str, record: dict[str, Any]) -> None:
        a = self.work(rater_id, assignment_id).assignment
        if a.status == "submitted":
            raise Conflict("this item is already submitted")
        a.generations = [*a.generations, record]  # a new list: JSON columns track assignment
        self.session.commit()

    def submit(self, rater_id: str, assignment_id: str, result: dict[str, Any]) -> Work:
        work = self.work(rater_id, assignment_id)
        a = work.assignment
        if a.status == "submitted":
            raise Conflict("this item is already submitted")
        now = utcnow()
        a.status, a.result, a.submitted_at = "submitted", result, now
        a.started_at = a.started_at or now
        self.session.commit()
        return work
