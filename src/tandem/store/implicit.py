"""Implicit signals: what a person did with an answer without rating it, each pointing at the
generation it judges (the kinds are declared in tandem.core.signals).

    repo = ImplicitSignalRepo(session)
    repo.record(user_id, generation_id, "regenerate", message_id=answer_id)   # the chat does this
    row, created = repo.record_client(user_id, message_id, "copy")          # a client event
    repo.kinds_by_generation()            # {generation id: {"copy", ...}}, consenting users only
    repo.implicit_answers(SignalFilters(), kinds=IMPLICIT_NEGATIVE_KINDS)   # weak KTO negatives

Append-only, like every signal: nothing here updates a row. Recording is for everyone; what
reads them for datasets, the admin log and the agreement report reads consenting users only
(`use_for_training`), nothing from a deleted conversation, as the explicit signals do.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ForeignKey, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from tandem.core.errors import InvalidInput, NotFound
from tandem.core.signals import CLIENT_IMPLICIT_KINDS, IMPLICIT_KINDS
from tandem.store.datasets import Answer, DatasetRepo, SignalFilters
from tandem.store.models import (
    Base,
    Conversation,
    StoredGeneration,
    StoredMessage,
    User,
    new_id,
    utcnow,
)

# A client event repeated within this window (a double click on Copy, a retried request) is
# the same signal: answered with the row already stored.
CLIENT_SIGNAL_WINDOW = timedelta(minutes=10)


class ImplicitSignal(Base):
    __tablename__ = "implicit_signals"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    generation_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("generation_records.id", ondelete="CASCADE"), index=True
    )
    # The assistant message showing the judged answer (None for a /v1 generation).
    message_id: Mapped[str | None] = mapped_column(
        String(32), ForeignKey("messages.id", ondelete="SET NULL"), nullable=True
    )
    kind: Mapped[str] = mapped_column(String(24))
    # What else the signal knows: the message that corrected or replaced the answer, the
    # classifier's matched rule.
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


@dataclass(frozen=True)
class ImplicitAnswer:
    """An implicit signal as a dataset sees it: who, which kind, when, and the answer."""

    signal_id: str
    user_id: str
    kind: str
    at: datetime
    answer: Answer


def _check_kind(kind: str, allowed: Sequence[str] = IMPLICIT_KINDS) -> None:
    if kind not in allowed:
        raise InvalidInput(f"kind must be one of {list(allowed)}")


class ImplicitSignalRepo:
    def __init__(self, session: Session) -> None:
        self.session = session

    def record(
        self,
        user_id: str,
        generation_id: str,
        kind: str,
        *,
        message_id: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> ImplicitSignal:
        """Store a signal the server observed. The caller has checked that the generation is
        the user's (the chat service, which just read it under the user's id)."""
        _check_kind(kind)
        row = ImplicitSignal(
            id=new_id(),
            user_id=user_id,
            generation_id=generation_id,
            message_id=message_id,
            kind=kind,
            detail=dict(detail or {}),
            created_at=utcnow(),
        )
        self.session.add(row)
        self.session.commit()
        return row

    def record_client(
        self, user_id: str, message_id: str, kind: str
    ) -> tuple[ImplicitSignal, bool]:
        """A signal a client reports on assistant message `message_id` of the user's own live
        conversation: `(row, True)` when stored, `(the earlier row, False)` when the same user
        reported the same kind on the same message within CLIENT_SIGNAL_WINDOW."""
        _check_kind(kind, CLIENT_IMPLICIT_KINDS)
        found = self.session.execute(
            select(StoredMessage.role, StoredMessage.generation_id, StoredGeneration.user_id)
            .join(Conversation, Conversation.id == StoredMessage.conversation_id)
            .outerjoin(StoredGeneration, StoredGeneration.id == StoredMessage.generation_id)
            .where(
                StoredMessage.id == message_id,
                Conversation.owner_id == user_id,
                Conversation.deleted_at.is_(None),
            )
        ).first()
        if found is None:
            raise NotFound("message", message_id)
        role, generation_id, generation_owner = found
        if role != "assistant" or generation_id is None:
            raise InvalidInput("only answers generated by a model carry signals")
        if generation_owner != user_id:
            raise NotFound("message", message_id)
        earlier = self.session.scalar(
            select(ImplicitSignal)
            .where(
                ImplicitSignal.user_id == user_id,
                ImplicitSignal.message_id == message_id,
                ImplicitSignal.kind == kind,
                ImplicitSignal.created_at >= utcnow() - CLIENT_SIGNAL_WINDOW,
            )
            .order_by(ImplicitSignal.created_at.desc())
            .limit(1)
        )
        if earlier is not None:
            return earlier, False
        return self.record(user_id, generation_id, kind, message_id=message_id), True

    def for_message(self, user_id: str, message_id: str) -> list[ImplicitSignal]:
        """The user's signals on one message, oldest first."""
        return list(
            self.session.scalars(
                select(ImplicitSignal)
                .where(ImplicitSignal.user_id == user_id, ImplicitSignal.message_id == message_id)
                .order_by(ImplicitSignal.created_at, ImplicitSignal.id)
            )
        )

    # -- reading, under the dataset rules ------------------------------------------------

    def _readable(self, filters: SignalFilters) -> Any:
        """Signals of consenting users on answers outside deleted conversations."""
        datasets = DatasetRepo(self.session)
        stmt = (
            select(ImplicitSignal, StoredGeneration)
            .join(StoredGeneration, StoredGeneration.id == ImplicitSignal.generation_id)
            .join(User, User.id == ImplicitSignal.user_id)
            .where(
                User.use_for_training.is_(True),
                *datasets._generation_conditions(StoredGeneration, filters),
                *datasets._time_conditions(ImplicitSignal.created_at, filters),
            )
            .order_by(ImplicitSignal.created_at, ImplicitSignal.id)
        )
        if filters.model_version:
            stmt = stmt.where(StoredGeneration.model_version == filters.model_version)
        return stmt

    def kinds_by_generation(self, filters: SignalFilters = SignalFilters()) -> dict[str, set[str]]:
        """Every readable generation that carries implicit signals, with their kinds."""
        out: dict[str, set[str]] = {}
        for signal, _gen in self.session.execute(self._readable(filters)).tuples():
            out.setdefault(signal.generation_id, set()).add(signal.kind)
        return out

    def implicit_answers(
        self, filters: SignalFilters = SignalFilters(), kinds: Sequence[str] = IMPLICIT_KINDS
    ) -> list[ImplicitAnswer]:
        """Readable signals of `kinds`, oldest first, each with the answer it judges."""
        stmt = self._readable(filters).where(ImplicitSignal.kind.in_(list(kinds)))
        return [
            ImplicitAnswer(
                s.id,
                s.user_id,
                s.kind,
                s.created_at,
                Answer(g.id, g.model_version, list(g.input_messages or []), g.output_text),
            )
            for s, g in self.session.execute(stmt).tuples()
        ]
