"""Dataset snapshots (admin only): build from signals, list, inspect, download.

POST /api/datasets                       {"kind": "preference", "filters": {...}} → snapshot
                                         (source "rater_task": one task's submissions)
GET  /api/datasets                       snapshots, newest first
GET  /api/datasets/{id}                  manifest + card
GET  /api/datasets/{id}/signals          the signal ids it read, by kind
GET  /api/datasets/{id}/files/{name}     train.jsonl, test.parquet, card.md, …
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, status
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from tandem.api.deps import AdminUser, SessionDep, SettingsDep
from tandem.api.schemas import Body, Id, ModelId
from tandem.core.errors import InvalidInput, NotFound
from tandem.core.settings import Settings
from tandem.core.signals import DATASET_KIND_FOR_TASK, DatasetKind, DatasetSource, FeedbackReason
from tandem.data.build import BuildConfig, build_snapshot
from tandem.data.builders import demonstration_examples
from tandem.data.rater_datasets import RaterBuild, build_rater_snapshot
from tandem.data.snapshots import SNAPSHOT_FILES, load_snapshot
from tandem.store import DatasetRepo
from tandem.store.datasets import DatasetSnapshotRow
from tandem.store.rater_tasks import RaterTaskRepo

router = APIRouter(tags=["datasets"])

MEDIA_TYPES = {
    ".jsonl": "application/x-ndjson",
    ".parquet": "application/vnd.apache.parquet",
    ".md": "text/markdown; charset=utf-8",
    ".json": "application/json",
}


class DatasetFilters(Body):
    since: datetime | None = Field(None, description="signals at or after this time")
    until: datetime | None = Field(None, description="signals before this time")
    profile_id: Id | None = None
    model_version: ModelId | None = None
    reasons: list[FeedbackReason] = Field(
        default_factory=list, max_length=6, description="thumbs-down only with one of these"
    )
    per_user_cap: int | None = Field(None, ge=1, le=1_000_000)
    test_fraction: float = Field(0.1, ge=0, lt=1)
    near_duplicate_threshold: float = Field(0.9, gt=0, le=2)
    implicit_weight: float = Field(
        0.0, ge=0, le=1, description="kto: keep this fraction of implicit negatives (0 = off)"
    )
    task_id: Id | None = Field(None, description="source rater_task: the task to read")
    min_agreement: float | None = Field(
        None, ge=0, le=1, description="rater_task rankings: items whose raters agree at least this"
    )
    min_gold_accuracy: float | None = Field(
        None, ge=0, le=1, description="rater_task rankings: raters below it are left out"
    )


class DatasetCreate(Body):
    kind: DatasetKind
    source: DatasetSource = Field(
        "signals", description="the product's signals, or one rater task (filters.task_id)"
    )
    name: str = Field("", max_length=200)
    filters: DatasetFilters = Field(default_factory=DatasetFilters)
    demonstrations: list[dict[str, Any]] = Field(
        default_factory=list,
        max_length=10_000,
        description='SFT only: behaviour-spec demonstrations, each {"messages": [...]}',
    )


class DatasetPublic(BaseModel):
    id: str
    kind: str
    name: str
    hash: str
    source: str
    filters: dict[str, Any]
    counts: dict[str, Any]
    created_at: datetime
    created_by: str | None
    files: dict[str, str]


class DatasetDetail(DatasetPublic):
    manifest: dict[str, Any]
    card: str
    signal_counts: dict[str, int]


def _public(row: DatasetSnapshotRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "kind": row.kind,
        "name": row.name,
        "hash": row.hash,
        "source": row.source,
        "filters": row.filters,
        "counts": row.counts,
        "created_at": row.created_at,
        "created_by": row.created_by,
        "files": {name: f"/api/datasets/{row.id}/files/{name}" for name in SNAPSHOT_FILES},
    }


@router.post("/api/datasets", status_code=status.HTTP_201_CREATED)
def create_dataset(
    body: DatasetCreate,
    admin: AdminUser,
    session: SessionDep,
    settings: SettingsDep,
    response: Response,
) -> DatasetPublic:
    """Build a snapshot. 201 when new; 200 with the existing snapshot when the same rows were
    already built (snapshots are content-addressed and never rewritten)."""
    f = body.filters
    if body.source == "rater_task":
        return _from_rater_task(body, admin.id, session, settings, response)
    if f.task_id is not None or f.min_agreement is not None or f.min_gold_accuracy is not None:
        raise InvalidInput("task_id, min_agreement and min_gold_accuracy need source rater_task")
    config = BuildConfig(
        kind=body.kind,
        since=f.since,
        until=f.until,
        profile_id=f.profile_id,
        model_version=f.model_version,
        reasons=tuple(f.reasons),
        per_user_cap=f.per_user_cap,
        test_fraction=f.test_fraction,
        near_duplicate_threshold=f.near_duplicate_threshold,
        implicit_weight=f.implicit_weight,
        name=body.name,
    )
    demos = demonstration_examples(body.demonstrations, "api") if body.demonstrations else []
    result = build_snapshot(
        session,
        settings.home,
        config,
        demonstrations=demos,
        demonstrations_source=f"api ({len(demos)} rows)" if demos else None,
        created_by=admin.id,
    )
    if not result.created:
        response.status_code = status.HTTP_200_OK
    return DatasetPublic(**_public(result.record))


def _from_rater_task(
    body: DatasetCreate, admin_id: str, session: Session, settings: Settings, response: Response
) -> DatasetPublic:
    f = body.filters
    if f.task_id is None:
        raise InvalidInput("source rater_task needs filters.task_id")
    if body.demonstrations:
        raise InvalidInput("demonstrations are added to signal builds only")
    kind = DATASET_KIND_FOR_TASK.get(RaterTaskRepo(session).get(f.task_id).kind)  # type: ignore[call-overload]
    if kind is None:
        raise InvalidInput("spec-label tasks measure a model against the spec: no dataset")
    if kind != body.kind:
        raise InvalidInput(f"this task makes {kind} datasets, not {body.kind}")
    build = RaterBuild(
        task_id=f.task_id,
        min_agreement=f.min_agreement,
        min_gold_accuracy=f.min_gold_accuracy,
        test_fraction=f.test_fraction,
        near_duplicate_threshold=f.near_duplicate_threshold,
        name=body.name,
    )
    result = build_rater_snapshot(session, settings.home, build, created_by=admin_id)
    if not result.created:
        response.status_code = status.HTTP_200_OK
    return DatasetPublic(**_public(result.record))


@router.get("/api/datasets")
def list_datasets(
    _: AdminUser, session: SessionDep, limit: Annotated[int, Query(ge=1, le=1000)] = 200
) -> list[DatasetPublic]:
    return [DatasetPublic(**_public(r)) for r in DatasetRepo(session).list_snapshots(limit)]


@router.get("/api/datasets/{snapshot_id}")
def get_dataset(
    snapshot_id: Id, _: AdminUser, session: SessionDep, settings: SettingsDep
) -> DatasetDetail:
    repo = DatasetRepo(session)
    row = repo.get_snapshot(snapshot_id)
    snap = load_snapshot(settings.home, row.id)
    signals = repo.snapshot_signals(row.id)
    return DatasetDetail(
        **_public(row),
        manifest=snap.manifest,
        card=snap.card_file.read_text(encoding="utf-8"),
        signal_counts={k: len(v) for k, v in signals.items()},
    )


@router.get("/api/datasets/{snapshot_id}/signals")
def dataset_signals(snapshot_id: Id, _: AdminUser, session: SessionDep) -> dict[str, list[str]]:
    return DatasetRepo(session).snapshot_signals(snapshot_id)


@router.get("/api/datasets/{snapshot_id}/files/{filename}")
def dataset_file(
    snapshot_id: Id, filename: str, _: AdminUser, session: SessionDep, settings: SettingsDep
) -> FileResponse:
    if filename not in SNAPSHOT_FILES:
        raise NotFound("dataset file", filename)
    row = DatasetRepo(session).get_snapshot(snapshot_id)
    snap = load_snapshot(settings.home, row.id)
    path = snap.path / filename
    return FileResponse(
        path,
        media_type=MEDIA_TYPES[path.suffix],
        filename=f"{row.id}-{filename}",
    )
