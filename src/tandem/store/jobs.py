"""Jobs: training and eval runs that outlive the request that started them.

    repo = JobRepo(session)
    job = repo.create("train", {"method": "dpo", ...}, title="dpo on ab12cd", created_by=admin_id)
    claimed = repo.claim_next(owner="host:1234:ab12")   # the worker takes the oldest queued job
    repo.progress(job.id, step=3, total_steps=10, points=[[3, 0.69]])
    repo.finish(job.id, "succeeded", result={"version": "my-dpo"})

A job's whole state is its row: the worker (tandem.jobs.worker) and the process doing the work
(tandem.jobs.child) both write it, so the console shows the same thing whichever server process
answers, and a restart finds every job where it was. Jobs are admin resources, like rollouts.
Every write commits before it returns.
"""

from __future__ import annotations

# The repository has a `list` method, which hides the builtin in annotations below it.
import builtins
from datetime import datetime, timedelta
from typing import Any, Literal, get_args

from sqlalchemy import Boolean, Float, ForeignKey, Integer, String, Text, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from tandem.core.errors import Conflict, NotFound
from tandem.store.models import Base, new_id, utcnow

JobKind = Literal["train", "eval"]
JOB_KINDS: tuple[JobKind, ...] = get_args(JobKind)
JobStatus = Literal["queued", "running", "succeeded", "failed", "cancelled", "interrupted"]
JOB_STATUSES: tuple[JobStatus, ...] = get_args(JobStatus)
ACTIVE: tuple[JobStatus, ...] = ("queued", "running")
# A job that stopped before it finished can run again: training resumes from its newest
# checkpoint (tandem.train.run.latest_checkpoint), an eval starts its unfinished versions over.
RESUMABLE: tuple[JobStatus, ...] = ("interrupted", "failed", "cancelled")
MAX_POINTS = 2000  # loss points kept per job: a curve, not a log


class JobRow(Base):
    __tablename__ = "jobs"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(10))
    title: Mapped[str] = mapped_column(String(300), default="")
    spec: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(12), default="queued", index=True)
    created_by: Mapped[str | None] = mapped_column(
        String(32), ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
    # Who runs it: "host:pid:worker" of the server process's worker, and the handle its runner
    # gave (a pid for local processes). A restart compares them with what is alive.
    owner: Mapped[str | None] = mapped_column(String(200), nullable=True)
    handle: Mapped[str | None] = mapped_column(String(200), nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(nullable=True)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    phase: Mapped[str] = mapped_column(String(200), default="")
    step: Mapped[int] = mapped_column(Integer, default=0)
    total_steps: Mapped[int] = mapped_column(Integer, default=0)
    fraction: Mapped[float] = mapped_column(Float, default=0.0)
    points: Mapped[list[Any]] = mapped_column(default=list)  # [[step, loss], ...]
    result: Mapped[dict[str, Any]] = mapped_column(default=dict)
    error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    started_at: Mapped[datetime | None] = mapped_column(nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(nullable=True)


class JobRepo:
    def __init__(self, session: Session) -> None:
        self.session = session

    def create(
        self, kind: JobKind, spec: dict[str, Any], *, title: str, created_by: str | None
    ) -> JobRow:
        row = JobRow(kind=kind, spec=spec, title=title[:300], created_by=created_by)
        self.session.add(row)
        self.session.commit()
        return row

    def get(self, job_id: str) -> JobRow:
        row = self.session.get(JobRow, job_id)
        if row is None:
            raise NotFound(f"job {job_id} not found")
        self.session.refresh(row)  # another process writes progress
        return row

    def list(self, limit: int = 100) -> builtins.list[JobRow]:
        query = select(JobRow).order_by(JobRow.created_at.desc()).limit(limit)
        return builtins.list(self.session.scalars(query))

    def active_titles(self, kind: JobKind) -> builtins.list[JobRow]:
        query = select(JobRow).where(JobRow.kind == kind, JobRow.status.in_(ACTIVE))
        return builtins.list(self.session.scalars(query))

    def claim_next(self, owner: str) -> JobRow | None:
        """Take the oldest queued job for `owner`. The conditional UPDATE is the lock: of two
        workers that read the same row, one changes it and the other sees 0 rows changed."""
        for job_id in self.session.scalars(
            select(JobRow.id).where(JobRow.status == "queued").order_by(JobRow.created_at)
        ):
            now = utcnow()
            claimed = self.session.execute(
                update(JobRow)
                .where(JobRow.id == job_id, JobRow.status == "queued")
                .values(
                    status="running",
                    owner=owner,
                    handle=None,
                    heartbeat_at=now,
                    started_at=now,
                    finished_at=None,
                    error="",
                    attempts=JobRow.attempts + 1,
                )
            )
            self.session.commit()
            if claimed.rowcount == 1:  # type: ignore[attr-defined]  # a CursorResult for UPDATE
                return self.get(job_id)
        return None

    def _set(self, job_id: str, **values: Any) -> None:
        self.session.execute(update(JobRow).where(JobRow.id == job_id).values(**values))
        self.session.commit()

    def started(self, job_id: str, handle: str) -> None:
        self._set(job_id, handle=handle, phase="starting")

    def heartbeat(self, job_ids: builtins.list[str]) -> None:
        if job_ids:
            self.session.execute(
                update(JobRow).where(JobRow.id.in_(job_ids)).values(heartbeat_at=utcnow())
            )
            self.session.commit()

    def progress(
        self,
        job_id: str,
        *,
        phase: str | None = None,
        step: int | None = None,
        total_steps: int | None = None,
        points: builtins.list[builtins.list[float]] | None = None,
    ) -> None:
        row = self.get(job_id)
        values: dict[str, Any] = {}
        if phase is not None:
            values["phase"] = phase[:200]
        if step is not None:
            values["step"] = step
        if total_steps is not None:
            values["total_steps"] = total_steps
        if points:
            # A resumed run logs steps it already logged before the checkpoint: keep one per step.
            by_step = {int(p[0]): p for p in [*(row.points or []), *points]}
            values["points"] = [by_step[s] for s in sorted(by_step)][-MAX_POINTS:]
        steps = values.get("total_steps", row.total_steps)
        if steps:
            values["fraction"] = min(1.0, values.get("step", row.step) / steps)
        if values:
            self._set(job_id, **values)

    def set_result(self, job_id: str, **result: Any) -> None:
        row = self.get(job_id)
        self._set(job_id, result={**(row.result or {}), **result})

    def finish(self, job_id: str, status: JobStatus, *, error: str = "") -> JobRow:
        """The end of an attempt. Only a running job finishes: a job the console already marked
        (cancelled, interrupted) keeps that status when its process reports late."""
        values: dict[str, Any] = {"status": status, "finished_at": utcnow(), "error": error[-4000:]}
        if status == "succeeded":
            values["fraction"] = 1.0
        self.session.execute(
            update(JobRow).where(JobRow.id == job_id, JobRow.status == "running").values(**values)
        )
        self.session.commit()
        return self.get(job_id)

    def request_cancel(self, job_id: str) -> JobRow:
        row = self.get(job_id)
        if row.status not in ACTIVE:
            raise Conflict(f"job {job_id} is {row.status}; only a queued or running job cancels")
        if row.status == "queued":
            self._set(job_id, status="cancelled", finished_at=utcnow(), cancel_requested=True)
        else:
            self._set(job_id, cancel_requested=True, phase="cancelling")
        return self.get(job_id)

    def resume(self, job_id: str) -> JobRow:
        row = self.get(job_id)
        if row.status not in RESUMABLE:
            raise Conflict(f"job {job_id} is {row.status}; only {', '.join(RESUMABLE)} resume")
        self._set(
            job_id, status="queued", cancel_requested=False, phase="queued to resume", error=""
        )
        return self.get(job_id)

    def interrupt_stale(self, owner_alive: Any, stale_after: timedelta) -> builtins.list[str]:
        """Mark running jobs whose worker is gone as interrupted: `owner_alive(owner)` says
        False, or (for owners it cannot judge, e.g. another host) no heartbeat for
        `stale_after`. Returns their ids."""
        cutoff = utcnow() - stale_after
        gone = []
        for row in self.session.scalars(select(JobRow).where(JobRow.status == "running")):
            verdict = owner_alive(row.owner)
            beat = row.heartbeat_at
            if verdict is False or (verdict is None and (beat is None or beat < cutoff)):
                gone.append(row.id)
        for job_id in gone:
            self.interrupt(job_id, "the server running this job stopped")
        return gone

    def interrupt(self, job_id: str, why: str) -> None:
        self.session.execute(
            update(JobRow)
            .where(JobRow.id == job_id, JobRow.status == "running")
            .values(status="interrupted", finished_at=utcnow(), error=why, phase="interrupted")
        )
        self.session.commit()
