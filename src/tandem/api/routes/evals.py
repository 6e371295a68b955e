"""Stored eval runs (admin only): list, inspect; the offline-vs-online report.

GET /api/evals/runs              runs, newest first (?suite=ifeval&limit=50)
GET /api/evals/runs/{id}         one run with its graded items
GET /api/evals/compare?a=RUN&b=RUN   two finished runs of one suite, paired prompt by prompt
GET /api/evals/report            offline vs online per model version, with warnings (the gap)
GET /api/evals/report/scatter.png?x=ifeval&y=thumbs_up    the gap as a scatter plot

Runs are written by `tandem eval run`; the API only reads them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel

from tandem.api.deps import AdminUser, SessionDep
from tandem.api.schemas import Id
from tandem.core.errors import InvalidInput
from tandem.evals.compare import compare_runs
from tandem.evals.report import UnknownMetric, gap_report, render_scatter
from tandem.store import EvalRepo
from tandem.store.evals import EvalRunRow

router = APIRouter(tags=["evals"])


class EvalRunPublic(BaseModel):
    id: str
    suite: str
    model_version: str
    backend: str
    sampling: dict[str, Any]
    status: str
    started_at: datetime
    finished_at: datetime | None
    wall_seconds: float | None
    n_items: int
    summary: dict[str, Any]
    created_by: str | None


class EvalItemPublic(BaseModel):
    example_id: str
    prompt_messages: list[Any]
    response: str
    passed: bool
    scores: dict[str, Any]
    details: dict[str, Any]
    generation_id: str | None


class EvalRunDetail(EvalRunPublic):
    items: list[EvalItemPublic]


def _public(row: EvalRunRow) -> dict[str, Any]:
    return {name: getattr(row, name) for name in EvalRunPublic.model_fields}


@router.get("/api/evals/runs", response_model=list[EvalRunPublic])
def list_runs(
    _: AdminUser,
    session: SessionDep,
    suite: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    return [_public(r) for r in EvalRepo(session).list_runs(suite=suite, limit=limit)]


@router.get("/api/evals/runs/{run_id}", response_model=EvalRunDetail)
def get_run(run_id: Id, _: AdminUser, session: SessionDep) -> dict[str, Any]:
    repo = EvalRepo(session)
    run = repo.get_run(run_id)  # NotFound → 404 by the app's error handler
    items = [
        {name: getattr(i, name) for name in EvalItemPublic.model_fields} for i in repo.items(run.id)
    ]
    return _public(run) | {"items": items}


# A run id as the store makes them (uuid hex); the pattern answers 422 before any query.
RunIdQuery = Annotated[str, Query(min_length=1, max_length=64, pattern=r"^[0-9A-Za-z_-]+$")]


@router.get("/api/evals/compare")
def compare_two_runs(
    _: AdminUser,
    session: SessionDep,
    a: RunIdQuery,
    b: RunIdQuery,
    bootstrap: Annotated[int, Query(ge=0, le=2000)] = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """Run a (baseline) against run b (candidate): 404 for an unknown id, 422 for the same run
    twice, a run not finished, or runs of two suites (tandem.evals.compare)."""
    return compare_runs(EvalRepo(session), a, b, resamples=bootstrap, seed=seed)


MetricQuery = Annotated[str | None, Query(min_length=1, max_length=200)]
BootstrapQuery = Annotated[int, Query(ge=0, le=1000)]


@router.get("/api/evals/report")
def get_gap_report(
    _: AdminUser, session: SessionDep, bootstrap: BootstrapQuery = 100, seed: int = 0
) -> dict[str, Any]:
    return gap_report(session, bootstrap=bootstrap, seed=seed)


@router.get(
    "/api/evals/report/scatter.png",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}},
)
def get_gap_scatter(
    _: AdminUser,
    session: SessionDep,
    x: MetricQuery = None,
    y: MetricQuery = None,
    bootstrap: BootstrapQuery = 100,
    seed: int = 0,
) -> Response:
    report = gap_report(session, bootstrap=bootstrap, seed=seed)
    try:
        png = render_scatter(report, x, y)
    except UnknownMetric as exc:
        raise InvalidInput(str(exc)) from None
    # The figures change with every vote: never let a browser show yesterday's plot.
    return Response(png, media_type="image/png", headers={"Cache-Control": "no-store"})
