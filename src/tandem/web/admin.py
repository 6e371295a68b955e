"""The admin console's pages: overview, datasets, eval runs, the offline-vs-online report,
rollouts, users.

GET /admin               the overview: counts across the loop, rendered on the server
GET /admin/users         accounts: disable, make admin, reset a password (its script calls /api)
GET /admin/datasets      build and browse dataset snapshots (a shell: its script calls /api)
GET /admin/evals         eval runs and their graded items (a shell: its script calls /api)
GET /admin/report        offline vs online per model version, rendered on the server
GET /admin/rollouts      production, candidates, gates and history, rendered on the server

Every page needs an admin's web session (`AdminPageUser`). The JSON they read or change is the
API's (`tandem.api.routes.datasets`, `.evals`, `.rollouts`), behind its own admin check.
The app factory (`tandem.web.app.create_app`) serves this router.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse
from sqlalchemy import select

from tandem.api.deps import CatalogDep, SessionDep
from tandem.api.routes.evals import MetricQuery
from tandem.api.routes.rollouts import rollout_detail
from tandem.core.signals import FEEDBACK_REASON_LABELS
from tandem.evals.report import ONLINE_METRICS, gap_report
from tandem.store.models import Profile, User
from tandem.store.overview import console_counts
from tandem.store.rollouts import RolloutRepo
from tandem.web.page_access import AdminPageUser
from tandem.web.templating import templates

router = APIRouter(include_in_schema=False)

# The console's pages, in nav order: (key, label, href). A handler passes its key as `active`;
# every console template reads the list as the Jinja global `admin_nav` (admin_base.html).
ADMIN_NAV: tuple[tuple[str, str, str], ...] = (
    ("overview", "Overview", "/admin"),
    ("signals", "Signals", "/admin/signals"),
    ("datasets", "Datasets", "/admin/datasets"),
    ("jobs", "Jobs", "/admin/jobs"),
    ("models", "Models", "/admin/models"),
    ("tasks", "Rater tasks", "/admin/tasks"),
    ("evals", "Evals", "/admin/evals"),
    ("report", "Report", "/admin/report"),
    ("rollouts", "Rollouts", "/admin/rollouts"),
    ("experiments", "Experiments", "/admin/experiments"),
    ("users", "Users", "/admin/users"),
)
templates.env.globals["admin_nav"] = ADMIN_NAV


@router.get("/admin", response_class=HTMLResponse)
def admin_overview_page(request: Request, user: AdminPageUser, session: SessionDep) -> Response:
    context = {"user": user, "active": "overview", "counts": console_counts(session)}
    return templates.TemplateResponse(request, "admin_overview.html", context)


@router.get("/admin/users", response_class=HTMLResponse)
def admin_users_page(request: Request, user: AdminPageUser) -> Response:
    """The page is a shell; its script calls /api/users with the session cookie + CSRF."""
    return templates.TemplateResponse(
        request, "admin_users.html", {"user": user, "active": "users"}
    )


@router.get("/admin/datasets", response_class=HTMLResponse)
def admin_datasets_page(request: Request, user: AdminPageUser) -> Response:
    """The page is a shell; its script calls /api/datasets with the session cookie + CSRF."""
    context = {"user": user, "active": "datasets", "reasons": FEEDBACK_REASON_LABELS}
    return templates.TemplateResponse(request, "admin_datasets.html", context)


@router.get("/admin/evals", response_class=HTMLResponse)
def admin_evals_page(request: Request, user: AdminPageUser) -> Response:
    """The page is a shell; its script calls /api/evals/runs with the session cookie."""
    context = {"user": user, "active": "evals"}
    return templates.TemplateResponse(request, "admin_evals.html", context)


@router.get("/admin/report", response_class=HTMLResponse)
def admin_report_page(
    request: Request,
    user: AdminPageUser,
    session: SessionDep,
    x: MetricQuery = None,
    y: MetricQuery = None,
) -> Response:
    """Rendered on the server; Jinja's autoescape covers every name that came from the DB."""
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
        "active": "report",
        "report": report,
        "offline": offline,
        "online": ONLINE_METRICS,
        "x": x or default_x,
        "y": y or "thumbs_up",
        "error": error,
    }
    return templates.TemplateResponse(request, "admin_report.html", context)


@router.get("/admin/rollouts", response_class=HTMLResponse)
def admin_rollouts_page(
    request: Request, user: AdminPageUser, session: SessionDep, catalog: CatalogDep
) -> Response:
    """Rendered on the server; Jinja's autoescape covers every name and reason from the DB.
    Its script (admin_rollouts.js) changes rollouts through /api/admin/rollouts and swaps in
    this page's freshly rendered cards, so the markup has one author."""
    rollouts = []
    for row in RolloutRepo(session).list():
        detail = rollout_detail(session, row)
        profile = session.get(Profile, row.profile_id) if row.profile_id else None
        detail["profile_name"] = profile.name if profile else None
        detail["production_share"] = max(
            0.0, 1.0 - sum(c["traffic_share"] for c in detail["candidates"])
        )
        for event in detail["events"]:
            actor = session.get(User, event["actor_id"]) if event["actor_id"] else None
            event["actor_email"] = actor.email if actor else None
        rollouts.append(detail)
    # "Set production" starts a rollout: for the site default (or moves its production) and
    # for profiles without one; a profile's existing rollout is changed on its own card.
    with_rollout = {r["profile_id"] for r in rollouts}
    owned = session.execute(
        select(Profile.id, Profile.name, User.email)
        .join(User, User.id == Profile.owner_id)
        .order_by(Profile.name, Profile.id)
    )
    profiles = [
        {"id": pid, "name": name, "owner": email}
        for pid, name, email in owned
        if pid not in with_rollout
    ]
    context = {
        "user": user,
        "active": "rollouts",
        "rollouts": rollouts,
        # Only versions the catalog can serve: the API refuses the others with a 404.
        "versions": [m.id for m in catalog.list()],
        "profiles": profiles,
        "site_has_rollout": None in with_rollout,
    }
    return templates.TemplateResponse(request, "admin_rollouts.html", context)
