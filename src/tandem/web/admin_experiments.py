"""The admin console's Experiments page: define behavior experiments, start and stop them, and
read each one's live result (preference with intervals, splits, the recommendation).

GET /admin/experiments   rendered on the server; its script (static/admin_experiments.js)
                         creates, starts and stops through /api/admin/experiments (behind the
                         API's own admin check), then swaps in this page's fresh markup; while
                         an experiment runs it refreshes the results every 15 s

The variant kinds and recommendation labels come from tandem.core.signals. The app factory
(`tandem.web.app.create_app`) serves this router.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse
from sqlalchemy import select

from tandem.api.deps import CatalogDep, SessionDep
from tandem.api.routes.experiments import experiment_public
from tandem.core.signals import VARIANT_KIND_LABELS
from tandem.evals.experiments import experiment_report
from tandem.store import ExperimentRepo
from tandem.store.experiments import MAX_PROMPT_ADDITION, MAX_VARIANTS
from tandem.store.models import Profile, User
from tandem.web.page_access import AdminPageUser
from tandem.web.templating import templates

router = APIRouter(include_in_schema=False)


@router.get("/admin/experiments", response_class=HTMLResponse)
def admin_experiments_page(
    request: Request, user: AdminPageUser, session: SessionDep, catalog: CatalogDep
) -> Response:
    """Rendered on the server; Jinja's autoescape covers every name and text from the DB."""
    experiments = []
    for row in ExperimentRepo(session).list():
        public = experiment_public(session, row)
        public["result"] = experiment_report(session, row.id) if row.status != "draft" else None
        experiments.append(public)
    profiles = [
        {"id": pid, "name": name, "owner": email}
        for pid, name, email in session.execute(
            select(Profile.id, Profile.name, User.email)
            .join(User, User.id == Profile.owner_id)
            .order_by(Profile.name, Profile.id)
        )
    ]
    context = {
        "user": user,
        "active": "experiments",
        "experiments": experiments,
        "profiles": profiles,
        "versions": [m.id for m in catalog.list()],
        "kinds": VARIANT_KIND_LABELS,
        "max_variants": MAX_VARIANTS,
        "max_addition": MAX_PROMPT_ADDITION,
        "any_running": any(e["status"] == "running" for e in experiments),
    }
    return templates.TemplateResponse(request, "admin_experiments.html", context)
