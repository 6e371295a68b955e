"""Stored eval runs (admin only): list, inspect; the admin page.

GET /api/evals/runs              runs, newest first (?suite=ifeval&limit=50)
GET /api/evals/runs/{id}         one run with its graded items
GET /admin/evals                 the admin page (web session)
GET /api/evals/report            offline vs online per model version, with warnings (the gap)
GET /api/evals/report/scatter.png?x=ifeval&y=thumbs_up    the gap as a scatter plot
GET /admin/report                the gap report page (web session)

Runs are written by `tandem eval run`; the API only reads them.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel

from tandem.api.deps import SESSION_COOKIE, AdminUser, SessionDep
from tandem.api.schemas import Id
from tandem.evals.report import ONLINE_METRICS, UnknownMetric, gap_report, render_scatter
from tandem.store import EvalRepo, InvalidInput, WebSessionRepo
from tandem.store.evals import EvalRunRow

router = APIRouter(tags=["evals"])
templates = Jinja2Templates(directory=Path(__file__).parents[2] / "web" / "templates")


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


@router.get("/admin/evals", response_class=HTMLResponse, include_in_schema=False)
def admin_evals_page(request: Request, session: SessionDep) -> Response:
    """The page is a shell; its script calls the API above with the session cookie."""
    token = request.cookies.get(SESSION_COOKIE)
    user = WebSessionRepo(session).user_for(token) if token else None
    if user is None:
        return RedirectResponse("/login?next=/admin/evals", status_code=303)
    if not user.is_admin:
        return HTMLResponse("<!doctype html><title>tandem</title><p>Admins only.</p>", 403)
    return templates.TemplateResponse(request, "admin_evals.html", {"user": user})


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


@router.get("/admin/report", response_class=HTMLResponse, include_in_schema=False)
def admin_report_page(
    request: Request, session: SessionDep, x: MetricQuery = None, y: MetricQuery = None
) -> Response:
    """Rendered on the server; Jinja's autoescape covers every name that came from the DB."""
    token = request.cookies.get(SESSION_COOKIE)
    user = WebSessionRepo(session).user_for(token) if token else None
    if user is None:
        return RedirectResponse("/login?next=/admin/report", status_code=303)
    if not user.is_admin:
        return HTMLResponse("<!doctype html><title>tandem</title><p>Admins only.</p>", 403)
    report = gap_report(session)
    offline = [m for m in report["metrics"] if m["kind"] == "offline"]
    default_x = next((m["id"] for m in offline if m["id"] == "ifeval"), None)
    default_x = default_x or (offline[0]["id"] if offline else None)
    error = None
    if x is not None and x not in {m["id"] for m in offline}:
        error, x = f"unknown offline suite {x!r}; showing the default", None
    if y is not None and y not in ONLINE_METRICS:
        error, y = f"unknown online metric {y!r}; showing thumbs-up", None
    context = {
        "user": user,
        "report": report,
        "offline": offline,
        "online": ONLINE_METRICS,
        "x": x or default_x,
        "y": y or "thumbs_up",
        "error": error,
    }
    return templates.TemplateResponse(request, "admin_report.html", context)
