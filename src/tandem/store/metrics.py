"""Read-only aggregates over every user's signals, for `tandem eval online`.

These are operator-level totals (counts per model version or profile, never rows), read by the
CLI only; no route exposes them, so they take no acting user id. Signals in conversations the
user deleted are left out, as they are everywhere else.

    thumbs_counts(session, by="model_version")  # [ThumbsCount("v1", up=7, total=9), ...]
    comparison_votes(session)                   # [Vote("v1", "v2", "a"), ...]
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session, aliased

from tandem.store.models import (
    Comparison,
    Conversation,
    Feedback,
    Profile,
    StoredGeneration,
    StoredMessage,
)


@dataclass(frozen=True)
class ThumbsCount:
    key: str | None  # model version id, or profile name (None: no profile)
    up: int
    total: int


@dataclass(frozen=True)
class Vote:
    model_a: str
    model_b: str
    verdict: str


def thumbs_counts(
    session: Session,
    by: Literal["model_version", "profile"] = "model_version",
    since: datetime | None = None,
) -> list[ThumbsCount]:
    """Current (not superseded, not withdrawn) thumbs per model version or per profile; with
    `since`, only those given from then on."""
    if by not in ("model_version", "profile"):
        raise ValueError(f"by must be model_version or profile, not {by!r}")
    current = and_(Feedback.superseded_at.is_(None), Feedback.withdrawn_at.is_(None))
    # The answer's message leads to its conversation (and profile); an outer join keeps ratings
    # made on a bare generation, which have no message.
    stmt = (
        select(Feedback.id, Feedback.rating, StoredGeneration.model_version, Profile.name)
        .join(StoredGeneration, StoredGeneration.id == Feedback.generation_id)
        .outerjoin(StoredMessage, StoredMessage.id == Feedback.message_id)
        .outerjoin(Conversation, Conversation.id == StoredMessage.conversation_id)
        .outerjoin(Profile, Profile.id == Conversation.profile_id)
        .where(current, Conversation.deleted_at.is_(None))
    )
    if since is not None:
        stmt = stmt.where(Feedback.created_at >= since)
    rows = stmt.subquery()
    key = rows.c.model_version if by == "model_version" else rows.c.name
    grouped = (
        select(
            key,
            func.sum(case((rows.c.rating == "up", 1), else_=0)),
            func.count(rows.c.id),
        )
        .group_by(key)
        .order_by(key)
    )
    return [ThumbsCount(k, int(up or 0), int(n)) for k, up, n in session.execute(grouped)]


def comparison_votes(session: Session, since: datetime | None = None) -> list[Vote]:
    """Every cast verdict with the model version behind each side, oldest first; with `since`,
    only the votes cast from then on."""
    msg_a, msg_b = aliased(StoredMessage), aliased(StoredMessage)
    gen_a, gen_b = aliased(StoredGeneration), aliased(StoredGeneration)
    stmt = (
        select(gen_a.model_version, gen_b.model_version, Comparison.verdict)
        .join(Conversation, Conversation.id == Comparison.conversation_id)
        .join(msg_a, msg_a.id == Comparison.message_a_id)
        .join(msg_b, msg_b.id == Comparison.message_b_id)
        .join(gen_a, gen_a.id == msg_a.generation_id)
        .join(gen_b, gen_b.id == msg_b.generation_id)
        .where(Comparison.verdict.is_not(None), Conversation.deleted_at.is_(None))
        .order_by(Comparison.voted_at, Comparison.id)
    )
    if since is not None:
        stmt = stmt.where(Comparison.voted_at >= since)
    # The query keeps cast votes only; the `is not None` says so to the type checker.
    return [Vote(a, b, v) for a, b, v in session.execute(stmt) if v is not None]
