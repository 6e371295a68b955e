"""The admin console's Jobs page: launch training and eval jobs, watch them, cancel, resume.

GET /admin/jobs    the launch forms are rendered here (the training form from
                   `tandem.train.config.form_fields`: the CLI's fields, defaults and help);
                   its script (static/admin_jobs.js) queues, polls and controls the jobs through
                   /api/admin/jobs (tandem.api.routes.jobs)

`?job=ID` opens that job. The app factory (`tandem.web.app.create_app`) serves this router.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from tandem.api.deps import CatalogDep, SettingsDep
from tandem.core.signals import DATASET_KIND_FOR_METHOD, TRAIN_METHODS
from tandem.evals.runs import EVAL_SAMPLING
from tandem.evals.tasks import BUILTIN_TASK_MODULES, TASKS
from tandem.registry.versions import chat_versions
from tandem.train.config import DEFAULT_LEARNING_RATE, form_fields
from tandem.web.page_access import AdminPageUser
from tandem.web.templating import templates

router = APIRouter(include_in_schema=False)

METHOD_LABELS = {
    "sft": "SFT: supervised fine-tuning on conversations",
    "dpo": "DPO: preference pairs",
    "kto": "KTO: unpaired thumbs",
    "reward": "Reward model: preference pairs (not servable as chat)",
}


@router.get("/admin/jobs", response_class=HTMLResponse)
def admin_jobs_page(
    request: Request, user: AdminPageUser, settings: SettingsDep, catalog: CatalogDep
) -> Response:
    context = {
        "user": user,
        "active": "jobs",
        "methods": [
            {
                "id": m,
                "label": METHOD_LABELS[m],
                "kind": DATASET_KIND_FOR_METHOD[m],
                "learning_rate": DEFAULT_LEARNING_RATE[m],
            }
            for m in TRAIN_METHODS
        ],
        "fields": form_fields(),
        "bases": chat_versions(settings.home),
        "default_base": catalog.default_model,
        "suites": sorted(set(TASKS) | set(BUILTIN_TASK_MODULES)),
        # Plain versions only: the `@transformers` reference variants stay a CLI matter.
        "served": [info.id for info in catalog.list() if not info.variant_of],
        "eval_max_tokens": EVAL_SAMPLING.max_tokens,
    }
    return templates.TemplateResponse(request, "admin_jobs.html", context)
