"""The admin console's Models page: versions as a lineage graph, each version's card, the
datasets it was trained on, where it serves, and archiving.

GET /admin/models    a shell: its script (static/admin_models.js) reads and changes
                     /api/admin/models (tandem.api.routes.models_admin), behind its own admin check

`?version=ID` opens that version's card. The app factory (`tandem.web.app.create_app`) serves
this router.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from tandem.web.page_access import AdminPageUser
from tandem.web.templating import templates

router = APIRouter(include_in_schema=False)


@router.get("/admin/models", response_class=HTMLResponse)
def admin_models_page(request: Request, user: AdminPageUser) -> Response:
    return templates.TemplateResponse(
        request, "admin_models.html", {"user": user, "active": "models"}
    )
