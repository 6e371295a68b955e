"""The admin console's Signals page: every thumbs, vote and improved answer with the generation
record it judges, filterable, paged, and "Add to regressions" on a thumbs-down.

GET /admin/signals   a shell: its script (static/admin_signals.js) reads /api/admin/signals
                     and posts /api/admin/signals/{id}/regression (tandem.api.routes.signals),
                     behind the API's own admin check

The filter choices (kinds, reasons and their labels, verdict labels, model versions, profiles)
are rendered here from tandem.core.signals and the store, never spelled out in the script. The
app factory (`tandem.web.app.create_app`) serves this router.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from tandem.api.deps import SessionDep
from tandem.core.signals import FEEDBACK_REASON_LABELS, SIGNAL_KIND_LABELS, VERDICT_LABELS
from tandem.store.signals import SignalLog
from tandem.web.page_access import AdminPageUser
from tandem.web.templating import templates

router = APIRouter(include_in_schema=False)


@router.get("/admin/signals", response_class=HTMLResponse)
def admin_signals_page(request: Request, user: AdminPageUser, session: SessionDep) -> Response:
    versions, profiles = SignalLog(session).filter_choices()
    context = {
        "user": user,
        "active": "signals",
        "kinds": SIGNAL_KIND_LABELS,
        "reasons": FEEDBACK_REASON_LABELS,
        "verdicts": VERDICT_LABELS,
        "versions": versions,
        "profiles": profiles,
    }
    return templates.TemplateResponse(request, "admin_signals.html", context)
