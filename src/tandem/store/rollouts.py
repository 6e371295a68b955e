"""Rollouts: per profile (or the site default), the production version, its candidates, and an
append-only history of every change.

    repo = RolloutRepo(session)
    rollout = repo.set_production(None, "smollm2-135m-instruct", actor_id, "first serve")
    repo.add_candidate(rollout.id, "my-dpo-v1", 0.1, True, actor_id, "A/B 10%")
    repo.events(rollout.id)     # newest first: who, when, why, gate results

Rollouts are admin resources (the routes check the admin), not user-owned rows. Every write
commits before it returns, so an acknowledged change survives a crash; history rows are never
updated or deleted (a profile's deletion takes its rollout and history with it).
"""

from __future__ import annotations

# The repository has a `list` method, which hides the builtin in annotations below it.
import builtins
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Float, ForeignKey, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from tandem.core.errors import Conflict, InvalidInput, NotFound
from tandem.store.models import Base, Profile, new_id, utcnow

EVENT_KINDS = (
    "set_production",
    "add_candidate",
    "update_candidate",
    "remove_candidate",
    "promote",
    "rollback",
    "gate_check",
)
# The kinds that move production; rollback walks them back (see `previous_production`).
PRODUCTION_MOVES = ("set_production", "promote", "rollback")
MAX_CANDIDATES = 8
SITE_DEFAULT = "default"  # the `scope` of the rollout for chats without a profile


class RolloutRow(Base):
    __tablename__ = "rollouts"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    # NULL = the site default. `scope` is "default" or the profile id: unique on every database
    # (a NULL profile_id would not be, NULLs never collide in a unique index).
    scope: Mapped[str] = mapped_column(String(32), unique=True)
    profile_id: Mapped[str | None] = mapped_column(
        String(32), ForeignKey("profiles.id", ondelete="CASCADE"), nullable=True
    )
    production_version: Mapped[str] = mapped_column(String(200))
    # Overrides the site-wide `comparison_rate` for this rollout's chats; NULL: use the site's.
    comparison_rate: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class RolloutCandidateRow(Base):
    __tablename__ = "rollout_candidates"
    rollout_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("rollouts.id", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[str] = mapped_column(String(200), primary_key=True)
    traffic_share: Mapped[float] = mapped_column(Float, default=0.0)
    in_comparisons: Mapped[bool] = mapped_column(Boolean, default=False)
    # Assignment walks candidates in this order: a new candidate goes last, so adding one does
    # not move users already assigned to the others.
    added_at: Mapped[datetime] = mapped_column(default=utcnow)


class RolloutEventRow(Base):
    __tablename__ = "rollout_events"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    rollout_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("rollouts.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(20))
    actor_id: Mapped[str | None] = mapped_column(
        String(32), ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
    reason: Mapped[str] = mapped_column(Text, default="")
    version: Mapped[str | None] = mapped_column(String(200), nullable=True)
    from_version: Mapped[str | None] = mapped_column(String(200), nullable=True)
    to_version: Mapped[str | None] = mapped_column(String(200), nullable=True)
    gates: Mapped[dict[str, Any] | None] = mapped_column(nullable=True)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


@dataclass(frozen=True)
class Candidate:
    version: str
    traffic_share: float
    in_comparisons: bool


def _check_share(share: float) -> float:
    if not 0.0 <= share <= 1.0:
        raise InvalidInput("traffic_share must be between 0 and 1")
    return float(share)


class RolloutRepo:
    def __init__(self, session: Session) -> None:
        self.session = session

    # -- reading ------------------------------------------------------------------------------

    def get(self, rollout_id: str) -> RolloutRow:
        row = self.session.get(RolloutRow, rollout_id)
        if row is None:
            raise NotFound("rollout", rollout_id)
        return row

    def for_profile(self, profile_id: str | None) -> RolloutRow | None:
        """The rollout of a profile (None: the site default's), or None when it has none."""
        scope = profile_id or SITE_DEFAULT
        return self.session.scalars(select(RolloutRow).where(RolloutRow.scope == scope)).first()

    def get_for_profile(self, profile_id: str | None) -> RolloutRow:
        row = self.for_profile(profile_id)
        if row is None:
            raise NotFound("rollout", profile_id or SITE_DEFAULT)
        return row

    def list(self) -> list[RolloutRow]:
        return list(self.session.scalars(select(RolloutRow).order_by(RolloutRow.created_at)))

    def served_versions(self) -> set[str]:
        """Every version some rollout serves: each production and each candidate."""
        production = self.session.scalars(select(RolloutRow.production_version))
        candidates = self.session.scalars(select(RolloutCandidateRow.version))
        return {*production, *candidates}

    def candidates(self, rollout_id: str) -> builtins.list[Candidate]:
        rows = self.session.scalars(
            select(RolloutCandidateRow)
            .where(RolloutCandidateRow.rollout_id == rollout_id)
            .order_by(RolloutCandidateRow.added_at, RolloutCandidateRow.version)
        )
        return [Candidate(r.version, r.traffic_share, r.in_comparisons) for r in rows]

    def candidate(self, rollout_id: str, version: str) -> Candidate:
        row = self.session.get(RolloutCandidateRow, (rollout_id, version))
        if row is None:
            raise NotFound("candidate", version)
        return Candidate(row.version, row.traffic_share, row.in_comparisons)

    def events(self, rollout_id: str, limit: int = 200) -> builtins.list[RolloutEventRow]:
        """History, newest first."""
        return list(
            self.session.scalars(
                select(RolloutEventRow)
                .where(RolloutEventRow.rollout_id == rollout_id)
                .order_by(RolloutEventRow.at.desc(), RolloutEventRow.id)
                .limit(limit)
            )
        )

    def latest_gate_check(self, rollout_id: str, version: str) -> RolloutEventRow | None:
        """The newest event carrying a gate report for `version` (a check or a promotion)."""
        return self.session.scalars(
            select(RolloutEventRow)
            .where(
                RolloutEventRow.rollout_id == rollout_id,
                RolloutEventRow.version == version,
                RolloutEventRow.gates.is_not(None),
            )
            .order_by(RolloutEventRow.at.desc(), RolloutEventRow.id)
            .limit(1)
        ).first()

    def joined_at(self, rollout_id: str, version: str) -> datetime | None:
        """When `version` last became a candidate of the rollout (None: never)."""
        return self.session.scalars(
            select(RolloutEventRow.at)
            .where(
                RolloutEventRow.rollout_id == rollout_id,
                RolloutEventRow.version == version,
                RolloutEventRow.kind == "add_candidate",
            )
            .order_by(RolloutEventRow.at.desc())
            .limit(1)
        ).first()

    def previous_production(self, rollout_id: str) -> str | None:
        """Where a rollback goes: replaying history, each move of production pushes the version
        it replaced and each rollback pops one, so repeated rollbacks walk further back."""
        moves = self.session.scalars(
            select(RolloutEventRow)
            .where(
                RolloutEventRow.rollout_id == rollout_id,
                RolloutEventRow.kind.in_(PRODUCTION_MOVES),
            )
            .order_by(RolloutEventRow.at, RolloutEventRow.id)
        )
        stack: list[str] = []
        for event in moves:
            if event.kind == "rollback":
                if stack:
                    stack.pop()
            elif event.from_version and event.from_version != event.to_version:
                stack.append(event.from_version)
        return stack[-1] if stack else None

    # -- writing (each commits before returning) ------------------------------------------------

    def _event(self, rollout: RolloutRow, kind: str, actor_id: str | None, reason: str, **fields):
        if kind not in EVENT_KINDS:
            raise ValueError(f"unknown rollout event kind {kind!r}")
        event = RolloutEventRow(
            id=new_id(),
            rollout_id=rollout.id,
            kind=kind,
            actor_id=actor_id,
            reason=reason,
            at=utcnow(),
            **fields,
        )
        self.session.add(event)
        return event

    def set_production(
        self,
        profile_id: str | None,
        version: str,
        actor_id: str | None,
        reason: str = "",
        *,
        kind: str = "set_production",
        gates: dict[str, Any] | None = None,
        details: dict[str, Any] | None = None,
    ) -> RolloutRow:
        """Make `version` production for the profile (creating its rollout). A candidate of
        that version stops being one: it is production now."""
        if profile_id is not None and self.session.get(Profile, profile_id) is None:
            raise NotFound("profile", profile_id)
        rollout = self.for_profile(profile_id)
        before = rollout.production_version if rollout else None
        if rollout is None:
            rollout = RolloutRow(
                id=new_id(),
                scope=profile_id or SITE_DEFAULT,
                profile_id=profile_id,
                production_version=version,
                created_at=utcnow(),
            )
            self.session.add(rollout)
            self.session.flush()
        stale = self.session.get(RolloutCandidateRow, (rollout.id, version))
        if stale is not None:
            self.session.delete(stale)
        rollout.production_version, rollout.updated_at = version, utcnow()
        self._event(
            rollout,
            kind,
            actor_id,
            reason,
            version=version,
            from_version=before,
            to_version=version,
            gates=gates,
            details=details or {},
        )
        self.session.commit()
        return rollout

    def set_comparison_rate(
        self, rollout_id: str, rate: float | None, actor_id: str | None, reason: str = ""
    ) -> RolloutRow:
        if rate is not None and not 0.0 <= rate <= 1.0:
            raise InvalidInput("comparison_rate must be between 0 and 1")
        rollout = self.get(rollout_id)
        rollout.comparison_rate, rollout.updated_at = rate, utcnow()
        self._event(
            rollout, "update_candidate", actor_id, reason, details={"comparison_rate": rate}
        )
        self.session.commit()
        return rollout

    def _check_total(self, rollout_id: str, version: str, share: float) -> None:
        others = sum(c.traffic_share for c in self.candidates(rollout_id) if c.version != version)
        if others + share > 1.0 + 1e-9:
            raise InvalidInput(
                f"traffic shares would add up to {others + share:.3f}; they must not exceed 1"
            )

    def add_candidate(
        self,
        rollout_id: str,
        version: str,
        traffic_share: float,
        in_comparisons: bool,
        actor_id: str | None,
        reason: str = "",
    ) -> Candidate:
        rollout = self.get(rollout_id)
        share = _check_share(traffic_share)
        if version == rollout.production_version:
            raise Conflict(f"{version} is this rollout's production version")
        if self.session.get(RolloutCandidateRow, (rollout_id, version)) is not None:
            raise Conflict(f"{version} is already a candidate")
        if len(self.candidates(rollout_id)) >= MAX_CANDIDATES:
            raise Conflict(f"at most {MAX_CANDIDATES} candidates per rollout")
        self._check_total(rollout_id, version, share)
        self.session.add(
            RolloutCandidateRow(
                rollout_id=rollout_id,
                version=version,
                traffic_share=share,
                in_comparisons=in_comparisons,
                added_at=utcnow(),
            )
        )
        details = {"traffic_share": share, "in_comparisons": in_comparisons}
        self._event(rollout, "add_candidate", actor_id, reason, version=version, details=details)
        rollout.updated_at = utcnow()
        self.session.commit()
        return Candidate(version, share, in_comparisons)

    def update_candidate(
        self,
        rollout_id: str,
        version: str,
        actor_id: str | None,
        reason: str = "",
        *,
        traffic_share: float | None = None,
        in_comparisons: bool | None = None,
    ) -> Candidate:
        rollout = self.get(rollout_id)
        row = self.session.get(RolloutCandidateRow, (rollout_id, version))
        if row is None:
            raise NotFound("candidate", version)
        details: dict[str, Any] = {}
        if traffic_share is not None:
            share = _check_share(traffic_share)
            self._check_total(rollout_id, version, share)
            details["traffic_share"] = row.traffic_share = share
        if in_comparisons is not None:
            details["in_comparisons"] = row.in_comparisons = in_comparisons
        self._event(rollout, "update_candidate", actor_id, reason, version=version, details=details)
        rollout.updated_at = utcnow()
        self.session.commit()
        return Candidate(row.version, row.traffic_share, row.in_comparisons)

    def remove_candidate(
        self, rollout_id: str, version: str, actor_id: str | None, reason: str = ""
    ) -> None:
        rollout = self.get(rollout_id)
        row = self.session.get(RolloutCandidateRow, (rollout_id, version))
        if row is None:
            raise NotFound("candidate", version)
        self.session.delete(row)
        self._event(rollout, "remove_candidate", actor_id, reason, version=version)
        rollout.updated_at = utcnow()
        self.session.commit()

    def record_gate_check(
        self, rollout_id: str, version: str, gates: dict[str, Any], actor_id: str | None
    ) -> RolloutEventRow:
        rollout = self.get(rollout_id)
        event = self._event(
            rollout,
            "gate_check",
            actor_id,
            "",
            version=version,
            from_version=rollout.production_version,
            gates=gates,
        )
        self.session.commit()
        return event
