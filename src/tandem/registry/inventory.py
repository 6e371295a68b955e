"""The registry as the admin console shows it: every version with its parent, the data it was
trained on and where it serves; one version's card and lineage; archiving.

    versions = list_versions(session, default_model="smollm2-135m-instruct")  # oldest first
    detail = describe_version(session, "my-dpo-v1")   # NotFound for an unknown id
    archive_version(session, "my-dpo-v1")             # Conflict while it serves

Archived is the registry's `retired` status (`tandem models set-status VERSION retired`): the
files stay, the version keeps its place in the lineage, and `restore_version` makes it a
candidate again. What serves is the rollouts' business, not the status's, so a version a rollout
serves (production or candidate), or the server's default model while no site rollout exists,
is refused: archiving it would label as retired a model people are talking to.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy.orm import Session

from tandem.core.errors import Conflict, NotFound
from tandem.registry.versions import CHAT, set_status
from tandem.store.datasets import DatasetRepo
from tandem.store.model_versions import ModelVersionRepo
from tandem.store.models import ModelVersion
from tandem.store.rollouts import RolloutRepo

ARCHIVED = "retired"

ServingRole = Literal["production", "candidate", "default"]


@dataclass(frozen=True)
class Serving:
    """One place a version answers chats: a rollout's production or candidate, or the server's
    default model (`rollout_id` None) while no site rollout exists."""

    role: ServingRole
    rollout_id: str | None = None
    profile_id: str | None = None  # None: the site default rollout
    traffic_share: float | None = None  # candidates only
    in_comparisons: bool = False

    def describe(self, version: str) -> str:
        where = f"profile {self.profile_id}'s rollout" if self.profile_id else "the site rollout"
        if self.role == "default":
            return f"{version} is the server's default model and no site rollout exists yet"
        if self.role == "production":
            return f"{version} is production in {where}"
        return f"{version} is a candidate in {where}"


@dataclass(frozen=True)
class DatasetRef:
    """The data a version was trained on, as its training run recorded it, and the snapshot's
    own record where one exists (`recorded` False: a file, or a snapshot from elsewhere)."""

    snapshot_id: str | None
    hash: str | None
    kind: str | None
    rows: int | None
    source: str | None
    name: str | None = None
    created_at: datetime | None = None
    recorded: bool = False


@dataclass(frozen=True)
class VersionSummary:
    id: str
    parent_id: str | None
    status: str
    created_at: datetime
    kind: str
    method: str | None
    dataset_ids: list[str]
    datasets: list[DatasetRef]
    final_loss: float | None
    serving: list[Serving]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class VersionDetail(VersionSummary):
    card: str = ""
    formats: dict[str, Any] = field(default_factory=dict)
    base_path: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    ancestors: list[str] = field(default_factory=list)  # parent first, root last
    descendants: list[str] = field(default_factory=list)  # children first, oldest first


def where_served(session: Session, default_model: str | None = None) -> dict[str, list[Serving]]:
    """Every version some rollout serves, with where; `default_model` counts as served by
    default while there is no site rollout (it answers every chat no rollout decides)."""
    repo = RolloutRepo(session)
    out: dict[str, list[Serving]] = {}
    rollouts = repo.list()
    for rollout in rollouts:
        out.setdefault(rollout.production_version, []).append(
            Serving("production", rollout.id, rollout.profile_id)
        )
        for c in repo.candidates(rollout.id):
            out.setdefault(c.version, []).append(
                Serving(
                    "candidate", rollout.id, rollout.profile_id, c.traffic_share, c.in_comparisons
                )
            )
    if default_model and not any(r.profile_id is None for r in rollouts):
        out.setdefault(default_model, []).append(Serving("default"))
    return out


def _datasets(row: ModelVersion) -> list[DatasetRef]:
    """The training data a version's config names: `config["dataset"]`, as `tandem train`
    records it (`TrainingData.provenance`); versions not trained here have none."""
    recorded = (row.config or {}).get("dataset")
    if isinstance(recorded, str):
        recorded = {"source": recorded}
    if not isinstance(recorded, dict):
        return []
    rows = recorded.get("rows")
    return [
        DatasetRef(
            snapshot_id=_text(recorded.get("snapshot_id")),
            hash=_text(recorded.get("hash")),
            kind=_text(recorded.get("kind")),
            rows=rows if isinstance(rows, int) else None,
            source=_text(recorded.get("source")),
        )
    ]


def _text(value: object) -> str | None:
    return str(value) if value not in (None, "") else None


def _summary(row: ModelVersion, serving: dict[str, list[Serving]]) -> dict[str, Any]:
    config = row.config or {}
    loss = (row.metrics or {}).get("final_loss")
    datasets = _datasets(row)
    return {
        "id": row.id,
        "parent_id": row.parent_id,
        "status": row.status,
        "created_at": row.created_at,
        "kind": str(config.get("kind") or CHAT),
        "method": _text(config.get("method")),
        "dataset_ids": [d.snapshot_id for d in datasets if d.snapshot_id],
        "datasets": datasets,
        "final_loss": float(loss) if isinstance(loss, int | float) else None,
        "serving": serving.get(row.id, []),
    }


def list_versions(session: Session, default_model: str | None = None) -> list[VersionSummary]:
    """Every version, oldest first (parents before the children trained from them)."""
    serving = where_served(session, default_model)
    return [VersionSummary(**_summary(r, serving)) for r in ModelVersionRepo(session).list()]


def describe_version(
    session: Session, version: str, default_model: str | None = None
) -> VersionDetail:
    """One version: its card, files, config and metrics, ancestors and descendants, and its
    datasets with the snapshot records they point at. NotFound for an unknown id."""
    repo = ModelVersionRepo(session)
    row = repo.get(version)
    ancestors = [v.id for v in repo.lineage(version)[1:]]
    rows = repo.list()
    children: dict[str, list[str]] = {}
    for r in rows:  # oldest first, so children stay in creation order
        if r.parent_id and r.parent_id != r.id:
            children.setdefault(r.parent_id, []).append(r.id)
    descendants: list[str] = []
    frontier = [version]
    while frontier:
        nxt = [c for p in frontier for c in children.get(p, []) if c not in descendants]
        nxt = [c for c in nxt if c != version]
        descendants.extend(nxt)
        frontier = nxt
    summary = _summary(row, where_served(session, default_model))
    summary["datasets"] = [_with_snapshot(DatasetRepo(session), d) for d in summary["datasets"]]
    return VersionDetail(
        **summary,
        card=row.card or "",
        formats=dict(row.formats or {}),
        base_path=row.base_path or "",
        config=dict(row.config or {}),
        metrics=dict(row.metrics or {}),
        ancestors=ancestors,
        descendants=descendants,
    )


def _with_snapshot(repo: DatasetRepo, ref: DatasetRef) -> DatasetRef:
    if ref.snapshot_id is None:
        return ref
    try:
        snap = repo.get_snapshot(ref.snapshot_id)
    except NotFound:
        return ref
    return DatasetRef(
        snapshot_id=ref.snapshot_id,
        hash=ref.hash or snap.hash,
        kind=ref.kind or snap.kind,
        rows=ref.rows,
        source=ref.source,
        name=snap.name or None,
        created_at=snap.created_at,
        recorded=True,
    )


def archive_version(session: Session, version: str, default_model: str | None = None) -> str:
    """Mark `version` archived (status `retired`); returns the status. NotFound for an unknown
    id, Conflict, saying where, while it serves. Archiving an archived version is a no-op."""
    ModelVersionRepo(session).get(version)
    for place in where_served(session, default_model).get(version, []):
        if place.role == "default":
            fix = "set a production version on the Rollouts page first"
        elif place.role == "production":
            fix = "promote another version or roll back on the Rollouts page first"
        else:
            fix = "remove it from that rollout's candidates on the Rollouts page first"
        raise Conflict(f"cannot archive: {place.describe(version)}; {fix}")
    return set_status(session, version, ARCHIVED).status


def restore_version(session: Session, version: str) -> str:
    """Bring an archived version back as a candidate; other statuses are left as they are
    (production only moves through a rollout). Returns the status."""
    row = ModelVersionRepo(session).get(version)
    if row.status != ARCHIVED:
        return row.status
    return set_status(session, version, "candidate").status
