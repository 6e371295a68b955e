"""The admin console's signal log: every current thumbs, vote and improved answer, and every
implicit signal (regenerate, stop, copy, edit-and-resend, corrective follow-up), newest first,
each with the generation record(s) it judges.

    page = SignalLog(session).page(SignalQuery(kind="thumbs", reason="too_long"), limit=50)
    page.rows[0].generations[0].rendered_prompt
    more = SignalLog(session).page(query, limit=50, cursor=page.next_cursor)

The log lists what a dataset build may read, under the same rules (store/datasets.py): only
users with `use_for_training` on, only current ratings (not superseded, not withdrawn), cast
votes and standing improvements, nothing from a deleted conversation. Paging is by keyset
(signal time, id), strictly before the cursor, so a signal arriving while an admin pages never
shifts a row onto the next page twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from tandem.core.errors import InvalidInput
from tandem.core.signals import (
    FEEDBACK_REASONS,
    IMPLICIT_KINDS,
    RATINGS,
    SIGNAL_KINDS,
    SignalKind,
)
from tandem.store.implicit import ImplicitSignal
from tandem.store.models import (
    Comparison,
    Conversation,
    Feedback,
    Improvement,
    Profile,
    StoredGeneration,
    StoredMessage,
    User,
)

# (signal time, signal id) of the last row a page showed: the next page starts after it.
Cursor = tuple[datetime, str]


@dataclass(frozen=True)
class JudgedGeneration:
    """The generation record a signal judges: enough to see, and redo, what the model did."""

    id: str
    model_version: str
    engine: str
    sampling: dict[str, Any]
    seed: int | None
    rendered_prompt: str | None
    input_messages: list[dict[str, Any]]
    output_text: str
    tool_calls: list[Any]
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int
    latency_s: float
    created_at: datetime


@dataclass(frozen=True)
class SignalRow:
    """One signal. Thumbs carry `rating`, `reasons`, `comment`; a vote its `verdict` and both
    answers (`generations` = a, b); an improvement the `improved_text`."""

    kind: SignalKind
    id: str
    at: datetime
    user_id: str
    user_email: str
    conversation_id: str | None
    profile_id: str | None
    profile_name: str | None
    generations: tuple[JudgedGeneration, ...]
    rating: str | None = None
    reasons: tuple[str, ...] = ()
    comment: str = ""
    verdict: str | None = None
    improved_text: str | None = None
    # An implicit signal's detail (the correcting message's id and the rule that matched, …).
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SignalQuery:
    """Which signals to list. `kind` None: all kinds (only thumbs when `rating` or `reason` is
    set). `user` is a user id or an email. `since` is inclusive, `until` exclusive; both bound
    the signal's own time (the rating, the vote, the edit)."""

    kind: SignalKind | None = None
    rating: str | None = None
    reason: str | None = None
    model_version: str | None = None
    profile_id: str | None = None
    user: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def kinds(self) -> tuple[SignalKind, ...]:
        """The kinds this query reads; InvalidInput for a combination that reads nothing."""
        if self.rating is not None and self.rating not in RATINGS:
            raise InvalidInput(f"unknown rating {self.rating!r}; allowed: {list(RATINGS)}")
        if self.reason is not None and self.reason not in FEEDBACK_REASONS:
            raise InvalidInput(f"unknown reason {self.reason!r}; allowed: {list(FEEDBACK_REASONS)}")
        thumbs_only = self.rating is not None or self.reason is not None
        if self.kind is not None:
            if thumbs_only and self.kind != "thumbs":
                raise InvalidInput("rating and reason filter thumbs only: drop them or kind")
            return (self.kind,)
        return ("thumbs",) if thumbs_only else SIGNAL_KINDS


@dataclass(frozen=True)
class SignalPage:
    rows: list[SignalRow]
    next_cursor: Cursor | None


def _kind(kind: str) -> SignalKind:
    """A stored kind as the vocabulary's type (the query selected only known kinds)."""
    if kind not in SIGNAL_KINDS:
        raise ValueError(f"unknown signal kind {kind!r}")
    return kind  # narrowed by the check above


def _judged(gen: StoredGeneration) -> JudgedGeneration:
    return JudgedGeneration(
        id=gen.id,
        model_version=gen.model_version,
        engine=gen.backend,
        sampling=dict(gen.sampling or {}),
        seed=gen.seed,
        rendered_prompt=gen.rendered_prompt,
        input_messages=list(gen.input_messages or []),
        output_text=gen.output_text,
        tool_calls=list(gen.tool_calls or []),
        finish_reason=gen.finish_reason,
        prompt_tokens=gen.prompt_tokens,
        completion_tokens=gen.completion_tokens,
        latency_s=gen.latency_s,
        created_at=gen.created_at,
    )


def _conversation_of_generation() -> Any:
    """The conversation a generation was answered in (a /v1 generation has none), correlated
    with the StoredGeneration of the enclosing query."""
    return (
        select(StoredMessage.conversation_id)
        .where(StoredMessage.generation_id == StoredGeneration.id)
        .limit(1)
        .correlate(StoredGeneration)
        .scalar_subquery()
    )


class SignalLog:
    def __init__(self, session: Session) -> None:
        self.session = session

    def page(self, query: SignalQuery, limit: int = 50, cursor: Cursor | None = None) -> SignalPage:
        """Up to `limit` signals, newest first, strictly after `cursor`. Each kind fetches one
        row more than the page; merged, the extra row says whether another page exists."""
        if limit < 1:
            raise InvalidInput("limit must be at least 1")
        fetch = {"thumbs": self._thumbs, "vote": self._votes, "improvement": self._improvements}
        rows: list[SignalRow] = []
        kinds = query.kinds()
        for kind in kinds:
            if kind in fetch:
                rows.extend(fetch[kind](query, limit + 1, cursor))
        implicit = [k for k in kinds if k in IMPLICIT_KINDS]
        if implicit:
            rows.extend(self._implicit(implicit, query, limit + 1, cursor))
        rows.sort(key=lambda r: (r.at, r.id), reverse=True)
        more = len(rows) > limit
        rows = rows[:limit]
        return SignalPage(rows, (rows[-1].at, rows[-1].id) if more else None)

    def filter_choices(self, limit: int = 500) -> tuple[list[str], list[tuple[str, str]]]:
        """What the page's filters offer: the model versions that generated answers, and
        (id, name) of the profiles live conversations use."""
        versions = list(
            self.session.scalars(
                select(StoredGeneration.model_version)
                .distinct()
                .order_by(StoredGeneration.model_version)
                .limit(limit)
            )
        )
        used = select(Conversation.profile_id).where(
            Conversation.deleted_at.is_(None), Conversation.profile_id.is_not(None)
        )
        profiles = [
            (pid, name)
            for pid, name in self.session.execute(
                select(Profile.id, Profile.name)
                .where(Profile.id.in_(used))
                .order_by(Profile.name, Profile.id)
                .limit(limit)
            ).tuples()
        ]
        return versions, profiles

    # -- one query per kind ------------------------------------------------------------------

    @staticmethod
    def _common(stmt: Any, at: Any, ident: Any, query: SignalQuery, cursor: Cursor | None) -> Any:
        """The conditions every kind shares: consent, user, time, cursor, newest first."""
        stmt = stmt.where(User.use_for_training.is_(True))
        if query.user:
            who = query.user.strip()
            stmt = stmt.where(sa.or_(User.id == who, User.email == who.lower()))
        if query.profile_id:
            stmt = stmt.where(Conversation.profile_id == query.profile_id)
        if query.since is not None:
            stmt = stmt.where(at >= query.since)
        if query.until is not None:
            stmt = stmt.where(at < query.until)
        if cursor is not None:
            stmt = stmt.where(sa.or_(at < cursor[0], sa.and_(at == cursor[0], ident < cursor[1])))
        return stmt.order_by(at.desc(), ident.desc())

    def _thumbs(self, query: SignalQuery, limit: int, cursor: Cursor | None) -> list[SignalRow]:
        conversation_of = _conversation_of_generation()
        stmt = (
            select(
                Feedback, StoredGeneration, User.email, Conversation.id, Profile.id, Profile.name
            )
            .join(StoredGeneration, StoredGeneration.id == Feedback.generation_id)
            .join(User, User.id == Feedback.user_id)
            .outerjoin(Conversation, Conversation.id == conversation_of)
            .outerjoin(Profile, Profile.id == Conversation.profile_id)
            .where(
                Feedback.superseded_at.is_(None),
                Feedback.withdrawn_at.is_(None),
                Conversation.deleted_at.is_(None),  # no conversation (a /v1 answer) passes too
            )
        )
        if query.rating:
            stmt = stmt.where(Feedback.rating == query.rating)
        if query.reason:
            # Reasons are a JSON list of names from one vocabulary (no quotes inside a name):
            # its text holds `"name"` exactly when the list does, on SQLite and PostgreSQL.
            stmt = stmt.where(sa.cast(Feedback.reasons, sa.Text).like(f'%"{query.reason}"%'))
        if query.model_version:
            stmt = stmt.where(StoredGeneration.model_version == query.model_version)
        stmt = self._common(stmt, Feedback.created_at, Feedback.id, query, cursor).limit(limit)
        return [
            SignalRow(
                kind="thumbs",
                id=fb.id,
                at=fb.created_at,
                user_id=fb.user_id,
                user_email=email,
                conversation_id=conv_id,
                profile_id=profile_id,
                profile_name=profile_name,
                generations=(_judged(gen),),
                rating=fb.rating,
                reasons=tuple(str(r) for r in fb.reasons or ()),
                comment=fb.comment or "",
            )
            for fb, gen, email, conv_id, profile_id, profile_name in self.session.execute(
                stmt
            ).tuples()
        ]

    def _votes(self, query: SignalQuery, limit: int, cursor: Cursor | None) -> list[SignalRow]:
        msg_a, msg_b = aliased(StoredMessage), aliased(StoredMessage)
        gen_a, gen_b = aliased(StoredGeneration), aliased(StoredGeneration)
        stmt = (
            select(Comparison, gen_a, gen_b, User.email, Profile.id, Profile.name)
            .join(User, User.id == Comparison.user_id)
            .join(Conversation, Conversation.id == Comparison.conversation_id)
            .join(msg_a, msg_a.id == Comparison.message_a_id)
            .join(msg_b, msg_b.id == Comparison.message_b_id)
            .join(gen_a, gen_a.id == msg_a.generation_id)
            .join(gen_b, gen_b.id == msg_b.generation_id)
            .outerjoin(Profile, Profile.id == Conversation.profile_id)
            .where(Comparison.verdict.is_not(None), Conversation.deleted_at.is_(None))
        )
        if query.model_version:
            version = query.model_version
            stmt = stmt.where(
                sa.or_(gen_a.model_version == version, gen_b.model_version == version)
            )
        stmt = self._common(stmt, Comparison.voted_at, Comparison.id, query, cursor).limit(limit)
        return [
            SignalRow(
                kind="vote",
                id=c.id,
                at=c.voted_at or c.created_at,
                user_id=c.user_id,
                user_email=email,
                conversation_id=c.conversation_id,
                profile_id=profile_id,
                profile_name=profile_name,
                generations=(_judged(a), _judged(b)),
                verdict=c.verdict,
            )
            for c, a, b, email, profile_id, profile_name in self.session.execute(stmt).tuples()
        ]

    def _improvements(
        self, query: SignalQuery, limit: int, cursor: Cursor | None
    ) -> list[SignalRow]:
        stmt = (
            select(Improvement, StoredGeneration, User.email, Profile.id, Profile.name)
            .join(StoredGeneration, StoredGeneration.id == Improvement.original_generation_id)
            .join(User, User.id == Improvement.user_id)
            .join(Conversation, Conversation.id == Improvement.conversation_id)
            .outerjoin(Profile, Profile.id == Conversation.profile_id)
            .where(Improvement.withdrawn_at.is_(None), Conversation.deleted_at.is_(None))
        )
        if query.model_version:
            stmt = stmt.where(StoredGeneration.model_version == query.model_version)
        stmt = self._common(stmt, Improvement.created_at, Improvement.id, query, cursor)
        return [
            SignalRow(
                kind="improvement",
                id=imp.id,
                at=imp.created_at,
                user_id=imp.user_id,
                user_email=email,
                conversation_id=imp.conversation_id,
                profile_id=profile_id,
                profile_name=profile_name,
                generations=(_judged(gen),),
                improved_text=imp.text,
            )
            for imp, gen, email, profile_id, profile_name in self.session.execute(
                stmt.limit(limit)
            ).tuples()
        ]

    def _implicit(
        self, kinds: Sequence[str], query: SignalQuery, limit: int, cursor: Cursor | None
    ) -> list[SignalRow]:
        conversation_of = _conversation_of_generation()
        stmt = (
            select(
                ImplicitSignal,
                StoredGeneration,
                User.email,
                Conversation.id,
                Profile.id,
                Profile.name,
            )
            .join(StoredGeneration, StoredGeneration.id == ImplicitSignal.generation_id)
            .join(User, User.id == ImplicitSignal.user_id)
            .outerjoin(Conversation, Conversation.id == conversation_of)
            .outerjoin(Profile, Profile.id == Conversation.profile_id)
            .where(ImplicitSignal.kind.in_(list(kinds)), Conversation.deleted_at.is_(None))
        )
        if query.model_version:
            stmt = stmt.where(StoredGeneration.model_version == query.model_version)
        stmt = self._common(stmt, ImplicitSignal.created_at, ImplicitSignal.id, query, cursor)
        return [
            SignalRow(
                kind=_kind(signal.kind),
                id=signal.id,
                at=signal.created_at,
                user_id=signal.user_id,
                user_email=email,
                conversation_id=conv_id,
                profile_id=profile_id,
                profile_name=profile_name,
                generations=(_judged(gen),),
                detail=dict(signal.detail or {}),
            )
            for signal, gen, email, conv_id, profile_id, profile_name in self.session.execute(
                stmt.limit(limit)
            ).tuples()
        ]
