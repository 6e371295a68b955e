"""Blind side-by-side comparisons: two answers to one turn, then a verdict.

A verdict is cast once (it is a signal a dataset may read); the chosen answer becomes the
conversation's current branch.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from tandem.core.errors import Conflict, InvalidInput, NotFound
from tandem.core.signals import VERDICTS
from tandem.store.conversations import ConversationRepo
from tandem.store.models import Comparison, Conversation, utcnow


class ComparisonRepo:
    def __init__(self, session: Session) -> None:
        self.session = session

    def create(
        self,
        user_id: str,
        conversation_id: str,
        parent_message_id: str,
        message_a_id: str,
        message_b_id: str,
    ) -> Comparison:
        convs = ConversationRepo(self.session)
        conv = convs.get(user_id, conversation_id)
        for mid in (parent_message_id, message_a_id, message_b_id):
            if convs.get_message(user_id, mid).conversation_id != conv.id:
                raise NotFound("message", mid)
        row = Comparison(
            user_id=user_id,
            conversation_id=conv.id,
            parent_message_id=parent_message_id,
            message_a_id=message_a_id,
            message_b_id=message_b_id,
        )
        self.session.add(row)
        self.session.commit()
        return row

    def get(self, user_id: str, comparison_id: str) -> Comparison:
        row = self.session.scalar(
            select(Comparison).where(Comparison.id == comparison_id, Comparison.user_id == user_id)
        )
        if row is None:
            raise NotFound("comparison", comparison_id)
        # A comparison in a deleted conversation is gone too.
        ConversationRepo(self.session).get(user_id, row.conversation_id)
        return row

    def list(
        self, user_id: str, limit: int = 100, conversation_id: str | None = None
    ) -> list[Comparison]:
        """Newest first; `conversation_id` narrows to one conversation (all of its comparisons,
        however old: the chat shows every one that still waits for a vote)."""
        stmt = (
            select(Comparison)
            .join(Conversation, Conversation.id == Comparison.conversation_id)
            .where(Comparison.user_id == user_id, Conversation.deleted_at.is_(None))
        )
        if conversation_id is not None:
            stmt = stmt.where(Comparison.conversation_id == conversation_id)
        return list(self.session.scalars(stmt.order_by(Comparison.created_at.desc()).limit(limit)))

    def vote(self, user_id: str, comparison_id: str, verdict: str) -> Comparison:
        if verdict not in VERDICTS:
            raise InvalidInput(f"verdict must be one of {VERDICTS}")
        row = self.get(user_id, comparison_id)
        if row.verdict is not None:
            raise Conflict("this comparison has already been voted on")
        row.verdict = verdict
        row.voted_at = utcnow()
        self.session.commit()
        # Voting right away: the chosen answer continues the branch; on "both_bad" the turn
        # waits for a new answer. Voting after the chat went on from one answer: the chat stays
        # where it is (the other answer is now an alternative to page to).
        convs = ConversationRepo(self.session)
        conv = convs.get(user_id, row.conversation_id)
        at_comparison = (row.parent_message_id, row.message_a_id, row.message_b_id)
        if conv.current_message_id in at_comparison:
            chosen = {"a": row.message_a_id, "b": row.message_b_id, "tie": row.message_a_id}
            convs.set_current(
                user_id, row.conversation_id, chosen.get(verdict, row.parent_message_id)
            )
        return row
