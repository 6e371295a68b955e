"""Every query `tandem.data` needs: the signals a dataset is built from, and the snapshot records.

    repo = DatasetRepo(session)
    answers = repo.rated_answers(SignalFilters(model_version="smollm2-135m-instruct"))
    repo.record_snapshot(snapshot_row, {"feedback": ["3f…"], "generation": ["9a…"]})

Rules every signal query enforces, not optional: only users with `use_for_training` on; only a
user's current rating (not superseded, not withdrawn); nothing from a deleted conversation.
Snapshots are admin resources (the route checks the admin), not user-owned rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import ForeignKey, String, Text, select
from sqlalchemy.orm import Mapped, Session, aliased, mapped_column

from tandem.core.errors import NotFound
from tandem.store.models import (
    Base,
    Comparison,
    Conversation,
    Feedback,
    Improvement,
    StoredGeneration,
    StoredMessage,
    User,
    utcnow,
)


class DatasetSnapshotRow(Base):
    """A snapshot directory under $TANDEM_HOME/datasets/, recorded once, never updated."""

    __tablename__ = "dataset_snapshots"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(200), default="")
    hash: Mapped[str] = mapped_column(String(80), index=True, unique=True)
    path: Mapped[str] = mapped_column(Text)
    # "signals" for a build, "import:<file>" for external data.
    source: Mapped[str] = mapped_column(String(500))
    filters: Mapped[dict[str, Any]] = mapped_column(default=dict)
    counts: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str | None] = mapped_column(
        String(32), ForeignKey("users.id", ondelete="SET NULL")
    )


class DatasetSnapshotSignal(Base):
    """One signal id a snapshot read. No foreign key to the signal: the snapshot outlives it."""

    __tablename__ = "dataset_snapshot_signals"
    __table_args__ = (sa.Index("ix_dataset_snapshot_signals_signal", "signal_kind", "signal_id"),)
    snapshot_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("dataset_snapshots.id", ondelete="CASCADE"), primary_key=True
    )
    signal_kind: Mapped[str] = mapped_column(String(20), primary_key=True)
    signal_id: Mapped[str] = mapped_column(String(200), primary_key=True)


@dataclass(frozen=True)
class SignalFilters:
    """Which signals a build reads. `since`/`until` bound the signal's own time (rating, vote or
    edit); `reasons` keeps only thumbs-down ratings carrying at least one of them."""

    since: datetime | None = None
    until: datetime | None = None
    profile_id: str | None = None
    model_version: str | None = None
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True)
class Answer:
    """A generation as a dataset sees it: what the model saw and what it said."""

    generation_id: str
    model_version: str
    input_messages: list[dict[str, Any]]
    output_text: str


@dataclass(frozen=True)
class RatedAnswer:
    feedback_id: str
    user_id: str
    rating: str
    reasons: list[str]
    at: datetime
    answer: Answer


@dataclass(frozen=True)
class VotedPair:
    comparison_id: str
    user_id: str
    verdict: str
    at: datetime
    a: Answer
    b: Answer


@dataclass(frozen=True)
class ImprovedAnswer:
    improvement_id: str
    user_id: str
    text: str
    at: datetime
    original: Answer


@dataclass(frozen=True)
class SnapshotRecord:
    """What `record_snapshot` stores; `signals` maps a signal kind to its ids."""

    id: str
    kind: str
    hash: str
    path: str
    source: str
    name: str = ""
    filters: Mapping[str, Any] = field(default_factory=dict)
    counts: Mapping[str, Any] = field(default_factory=dict)
    created_by: str | None = None


def _answer(gen: StoredGeneration) -> Answer:
    return Answer(gen.id, gen.model_version, list(gen.input_messages or []), gen.output_text)


class DatasetRepo:
    def __init__(self, session: Session) -> None:
        self.session = session

    # -- signals -------------------------------------------------------------------------

    def _generation_conditions(self, gen: Any, filters: SignalFilters) -> list[Any]:
        """Conditions on one generation: not in a deleted conversation, and the filters."""
        in_deleted = (
            select(StoredMessage.generation_id)
            .join(Conversation, Conversation.id == StoredMessage.conversation_id)
            .where(Conversation.deleted_at.is_not(None), StoredMessage.generation_id.is_not(None))
        )
        conds = [gen.id.not_in(in_deleted)]
        if filters.profile_id:
            conds.append(
                gen.id.in_(
                    select(StoredMessage.generation_id)
                    .join(Conversation, Conversation.id == StoredMessage.conversation_id)
                    .where(Conversation.profile_id == filters.profile_id)
                )
            )
        return conds

    @staticmethod
    def _time_conditions(column: Any, filters: SignalFilters) -> list[Any]:
        conds = []
        if filters.since is not None:
            conds.append(column >= filters.since)
        if filters.until is not None:
            conds.append(column < filters.until)
        return conds

    def rated_answers(self, filters: SignalFilters = SignalFilters()) -> list[RatedAnswer]:
        """Each consenting user's current thumbs up/down, with the answer it rates."""
        stmt = (
            select(Feedback, StoredGeneration)
            .join(StoredGeneration, StoredGeneration.id == Feedback.generation_id)
            .join(User, User.id == Feedback.user_id)
            .where(
                User.use_for_training.is_(True),
                Feedback.superseded_at.is_(None),
                Feedback.withdrawn_at.is_(None),
                *self._generation_conditions(StoredGeneration, filters),
                *self._time_conditions(Feedback.created_at, filters),
            )
            .order_by(Feedback.created_at, Feedback.id)
        )
        if filters.model_version:
            stmt = stmt.where(StoredGeneration.model_version == filters.model_version)
        out = []
        for fb, gen in self.session.execute(stmt).tuples():
            wanted = set(filters.reasons)
            if wanted and fb.rating == "down" and not wanted & set(fb.reasons or ()):
                continue
            out.append(
                RatedAnswer(
                    fb.id,
                    fb.user_id,
                    fb.rating,
                    list(fb.reasons or []),
                    fb.created_at,
                    _answer(gen),
                )
            )
        return out

    def voted_pairs(self, filters: SignalFilters = SignalFilters()) -> list[VotedPair]:
        """Each consenting user's voted comparisons in live conversations, with both answers.
        `model_version` keeps a pair when either answer came from that version."""
        msg_a, msg_b = aliased(StoredMessage), aliased(StoredMessage)
        gen_a, gen_b = aliased(StoredGeneration), aliased(StoredGeneration)
        stmt = (
            select(Comparison, gen_a, gen_b)
            .join(User, User.id == Comparison.user_id)
            .join(Conversation, Conversation.id == Comparison.conversation_id)
            .join(msg_a, msg_a.id == Comparison.message_a_id)
            .join(msg_b, msg_b.id == Comparison.message_b_id)
            .join(gen_a, gen_a.id == msg_a.generation_id)
            .join(gen_b, gen_b.id == msg_b.generation_id)
            .where(
                User.use_for_training.is_(True),
                Conversation.deleted_at.is_(None),
                Comparison.verdict.is_not(None),
                *self._time_conditions(Comparison.voted_at, filters),
            )
            .order_by(Comparison.voted_at, Comparison.id)
        )
        if filters.profile_id:
            stmt = stmt.where(Conversation.profile_id == filters.profile_id)
        if filters.model_version:
            stmt = stmt.where(
                sa.or_(
                    gen_a.model_version == filters.model_version,
                    gen_b.model_version == filters.model_version,
                )
            )
        return [
            VotedPair(
                c.id, c.user_id, c.verdict or "", c.voted_at or c.created_at, _answer(a), _answer(b)
            )
            for c, a, b in self.session.execute(stmt).tuples()
        ]

    def improved_answers(self, filters: SignalFilters = SignalFilters()) -> list[ImprovedAnswer]:
        """Each consenting user's standing edits of an answer, with the original answer."""
        stmt = (
            select(Improvement, StoredGeneration)
            .join(StoredGeneration, StoredGeneration.id == Improvement.original_generation_id)
            .join(User, User.id == Improvement.user_id)
            .join(Conversation, Conversation.id == Improvement.conversation_id)
            .where(
                User.use_for_training.is_(True),
                Conversation.deleted_at.is_(None),
                Improvement.withdrawn_at.is_(None),
                *self._time_conditions(Improvement.created_at, filters),
            )
            .order_by(Improvement.created_at, Improvement.id)
        )
        if filters.profile_id:
            stmt = stmt.where(Conversation.profile_id == filters.profile_id)
        if filters.model_version:
            stmt = stmt.where(StoredGeneration.model_version == filters.model_version)
        return [
            ImprovedAnswer(imp.id, imp.user_id, imp.text, imp.created_at, _answer(gen))
            for imp, gen in self.session.execute(stmt).tuples()
        ]

    # -- snapshot records ----------------------------------------------------------------

    def record_snapshot(
        self, record: SnapshotRecord, signals: Mapping[str, Sequence[str]]
    ) -> DatasetSnapshotRow:
        """Record a snapshot and the signal ids it read (once: a second call returns the row)."""
        existing = self.session.get(DatasetSnapshotRow, record.id)
        if existing is not None:
            return existing
        row = DatasetSnapshotRow(
            id=record.id,
            kind=record.kind,
            name=record.name,
            hash=record.hash,
            path=record.path,
            source=record.source,
            filters=dict(record.filters),
            counts=dict(record.counts),
            created_by=record.created_by,
        )
        self.session.add(row)
        self.session.flush()
        self.session.add_all(
            DatasetSnapshotSignal(snapshot_id=record.id, signal_kind=kind, signal_id=ident)
            for kind, ids in sorted(signals.items())
            for ident in sorted(set(ids))
        )
        self.session.commit()
        return row

    def list_snapshots(self, limit: int = 200) -> list[DatasetSnapshotRow]:
        return list(
            self.session.scalars(
                select(DatasetSnapshotRow)
                .order_by(DatasetSnapshotRow.created_at.desc(), DatasetSnapshotRow.id)
                .limit(limit)
            )
        )

    def get_snapshot(self, snapshot_id: str) -> DatasetSnapshotRow:
        row = self.session.get(DatasetSnapshotRow, snapshot_id)
        if row is None:
            raise NotFound("dataset snapshot", snapshot_id)
        return row

    def snapshot_signals(self, snapshot_id: str) -> dict[str, list[str]]:
        self.get_snapshot(snapshot_id)
        out: dict[str, list[str]] = {}
        for kind, ident in self.session.execute(
            select(DatasetSnapshotSignal.signal_kind, DatasetSnapshotSignal.signal_id)
            .where(DatasetSnapshotSignal.snapshot_id == snapshot_id)
            .order_by(DatasetSnapshotSignal.signal_kind, DatasetSnapshotSignal.signal_id)
        ).tuples():
            out.setdefault(kind, []).append(ident)
        return out

    def snapshots_using(self, signal_kind: str, signal_id: str) -> list[str]:
        """Ids of the snapshots that read this signal."""
        return list(
            self.session.scalars(
                select(DatasetSnapshotSignal.snapshot_id)
                .where(
                    DatasetSnapshotSignal.signal_kind == signal_kind,
                    DatasetSnapshotSignal.signal_id == signal_id,
                )
                .order_by(DatasetSnapshotSignal.snapshot_id)
            )
        )
