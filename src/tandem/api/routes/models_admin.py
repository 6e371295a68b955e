"""Model versions in the registry (admin only): lineage, cards, data, where they serve; archive.

GET  /api/admin/models                      every version, oldest first, with its parent, status,
                                            method, dataset ids and where it serves
GET  /api/admin/models/{version}            one version: card (markdown), ancestors and
                                            descendants, training config and metrics, datasets
POST /api/admin/models/{version}/archive    status `retired`; 409 while a rollout serves it
POST /api/admin/models/{version}/restore    an archived version becomes a candidate again

The CLI's counterparts: `tandem models list / show / lineage / set-status`. Production and
candidates are set on rollouts (`/api/admin/rollouts`), never here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path
from pydantic import BaseModel

from tandem.api.deps import AdminUser, CatalogDep, SessionDep
from tandem.registry.inventory import (
    ServingRole,
    archive_version,
    describe_version,
    list_versions,
    restore_version,
)

router = APIRouter(tags=["models"])

Version = Annotated[str, Path(min_length=1, max_length=200)]


class ServingPublic(BaseModel):
    role: ServingRole
    rollout_id: str | None
    profile_id: str | None
    traffic_share: float | None
    in_comparisons: bool


class DatasetRefPublic(BaseModel):
    snapshot_id: str | None
    hash: str | None
    kind: str | None
    rows: int | None
    source: str | None
    name: str | None
    created_at: datetime | None
    recorded: bool


class ModelVersionPublic(BaseModel):
    id: str
    parent_id: str | None
    status: str
    created_at: datetime
    kind: str
    method: str | None
    dataset_ids: list[str]
    datasets: list[DatasetRefPublic]
    final_loss: float | None
    serving: list[ServingPublic]


class ModelVersionDetail(ModelVersionPublic):
    card: str
    formats: dict[str, Any]
    base_path: str
    config: dict[str, Any]
    metrics: dict[str, Any]
    ancestors: list[str]
    descendants: list[str]


class StatusPublic(BaseModel):
    id: str
    status: str


@router.get("/api/admin/models", response_model=list[ModelVersionPublic])
def list_models(_: AdminUser, session: SessionDep, catalog: CatalogDep) -> list[dict[str, Any]]:
    return [v.to_dict() for v in list_versions(session, catalog.default_model)]


@router.get("/api/admin/models/{version}", response_model=ModelVersionDetail)
def get_model(
    version: Version, _: AdminUser, session: SessionDep, catalog: CatalogDep
) -> dict[str, Any]:
    return describe_version(session, version, catalog.default_model).to_dict()


@router.post("/api/admin/models/{version}/archive", response_model=StatusPublic)
def archive_model(
    version: Version, _: AdminUser, session: SessionDep, catalog: CatalogDep
) -> dict[str, str]:
    """409, saying which rollout, while the version serves."""
    return {"id": version, "status": archive_version(session, version, catalog.default_model)}


@router.post("/api/admin/models/{version}/restore", response_model=StatusPublic)
def restore_model(version: Version, _: AdminUser, session: SessionDep) -> dict[str, str]:
    return {"id": version, "status": restore_version(session, version)}
