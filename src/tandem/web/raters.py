"""The rater workspace's pages (docs/raters.md).

GET /admin/tasks   create rater tasks (paste JSONL or add items one by one) and read each
                   task's progress, agreement, gold accuracy, speed and disagreements
                   (a shell: static/admin_tasks.js calls /api/admin/tasks)
GET /rate          a rater's queue, one item at a time with the task's guideline: the ranking
                   and demonstration UIs (a shell: static/rate.js calls /api/rater)

/admin/tasks needs an admin's web session, /rate a rater's (`RaterPageUser`). The app factory
(`tandem.web.app.create_app`) serves this router.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from tandem.api.deps import CatalogDep
from tandem.core.signals import DATASET_KIND_FOR_TASK, RATER_TASK_KIND_LABELS, SPEC_LABEL_NAMES
from tandem.evals.behavior_spec import load_spec
from tandem.web.page_access import AdminPageUser, RaterPageUser
from tandem.web.templating import templates

router = APIRouter(include_in_schema=False)


@router.get("/admin/tasks", response_class=HTMLResponse)
def admin_tasks_page(request: Request, user: AdminPageUser, catalog: CatalogDep) -> Response:
    context = {
        "user": user,
        "active": "tasks",
        "kinds": RATER_TASK_KIND_LABELS,
        "dataset_kinds": DATASET_KIND_FOR_TASK,
        "served": [info.id for info in catalog.list() if not info.variant_of],
        "behaviors": load_spec(),
        "spec_labels": list(SPEC_LABEL_NAMES.items()),
    }
    return templates.TemplateResponse(request, "admin_tasks.html", context)


@router.get("/rate", response_class=HTMLResponse)
def rate_page(request: Request, user: RaterPageUser) -> Response:
    context = {"user": user, "active": "rate", "spec_labels": list(SPEC_LABEL_NAMES.items())}
    return templates.TemplateResponse(request, "rate.html", context)
