"""The read-only query behind regression suites: current thumbs-down ratings with their answers.

    cases = thumbs_down_cases(session)   # oldest first
    case = thumbs_down_case(session, feedback_id)   # one, or an error saying why not

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

from tandem.core.errors import Conflict, InvalidInput, NotFound
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


def _cases(session: Session, feedback_id: str | None = None) -> list[ThumbsDownCase]:
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
    if feedback_id is not None:
        stmt = stmt.where(Feedback.id == feedback_id)
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


def thumbs_down_cases(session: Session) -> list[ThumbsDownCase]:
    return _cases(session)


def thumbs_down_case(session: Session, feedback_id: str) -> ThumbsDownCase:
    """The one rating `feedback_id` as a case, under the same rules as `thumbs_down_cases`.
    NotFound when there is no such rating (or its conversation was deleted); InvalidInput when
    it is a thumbs-up; Conflict when it was changed or withdrawn, or its author opted out."""
    found = _cases(session, feedback_id)
    if found:
        return found[0]
    row = session.execute(
        select(Feedback, User.use_for_training)
        .join(User, User.id == Feedback.user_id)
        .where(Feedback.id == feedback_id)
    ).first()
    if row is None:
        raise NotFound("feedback", feedback_id)
    feedback, consented = row.tuple()
    if feedback.rating != "down":
        raise InvalidInput("only a thumbs-down can become a regression item")
    if feedback.superseded_at is not None or feedback.withdrawn_at is not None:
        raise Conflict("this rating was changed or withdrawn since: it is no longer a signal")
    if not consented:
        raise Conflict("its author opted out of training use: their signals are not read")
    raise NotFound("feedback", feedback_id)  # in a conversation since deleted
