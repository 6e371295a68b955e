"""Rollouts (admin only): production, candidates, gates, promotion, rollback.

GET   /api/admin/rollouts                          every rollout with its candidates
POST  /api/admin/rollouts                          set production (creates the profile's rollout)
GET   /api/admin/rollouts/{id}                     detail: gate report per candidate, history
PATCH /api/admin/rollouts/{id}                     the rollout's own comparison_rate (null: site's)
PUT   /api/admin/rollouts/{id}/candidates          add or update a candidate (share, comparisons)
POST  /api/admin/rollouts/{id}/candidates/remove   remove a candidate
POST  /api/admin/rollouts/{id}/check               run the gates for a version (recorded)
POST  /api/admin/rollouts/{id}/promote             promote a candidate: 409 when gates fail
POST  /api/admin/rollouts/{id}/rollback            production back to the version it replaced

Every change is recorded with who, when and why (docs/rollout.md). Promotion through the API
never forces past failing gates; only the CLI's `--force` can, and it is recorded as forced.
A version that is a LoRA adapter served by vLLM is loaded there before a change makes it served
(409 and no change when vLLM refuses), and unloaded once no rollout serves it
(`tandem.api.lora_rollouts`, docs/howto/vllm.md).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from tandem.api.deps import AdminUser, CatalogDep, LoraAdaptersDep, SessionDep
from tandem.api.lora_rollouts import change_serving
from tandem.api.schemas import Body, Id, ModelId
from tandem.engines import ModelCatalog, ModelNotFound
from tandem.rollout.gates import check_gates
from tandem.rollout.promotion import promote, rollback
from tandem.store.rollouts import RolloutEventRow, RolloutRepo, RolloutRow

router = APIRouter(tags=["rollouts"])

Share = Annotated[float, Field(ge=0.0, le=1.0)]
Reason = Annotated[str, Field(max_length=2000)]
RequiredReason = Annotated[str, Field(min_length=1, max_length=2000)]


class CandidatePublic(BaseModel):
    version: str
    traffic_share: float
    in_comparisons: bool


class RolloutPublic(BaseModel):
    id: str
    profile_id: str | None
    production_version: str
    comparison_rate: float | None
    candidates: list[CandidatePublic]
    updated_at: datetime


class GateCheckPublic(BaseModel):
    name: str
    production_value: float | None
    candidate_value: float | None
    margin: float | None
    passed: bool
    why: str
    skipped: bool


class GateReportPublic(BaseModel):
    production: str
    candidate: str
    passed: bool
    checks: list[GateCheckPublic]


class RolloutEventPublic(BaseModel):
    id: str
    kind: str
    actor_id: str | None
    reason: str
    version: str | None
    from_version: str | None
    to_version: str | None
    gates: GateReportPublic | None
    details: dict[str, Any]
    at: datetime


class RolloutDetail(RolloutPublic):
    previous_version: str | None
    gates: dict[str, GateReportPublic]
    events: list[RolloutEventPublic]


class PromotionPublic(BaseModel):
    gates: GateReportPublic
    rollout: RolloutPublic


class ProductionIn(Body):
    profile_id: Id | None = None  # null: the site default rollout
    version: ModelId
    reason: Reason = ""


class RolloutPatch(Body):
    comparison_rate: Share | None = None
    reason: Reason = ""


class CandidateIn(Body):
    version: ModelId
    traffic_share: Share | None = None
    in_comparisons: bool | None = None
    reason: Reason = ""


class VersionIn(Body):
    version: ModelId
    reason: Reason = ""


class PromoteIn(Body):
    version: ModelId
    reason: RequiredReason


class RollbackIn(Body):
    reason: RequiredReason


def _servable(catalog: ModelCatalog, version: str) -> None:
    if version not in catalog:
        raise ModelNotFound(version)


def _public(repo: RolloutRepo, row: RolloutRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "profile_id": row.profile_id,
        "production_version": row.production_version,
        "comparison_rate": row.comparison_rate,
        "candidates": [vars(c) for c in repo.candidates(row.id)],
        "updated_at": row.updated_at,
    }


def _event(row: RolloutEventRow) -> dict[str, Any]:
    return {name: getattr(row, name) for name in RolloutEventPublic.model_fields}


def rollout_detail(session: Any, rollout: RolloutRow) -> dict[str, Any]:
    """The rollout, a fresh gate report per candidate, and its history (newest first)."""
    repo = RolloutRepo(session)
    public = _public(repo, rollout)
    gates = {
        c["version"]: check_gates(session, rollout, c["version"]).to_dict()
        for c in public["candidates"]
    }
    return public | {
        "previous_version": repo.previous_production(rollout.id),
        "gates": gates,
        "events": [_event(e) for e in repo.events(rollout.id)],
    }


@router.get("/api/admin/rollouts", response_model=list[RolloutPublic])
def list_rollouts(_: AdminUser, session: SessionDep) -> list[dict[str, Any]]:
    repo = RolloutRepo(session)
    return [_public(repo, r) for r in repo.list()]


@router.post("/api/admin/rollouts", response_model=RolloutPublic)
def set_production(
    body: ProductionIn,
    admin: AdminUser,
    session: SessionDep,
    catalog: CatalogDep,
    adapters: LoraAdaptersDep,
) -> dict[str, Any]:
    _servable(catalog, body.version)
    repo = RolloutRepo(session)
    row = change_serving(
        adapters,
        session,
        [body.version],
        lambda: repo.set_production(body.profile_id, body.version, admin.id, body.reason),
    )
    return _public(repo, row)


@router.get("/api/admin/rollouts/{rollout_id}", response_model=RolloutDetail)
def get_rollout(rollout_id: Id, _: AdminUser, session: SessionDep) -> dict[str, Any]:
    return rollout_detail(session, RolloutRepo(session).get(rollout_id))


@router.patch("/api/admin/rollouts/{rollout_id}", response_model=RolloutPublic)
def update_rollout(
    rollout_id: Id, body: RolloutPatch, admin: AdminUser, session: SessionDep
) -> dict[str, Any]:
    repo = RolloutRepo(session)
    row = repo.set_comparison_rate(rollout_id, body.comparison_rate, admin.id, body.reason)
    return _public(repo, row)


@router.put("/api/admin/rollouts/{rollout_id}/candidates", response_model=RolloutPublic)
def put_candidate(
    rollout_id: Id,
    body: CandidateIn,
    admin: AdminUser,
    session: SessionDep,
    catalog: CatalogDep,
    adapters: LoraAdaptersDep,
) -> dict[str, Any]:
    """Adds the candidate (share default 0, comparisons default off) or updates the given
    fields of an existing one."""
    repo = RolloutRepo(session)
    row = repo.get(rollout_id)
    existing = {c.version for c in repo.candidates(row.id)}
    if body.version in existing:
        repo.update_candidate(
            row.id,
            body.version,
            admin.id,
            body.reason,
            traffic_share=body.traffic_share,
            in_comparisons=body.in_comparisons,
        )
    else:
        _servable(catalog, body.version)
        change_serving(
            adapters,
            session,
            [body.version],
            lambda: repo.add_candidate(
                row.id,
                body.version,
                body.traffic_share or 0.0,
                bool(body.in_comparisons),
                admin.id,
                body.reason,
            ),
        )
    return _public(repo, row)


@router.post("/api/admin/rollouts/{rollout_id}/candidates/remove", response_model=RolloutPublic)
def remove_candidate(
    rollout_id: Id,
    body: VersionIn,
    admin: AdminUser,
    session: SessionDep,
    adapters: LoraAdaptersDep,
) -> dict[str, Any]:
    repo = RolloutRepo(session)
    change_serving(
        adapters,
        session,
        [],
        lambda: repo.remove_candidate(rollout_id, body.version, admin.id, body.reason),
    )
    return _public(repo, repo.get(rollout_id))


@router.post("/api/admin/rollouts/{rollout_id}/check", response_model=GateReportPublic)
def check_version(
    rollout_id: Id, body: VersionIn, admin: AdminUser, session: SessionDep
) -> dict[str, Any]:
    repo = RolloutRepo(session)
    report = check_gates(session, repo.get(rollout_id), body.version).to_dict()
    repo.record_gate_check(rollout_id, body.version, report, admin.id)
    return report


@router.post("/api/admin/rollouts/{rollout_id}/promote", response_model=PromotionPublic)
def promote_candidate(
    rollout_id: Id,
    body: PromoteIn,
    admin: AdminUser,
    session: SessionDep,
    adapters: LoraAdaptersDep,
) -> dict[str, Any]:
    """409 with the failed checks when the gates refuse; the report is in the history."""
    repo = RolloutRepo(session)
    rollout = repo.get(rollout_id)
    report, row = change_serving(
        adapters,
        session,
        [body.version],  # a candidate is loaded already, unless its server restarted
        lambda: promote(session, rollout, body.version, admin.id, body.reason),
    )
    return {"gates": report.to_dict(), "rollout": _public(repo, row)}


@router.post("/api/admin/rollouts/{rollout_id}/rollback", response_model=RolloutPublic)
def rollback_production(
    rollout_id: Id,
    body: RollbackIn,
    admin: AdminUser,
    session: SessionDep,
    adapters: LoraAdaptersDep,
) -> dict[str, Any]:
    repo = RolloutRepo(session)
    rollout = repo.get(rollout_id)
    previous = repo.previous_production(rollout.id)  # None: rollback refuses with a 409
    row = change_serving(
        adapters,
        session,
        [previous] if previous else [],
        lambda: rollback(session, rollout, admin.id, body.reason),
    )
    return _public(repo, row)
