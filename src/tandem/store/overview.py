"""The admin console's overview: a few totals across every user, read by `/admin` only.

    console_counts(session)  # ConsoleCounts(users=12, conversations=80, ...)

Operator-level counts, never rows; the page that shows them needs an admin's session.
Deleted conversations are left out, as everywhere else.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from tandem.store.datasets import DatasetSnapshotRow
from tandem.store.evals import EvalRunRow
from tandem.store.models import Comparison, Conversation, Feedback, ModelVersion, User, utcnow
from tandem.store.rollouts import RolloutRow

RECENT = timedelta(days=7)  # the window "feedback, last 7 days" counts


@dataclass(frozen=True)
class ConsoleCounts:
    users: int
    admins: int
    disabled_users: int
    conversations: int
    feedback_recent: int  # thumbs given (each rating, also one later changed) in RECENT
    votes_recent: int  # comparison verdicts cast in RECENT
    snapshots: int
    model_versions: int
    eval_runs: int
    rollouts: int


def _count(session: Session, stmt: Select[Any]) -> int:
    return session.scalar(stmt) or 0


def console_counts(session: Session) -> ConsoleCounts:
    since = utcnow() - RECENT
    n = select(func.count())
    return ConsoleCounts(
        users=_count(session, n.select_from(User)),
        admins=_count(session, n.select_from(User).where(User.is_admin.is_(True))),
        disabled_users=_count(session, n.select_from(User).where(User.is_disabled.is_(True))),
        conversations=_count(
            session, n.select_from(Conversation).where(Conversation.deleted_at.is_(None))
        ),
        feedback_recent=_count(
            session, n.select_from(Feedback).where(Feedback.created_at >= since)
        ),
        votes_recent=_count(session, n.select_from(Comparison).where(Comparison.voted_at >= since)),
        snapshots=_count(session, n.select_from(DatasetSnapshotRow)),
        model_versions=_count(session, n.select_from(ModelVersion)),
        eval_runs=_count(session, n.select_from(EvalRunRow)),
        rollouts=_count(session, n.select_from(RolloutRow)),
    )
