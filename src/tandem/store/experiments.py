"""Behavior experiments: an admin's variants of a default behavior, met blind in comparisons.

    repo = ExperimentRepo(session)
    exp = repo.create("Length", "Concise wins", None, 0.5, [
        VariantSpec("concise", "system_prompt", prompt_addition="Answer in two sentences."),
        VariantSpec("detailed", "system_prompt", prompt_addition="Explain in detail."),
    ], actor_id)
    repo.start(exp.id)                          # Conflict if another runs for the same profile
    repo.running_for(profile_id)                # what a chat of that profile meets, or None
    repo.record_comparison(comparison_id, exp.id, variant_a_id, variant_b_id)
    repo.votes(exp.id)                          # every voted comparison, for the statistics

An experiment belongs to a profile, or to the site default (profile_id NULL), which a chat meets
when its own profile runs none. At most one experiment runs per profile (and one for the site
default). Experiments are admin resources (the routes check the admin). Which variant wrote each
side of a comparison is its own row, beside the comparison: the comparison itself is unchanged.
"""

from __future__ import annotations

# The repository has a `list` method, which hides the builtin in annotations below it.
import builtins
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Float, ForeignKey, Integer, String, Text, select
from sqlalchemy.orm import Mapped, Session, aliased, mapped_column

from tandem.core.errors import Conflict, InvalidInput, NotFound
from tandem.core.signals import VARIANT_KINDS
from tandem.store.models import Base, Comparison, Conversation, Profile, new_id, utcnow

MIN_VARIANTS, MAX_VARIANTS = 2, 8
MAX_PROMPT_ADDITION = 4000


class ExperimentRow(Base):
    __tablename__ = "behavior_experiments"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    # NULL: the site default's experiment.
    profile_id: Mapped[str | None] = mapped_column(
        String(32), ForeignKey("profiles.id", ondelete="CASCADE"), nullable=True, index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    hypothesis: Mapped[str] = mapped_column(Text, default="")
    # The share of a chat's turns that become a comparison between two variants.
    comparison_rate: Mapped[float] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(10), default="draft", index=True)
    created_by: Mapped[str | None] = mapped_column(
        String(32), ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(nullable=True)
    stopped_at: Mapped[datetime | None] = mapped_column(nullable=True)


class VariantRow(Base):
    __tablename__ = "experiment_variants"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    experiment_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("behavior_experiments.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(20))
    # system_prompt: appended to the system message (tandem.chat.render.add_to_system).
    prompt_addition: Mapped[str] = mapped_column(Text, default="")
    # model_version: the version that answers instead of the turn's own.
    model_version: Mapped[str | None] = mapped_column(String(200), nullable=True)


class ExperimentComparisonRow(Base):
    __tablename__ = "experiment_comparisons"
    comparison_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("comparisons.id", ondelete="CASCADE"), primary_key=True
    )
    experiment_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("behavior_experiments.id", ondelete="CASCADE"), index=True
    )
    variant_a_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("experiment_variants.id", ondelete="CASCADE")
    )
    variant_b_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("experiment_variants.id", ondelete="CASCADE")
    )


@dataclass(frozen=True)
class VariantSpec:
    name: str
    kind: str
    prompt_addition: str = ""
    model_version: str | None = None


@dataclass(frozen=True)
class ExperimentVote:
    """One voted comparison of an experiment: who voted, which variant was on each side, the
    verdict, and the segment it was cast in (the chat's profile; None: no profile)."""

    comparison_id: str
    user_id: str
    variant_a: str
    variant_b: str
    verdict: str
    segment: str | None
    segment_name: str | None


def _checked_variants(variants: builtins.list[VariantSpec]) -> builtins.list[VariantSpec]:
    if not MIN_VARIANTS <= len(variants) <= MAX_VARIANTS:
        raise InvalidInput(f"an experiment needs {MIN_VARIANTS} to {MAX_VARIANTS} variants")
    names = [v.name.strip() for v in variants]
    if any(not n for n in names) or len(set(names)) != len(names):
        raise InvalidInput("every variant needs a name, and no two the same")
    out = []
    for v, name in zip(variants, names, strict=True):
        if v.kind not in VARIANT_KINDS:
            raise InvalidInput(f"a variant's kind must be one of {VARIANT_KINDS}")
        if v.kind == "system_prompt":
            text = v.prompt_addition.strip()
            if not text or len(text) > MAX_PROMPT_ADDITION:
                raise InvalidInput(
                    f"variant {name!r}: a system prompt addition of 1 to "
                    f"{MAX_PROMPT_ADDITION} characters"
                )
            out.append(VariantSpec(name, v.kind, prompt_addition=text))
        else:
            if not v.model_version:
                raise InvalidInput(f"variant {name!r}: a model_version variant names a version")
            out.append(VariantSpec(name, v.kind, model_version=v.model_version))
    return out


class ExperimentRepo:
    def __init__(self, session: Session) -> None:
        self.session = session

    # -- writing ------------------------------------------------------------------------------

    def create(
        self,
        name: str,
        hypothesis: str,
        profile_id: str | None,
        comparison_rate: float,
        variants: builtins.list[VariantSpec],
        actor_id: str | None,
    ) -> ExperimentRow:
        """A draft experiment; nothing changes for users until it is started."""
        if not name.strip():
            raise InvalidInput("an experiment needs a name")
        if not 0.0 < comparison_rate <= 1.0:
            raise InvalidInput("comparison_rate must be above 0 and at most 1")
        if profile_id is not None and self.session.get(Profile, profile_id) is None:
            raise NotFound("profile", profile_id)
        checked = _checked_variants(variants)
        row = ExperimentRow(
            name=name.strip(),
            hypothesis=hypothesis.strip(),
            profile_id=profile_id,
            comparison_rate=float(comparison_rate),
            status="draft",
            created_by=actor_id,
        )
        self.session.add(row)
        self.session.flush()
        for position, v in enumerate(checked):
            self.session.add(
                VariantRow(
                    experiment_id=row.id,
                    position=position,
                    name=v.name,
                    kind=v.kind,
                    prompt_addition=v.prompt_addition,
                    model_version=v.model_version,
                )
            )
        self.session.commit()
        return row

    def start(self, experiment_id: str) -> ExperimentRow:
        """Running from now on (a stopped one resumes); Conflict while another experiment runs
        for the same profile. Starting a running experiment changes nothing."""
        row = self.get(experiment_id)
        if row.status == "running":
            return row
        other = self.running_for(row.profile_id)
        if other is not None:
            raise Conflict(f"experiment {other.name!r} is already running here: stop it first")
        row.status = "running"
        row.started_at = row.started_at or utcnow()
        row.stopped_at = None
        self.session.commit()
        return row

    def stop(self, experiment_id: str) -> ExperimentRow:
        """No more comparisons from it; its votes and result stay."""
        row = self.get(experiment_id)
        if row.status == "draft":
            raise Conflict("this experiment has not started")
        if row.status == "running":
            row.status = "stopped"
            row.stopped_at = utcnow()
            self.session.commit()
        return row

    def record_comparison(
        self, comparison_id: str, experiment_id: str, variant_a_id: str, variant_b_id: str
    ) -> None:
        self.session.add(
            ExperimentComparisonRow(
                comparison_id=comparison_id,
                experiment_id=experiment_id,
                variant_a_id=variant_a_id,
                variant_b_id=variant_b_id,
            )
        )
        self.session.commit()

    # -- reading ------------------------------------------------------------------------------

    def get(self, experiment_id: str) -> ExperimentRow:
        row = self.session.get(ExperimentRow, experiment_id)
        if row is None:
            raise NotFound("experiment", experiment_id)
        return row

    def list(self) -> builtins.list[ExperimentRow]:
        stmt = select(ExperimentRow).order_by(ExperimentRow.created_at.desc())
        return builtins.list(self.session.scalars(stmt))

    def variants(self, experiment_id: str) -> builtins.list[VariantRow]:
        stmt = (
            select(VariantRow)
            .where(VariantRow.experiment_id == experiment_id)
            .order_by(VariantRow.position)
        )
        return builtins.list(self.session.scalars(stmt))

    def running_for(self, profile_id: str | None) -> ExperimentRow | None:
        """The experiment running for this profile exactly (None: the site default's)."""
        where = (
            ExperimentRow.profile_id.is_(None)
            if profile_id is None
            else ExperimentRow.profile_id == profile_id
        )
        stmt = select(ExperimentRow).where(where, ExperimentRow.status == "running")
        return self.session.scalars(stmt.limit(1)).first()

    def applicable(self, profile_id: str | None) -> ExperimentRow | None:
        """What a chat with this profile meets: its profile's running experiment, else the
        site default's."""
        own = self.running_for(profile_id) if profile_id is not None else None
        return own or self.running_for(None)

    def comparison_variants(self, comparison_id: str) -> ExperimentComparisonRow | None:
        return self.session.get(ExperimentComparisonRow, comparison_id)

    def variant_names(self, comparison_id: str) -> tuple[str, str] | None:
        """The names of the variants that wrote sides A and B, or None outside experiments."""
        row = self.comparison_variants(comparison_id)
        if row is None:
            return None
        a = self.session.get(VariantRow, row.variant_a_id)
        b = self.session.get(VariantRow, row.variant_b_id)
        return (a.name if a else "?", b.name if b else "?")

    def comparison_count(self, experiment_id: str) -> int:
        stmt = select(ExperimentComparisonRow.comparison_id).where(
            ExperimentComparisonRow.experiment_id == experiment_id
        )
        return len(builtins.list(self.session.scalars(stmt)))

    def votes(self, experiment_id: str) -> builtins.list[ExperimentVote]:
        """Every voted comparison of the experiment, oldest first; comparisons in chats their
        users deleted are left out, as they are from every other signal count."""
        va, vb = aliased(VariantRow), aliased(VariantRow)
        stmt = (
            select(
                Comparison.id,
                Comparison.user_id,
                va.name,
                vb.name,
                Comparison.verdict,
                Conversation.profile_id,
                Profile.name,
            )
            .join(ExperimentComparisonRow, ExperimentComparisonRow.comparison_id == Comparison.id)
            .join(va, va.id == ExperimentComparisonRow.variant_a_id)
            .join(vb, vb.id == ExperimentComparisonRow.variant_b_id)
            .join(Conversation, Conversation.id == Comparison.conversation_id)
            .outerjoin(Profile, Profile.id == Conversation.profile_id)
            .where(
                ExperimentComparisonRow.experiment_id == experiment_id,
                Comparison.verdict.is_not(None),
                Conversation.deleted_at.is_(None),
            )
            .order_by(Comparison.voted_at, Comparison.id)
        )
        return [
            ExperimentVote(cid, user, a, b, str(verdict), segment, name)
            for cid, user, a, b, verdict, segment, name in self.session.execute(stmt)
        ]
