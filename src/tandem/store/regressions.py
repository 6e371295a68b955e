"""The read-only query behind regression suites: current thumbs-down ratings with their answers.

    cases = thumbs_down_cases(session)   # oldest first

The same consent rules as every signal query (store/datasets.py): only users with
`use_for_training` on, only a user's current rating (not superseded, not withdrawn), and
nothing from a deleted conversation.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tandem.store.models import Conversation, Feedback, StoredGeneration, StoredMessage, User


@dataclass(frozen=True)
class ThumbsDownCase:
    feedback_id: str
    generation_id: str
    model_version: str
    input_messages: list[dict[str, Any]]
    bad_answer: str
    reasons: list[str]
    comment: str
    at: datetime


def thumbs_down_cases(session: Session) -> list[ThumbsDownCase]:
    in_deleted = (
        select(StoredMessage.generation_id)
        .join(Conversation, Conversation.id == StoredMessage.conversation_id)
        .where(Conversation.deleted_at.is_not(None), StoredMessage.generation_id.is_not(None))
    )
    stmt = (
        select(Feedback, StoredGeneration)
        .join(StoredGeneration, StoredGeneration.id == Feedback.generation_id)
        .join(User, User.id == Feedback.user_id)
        .where(
            User.use_for_training.is_(True),
            Feedback.rating == "down",
            Feedback.superseded_at.is_(None),
            Feedback.withdrawn_at.is_(None),
            StoredGeneration.id.not_in(in_deleted),
        )
        .order_by(Feedback.created_at, Feedback.id)
    )
    return [
        ThumbsDownCase(
            feedback_id=fb.id,
            generation_id=gen.id,
            model_version=gen.model_version,
            input_messages=list(gen.input_messages or []),
            bad_answer=gen.output_text,
            reasons=[str(r) for r in fb.reasons or []],
            comment=fb.comment or "",
            at=fb.created_at,
        )
        for fb, gen in session.execute(stmt).tuples()
    ]
