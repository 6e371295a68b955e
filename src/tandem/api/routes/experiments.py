"""Behavior experiments (admin only): variants of a default behavior, met blind in comparisons.

GET  /api/admin/experiments                 every experiment, newest first
POST /api/admin/experiments                 define one (a draft: nothing changes for users yet)
GET  /api/admin/experiments/{id}            one experiment with its variants
POST /api/admin/experiments/{id}/start      running: its comparisons start (409 while another
                                            experiment runs for the same profile)
POST /api/admin/experiments/{id}/stop       no more comparisons; the votes and result stay
GET  /api/admin/experiments/{id}/result     preference per variant, splits, recommendation

How variants combine with the prompt, how turns are drawn and how to read the result:
docs/experiments.md.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, status
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from tandem.api.deps import AdminUser, CatalogDep, SessionDep
from tandem.api.schemas import Body, Id, ModelId
from tandem.core.signals import ExperimentStatus, VariantKind
from tandem.engines import ModelNotFound
from tandem.evals.experiments import experiment_report
from tandem.store.experiments import MAX_PROMPT_ADDITION, ExperimentRepo, ExperimentRow, VariantSpec
from tandem.store.models import Profile

router = APIRouter(tags=["experiments"])


class VariantIn(Body):
    name: Annotated[str, Field(min_length=1, max_length=100)]
    kind: VariantKind
    prompt_addition: Annotated[str, Field(max_length=MAX_PROMPT_ADDITION)] = Field(
        "", description="system_prompt: appended to the system message after a blank line"
    )
    model_version: ModelId | None = Field(None, description="model_version: the version")


class ExperimentCreate(Body):
    name: Annotated[str, Field(min_length=1, max_length=200)]
    hypothesis: Annotated[str, Field(max_length=4000)] = ""
    profile_id: Id | None = Field(None, description="null: the site default")
    comparison_rate: float = Field(
        gt=0.0, le=1.0, description="share of a chat's turns that compare two variants"
    )
    variants: list[VariantIn] = Field(min_length=2, max_length=8)


class VariantPublic(BaseModel):
    id: str
    name: str
    kind: VariantKind
    prompt_addition: str
    model_version: str | None


class ExperimentPublic(BaseModel):
    id: str
    name: str
    hypothesis: str
    profile_id: str | None
    profile_name: str | None
    comparison_rate: float
    status: ExperimentStatus
    variants: list[VariantPublic]
    comparisons: int
    created_at: datetime
    started_at: datetime | None
    stopped_at: datetime | None


def experiment_public(session: Session, row: ExperimentRow) -> dict[str, Any]:
    repo = ExperimentRepo(session)
    profile = session.get(Profile, row.profile_id) if row.profile_id else None
    variants = [
        {name: getattr(v, name) for name in VariantPublic.model_fields}
        for v in repo.variants(row.id)
    ]
    return {
        **{
            name: getattr(row, name) for name in ExperimentPublic.model_fields if hasattr(row, name)
        },
        "profile_name": profile.name if profile else None,
        "variants": variants,
        "comparisons": repo.comparison_count(row.id),
    }


@router.get("/api/admin/experiments", response_model=list[ExperimentPublic])
def list_experiments(_: AdminUser, session: SessionDep) -> list[dict[str, Any]]:
    return [experiment_public(session, r) for r in ExperimentRepo(session).list()]


@router.post(
    "/api/admin/experiments",
    response_model=ExperimentPublic,
    status_code=status.HTTP_201_CREATED,
)
def create_experiment(
    body: ExperimentCreate, admin: AdminUser, session: SessionDep, catalog: CatalogDep
) -> dict[str, Any]:
    for v in body.variants:
        if v.kind == "model_version" and v.model_version and v.model_version not in catalog:
            raise ModelNotFound(v.model_version)
    specs = [VariantSpec(v.name, v.kind, v.prompt_addition, v.model_version) for v in body.variants]
    row = ExperimentRepo(session).create(
        body.name, body.hypothesis, body.profile_id, body.comparison_rate, specs, admin.id
    )
    return experiment_public(session, row)


@router.get("/api/admin/experiments/{experiment_id}", response_model=ExperimentPublic)
def get_experiment(experiment_id: Id, _: AdminUser, session: SessionDep) -> dict[str, Any]:
    return experiment_public(session, ExperimentRepo(session).get(experiment_id))


@router.post("/api/admin/experiments/{experiment_id}/start", response_model=ExperimentPublic)
def start_experiment(experiment_id: Id, _: AdminUser, session: SessionDep) -> dict[str, Any]:
    return experiment_public(session, ExperimentRepo(session).start(experiment_id))


@router.post("/api/admin/experiments/{experiment_id}/stop", response_model=ExperimentPublic)
def stop_experiment(experiment_id: Id, _: AdminUser, session: SessionDep) -> dict[str, Any]:
    return experiment_public(session, ExperimentRepo(session).stop(experiment_id))


@router.get("/api/admin/experiments/{experiment_id}/result")
def experiment_result(experiment_id: Id, _: AdminUser, session: SessionDep) -> dict[str, Any]:
    """Per-variant win share (ties half) with Wilson 95% intervals, Bradley–Terry strengths
    for 3+ variants, splits by user and by profile, and the recommendation."""
    return experiment_report(session, experiment_id)
