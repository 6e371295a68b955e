"""Improved answers: the user rewrites an assistant answer, which becomes a new sibling
message (same parent, no generation) and the conversation's current message, and a row in
`improvements` pairs the rewrite with the generation record it corrects.

The rows are signals that dataset builders read (`list_for_datasets`), so they are never
updated except to stamp `withdrawn_at`.

    improvement, message = ImprovementRepo(session).create(user_id, answer_id, "Better text")
"""

from __future__ import annotations

# The repository has a `list` method, which hides the builtin in annotations below it.
import builtins
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from tandem.core.errors import InvalidInput, NotFound
from tandem.core.messages import Message, Part
from tandem.store.conversations import ConversationRepo
from tandem.store.models import Improvement, StoredMessage, utcnow


def improved_from(message: StoredMessage) -> str | None:
    """The id of the answer this message rewrites, or None for any other message."""
    for part in message.parts or ():
        source = (part.get("data") or {}).get("improved_from")
        if source:
            return str(source)
    return None


class ImprovementRepo:
    def __init__(self, session: Session) -> None:
        self.session = session

    def create(self, user_id: str, message_id: str, text: str) -> tuple[Improvement, StoredMessage]:
        """Rewrite assistant message `message_id` as `text`. Rewriting a rewrite corrects the
        same model answer again: the new row replaces (withdraws) the earlier one."""
        if not text.strip():
            raise InvalidInput("an improved answer needs some text")
        convs = ConversationRepo(self.session)
        target = convs.get_message(user_id, message_id)
        if target.role != "assistant":
            raise InvalidInput("only an assistant message can be improved")
        original, previous = target, None
        source = improved_from(target)
        if source is not None:
            original = convs.get_message(user_id, source)
            previous = self.session.scalar(
                select(Improvement).where(
                    Improvement.improved_message_id == target.id,
                    Improvement.user_id == user_id,
                    Improvement.withdrawn_at.is_(None),
                )
            )
        if original.generation_id is None:
            raise InvalidInput("only an answer a model wrote can be improved")

        now = utcnow()
        part = Part("text", text, {"improved_from": original.id})
        message = StoredMessage(
            conversation_id=original.conversation_id,
            parent_id=original.parent_id,
            role="assistant",
            parts=Message("assistant", (part,)).to_dict()["parts"],
            generation_id=None,
            search_text=text,
            created_at=now,
        )
        self.session.add(message)
        self.session.flush()
        row = Improvement(
            user_id=user_id,
            conversation_id=original.conversation_id,
            original_message_id=original.id,
            original_generation_id=original.generation_id,
            improved_message_id=message.id,
            text=text,
            created_at=now,
        )
        self.session.add(row)
        if previous is not None:
            previous.withdrawn_at = now
        conv = convs.get(user_id, original.conversation_id)
        conv.current_message_id = message.id
        conv.updated_at = now
        # One commit: the message, the signal and the new current branch land together.
        self.session.commit()
        return row, message

    def get(self, user_id: str, improvement_id: str) -> Improvement:
        row = self.session.scalar(
            select(Improvement).where(
                Improvement.id == improvement_id, Improvement.user_id == user_id
            )
        )
        if row is None:
            raise NotFound("improvement", improvement_id)
        return row

    def list(self, user_id: str, include_withdrawn: bool = False) -> list[Improvement]:
        """The user's improvements, newest first."""
        stmt = select(Improvement).where(Improvement.user_id == user_id)
        if not include_withdrawn:
            stmt = stmt.where(Improvement.withdrawn_at.is_(None))
        return list(
            self.session.scalars(stmt.order_by(Improvement.created_at.desc(), Improvement.id))
        )

    def withdraw(self, user_id: str, improvement_id: str) -> Improvement:
        """Stamp withdrawn_at; the row stays, because a dataset snapshot may have read it."""
        row = self.get(user_id, improvement_id)
        if row.withdrawn_at is not None:
            raise NotFound("active improvement", improvement_id)
        row.withdrawn_at = utcnow()
        self.session.commit()
        return row

    def list_for_datasets(
        self, since: datetime | None = None, until: datetime | None = None
    ) -> builtins.list[Improvement]:
        """Every user's non-withdrawn improvements with since <= created_at < until, oldest
        first. No user filter: dataset builders apply consent (`use_for_training`) themselves."""
        stmt = select(Improvement).where(Improvement.withdrawn_at.is_(None))
        if since is not None:
            stmt = stmt.where(Improvement.created_at >= since)
        if until is not None:
            stmt = stmt.where(Improvement.created_at < until)
        return list(self.session.scalars(stmt.order_by(Improvement.created_at, Improvement.id)))
