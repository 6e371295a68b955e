"""The interactive API docs: /docs (Swagger UI), served from this origin only.

FastAPI's stock pages load the newest `swagger-ui-dist@5` and `redoc@2` from a CDN and start
Swagger UI with an inline script, so their policy had to allow a third-party origin and inline
script on the app's origin. Here Swagger UI is vendored at a pinned version, with its license,
under static/vendor/swagger-ui-dist-<version>/ (fetched once with `npm pack`), and starts from
static/swagger_init.js, so the docs get the app's own Content-Security-Policy
(`tandem.api.security_headers.APP_POLICY`): scripts and styles from this origin only.
/redoc sends readers to /docs: ReDoc builds its styles as inline style elements (it would need
`'unsafe-inline'` styles) and always loads a logo from its vendor's CDN.

The app factory (`tandem.web.app.create_app`) serves this router; FastAPI's own docs routes
are off (`tandem.api.app.create_api`).

To upgrade: `npm pack swagger-ui-dist@X`, copy the files the vendored folder holds now into
one named for the new version, and change SWAGGER_UI below.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from tandem.web.templating import templates

SWAGGER_UI = "/static/vendor/swagger-ui-dist-5.35.0"

router = APIRouter(include_in_schema=False)


@router.get("/docs", response_class=HTMLResponse)
def swagger_ui(request: Request) -> HTMLResponse:
    return templates.TemplateResponse(
        request,
        "api_docs.html",
        {
            "title": request.app.title,
            "openapi_url": request.app.openapi_url,
            "swagger_ui": SWAGGER_UI,
        },
    )


@router.get("/redoc")
def redoc() -> RedirectResponse:
    return RedirectResponse("/docs", status_code=308)
