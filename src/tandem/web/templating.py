"""The one Jinja environment every page renders with, and the static files its pages link to.

    from tandem.web.templating import templates
    return templates.TemplateResponse(request, "chat.html", {"user": user})

Templates live in web/templates/, assets in web/static/ (served at /static by the app factory,
`tandem.web.app.create_app`).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from fastapi.templating import Jinja2Templates

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
templates = Jinja2Templates(directory=HERE / "templates")


def _asset_version() -> str:
    """A hash of the static files, appended to their URLs: a new release is never served a
    stale script from the browser's cache, and an unchanged one is cached."""
    digest = hashlib.sha256()
    for path in sorted(p for p in STATIC_DIR.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(STATIC_DIR)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:10]


templates.env.globals["asset_version"] = _asset_version()
