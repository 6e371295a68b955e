"""Stored eval runs: one row per `tandem eval run`, one item row per graded example.

    repo = EvalRepo(session)
    run = repo.start_run("ifeval", "smollm2-135m-instruct", "onnx", sampling, created_by=None)
    repo.finish_run(run.id, items, summary, wall_seconds=12.3)

Runs are admin resources (the route checks the admin), not user-owned rows. Each answer is also
a generation record owned by the admin that ran it, so datasets and evals see the same record.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Float, ForeignKey, Integer, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from tandem.core.errors import NotFound
from tandem.store.models import Base, new_id, utcnow

RUN_STATUSES = ("running", "finished", "failed")


class EvalRunRow(Base):
    __tablename__ = "eval_runs"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    suite: Mapped[str] = mapped_column(String(100), index=True)
    model_version: Mapped[str] = mapped_column(String(200), index=True)
    backend: Mapped[str] = mapped_column(String(100))
    sampling: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(20), default="running")
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column()
    wall_seconds: Mapped[float | None] = mapped_column(Float)
    n_items: Mapped[int] = mapped_column(Integer, default=0)
    summary: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_by: Mapped[str | None] = mapped_column(
        String(32), ForeignKey("users.id", ondelete="SET NULL")
    )


class EvalItemRow(Base):
    __tablename__ = "eval_items"
    run_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("eval_runs.id", ondelete="CASCADE"), primary_key=True
    )
    example_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    prompt_messages: Mapped[list[Any]] = mapped_column(default=list)
    response: Mapped[str] = mapped_column(Text, default="")
    passed: Mapped[bool] = mapped_column(Boolean)
    scores: Mapped[dict[str, Any]] = mapped_column(default=dict)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # SET NULL: a user's data deletion may remove the record; the verdict stays.
    generation_id: Mapped[str | None] = mapped_column(
        String(32), ForeignKey("generation_records.id", ondelete="SET NULL")
    )


@dataclass(frozen=True)
class EvalItem:
    """One graded answer, as the runner hands it to the repository."""

    example_id: str
    prompt_messages: list[dict[str, Any]]
    response: str
    passed: bool
    scores: dict[str, float] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    generation_id: str | None = None


class EvalRepo:
    def __init__(self, session: Session) -> None:
        self.session = session

    def start_run(
        self,
        suite: str,
        model_version: str,
        backend: str,
        sampling: dict[str, Any],
        created_by: str | None = None,
    ) -> EvalRunRow:
        """Record a run as `running` before generating, so a crash leaves a visible trace."""
        row = EvalRunRow(
            id=new_id(),
            suite=suite,
            model_version=model_version,
            backend=backend,
            sampling=sampling,
            status="running",
            started_at=utcnow(),
            created_by=created_by,
        )
        self.session.add(row)
        self.session.commit()
        return row

    def finish_run(
        self,
        run_id: str,
        items: Sequence[EvalItem],
        summary: dict[str, Any],
        wall_seconds: float,
    ) -> EvalRunRow:
        """Store every item and the summary in one transaction: a run is whole or `running`."""
        run = self.get_run(run_id)
        for item in items:
            self.session.add(
                EvalItemRow(
                    run_id=run_id,
                    example_id=item.example_id,
                    prompt_messages=item.prompt_messages,
                    response=item.response,
                    passed=item.passed,
                    scores=item.scores,
                    details=item.details,
                    generation_id=item.generation_id,
                )
            )
        run.status, run.summary, run.n_items = "finished", summary, len(items)
        run.wall_seconds, run.finished_at = wall_seconds, utcnow()
        self.session.commit()
        return run

    def fail_run(self, run_id: str, error: str) -> None:
        run = self.get_run(run_id)
        run.status, run.finished_at, run.summary = "failed", utcnow(), {"error": error[:2000]}
        self.session.commit()

    def get_run(self, run_id: str) -> EvalRunRow:
        row = self.session.get(EvalRunRow, run_id)
        if row is None:
            raise NotFound("eval run", run_id)
        return row

    def list_runs(self, suite: str | None = None, limit: int = 100) -> list[EvalRunRow]:
        query = select(EvalRunRow).order_by(EvalRunRow.started_at.desc()).limit(limit)
        if suite is not None:
            query = query.where(EvalRunRow.suite == suite)
        return list(self.session.scalars(query))

    def items(self, run_id: str) -> list[EvalItemRow]:
        self.get_run(run_id)
        return list(
            self.session.scalars(
                select(EvalItemRow)
                .where(EvalItemRow.run_id == run_id)
                .order_by(EvalItemRow.example_id)
            )
        )
