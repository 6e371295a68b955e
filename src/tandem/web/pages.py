"""The web app's pages: server-rendered shells that hand-written JS fills from the `/api`.

    from tandem.web.pages import install
    install(app)          # done by tandem.api.app.create_app: pages at /, static files at /static

Pages carry no user data beyond who is signed in: everything else is fetched by the page's
script through the same API any client uses, so the UI can never show what the API would not.
A visit without a valid session goes to /login (and back to the page after signing in).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, FastAPI, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from tandem.api.deps import SESSION_COOKIE, SessionDep, SettingsDep
from tandem.store import SiteSettingsRepo, UserRepo, WebSessionRepo
from tandem.store.models import User

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
templates = Jinja2Templates(directory=HERE / "templates")

router = APIRouter(include_in_schema=False)


def _asset_version() -> str:
    """A hash of the static files, appended to their URLs: a new release is never served a
    stale script from the browser's cache, and an unchanged one is cached."""
    digest = hashlib.sha256()
    for path in sorted(p for p in STATIC_DIR.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(STATIC_DIR)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:10]


templates.env.globals["asset_version"] = _asset_version()


def _signed_in(request: Request, session: SessionDep) -> User | None:
    token = request.cookies.get(SESSION_COOKIE)
    return WebSessionRepo(session).user_for(token) if token else None


def _to_login(request: Request) -> RedirectResponse:
    target = request.url.path
    nxt = f"?next={quote(target, safe='/')}" if target != "/" else ""
    return RedirectResponse(f"/login{nxt}", status_code=303)


def _page(request: Request, template: str, user: User, **context: object) -> HTMLResponse:
    catalog = request.app.state.catalog
    return templates.TemplateResponse(
        request,
        template,
        {
            "user": user,
            "default_model": catalog.default_model or "",
            **context,
        },
    )


@router.get("/", response_class=HTMLResponse)
def chat_page(request: Request, session: SessionDep) -> Response:
    user = _signed_in(request, session)
    if user is None:
        return _to_login(request)
    return _page(request, "chat.html", user, conversation_id="")


@router.get("/c/{conversation_id}", response_class=HTMLResponse)
def conversation_page(
    conversation_id: Annotated[str, PathParam(max_length=64)],
    request: Request,
    session: SessionDep,
) -> Response:
    # Ownership is checked by the API call the page makes: a foreign or missing id shows the
    # same "not found" state either way.
    user = _signed_in(request, session)
    if user is None:
        return _to_login(request)
    return _page(request, "chat.html", user, conversation_id=conversation_id)


@router.get("/settings", response_class=HTMLResponse)
def settings_page(request: Request, session: SessionDep) -> Response:
    user = _signed_in(request, session)
    if user is None:
        return _to_login(request)
    return _page(request, "settings.html", user)


@router.get("/profiles", response_class=HTMLResponse)
def profiles_page(request: Request, session: SessionDep) -> Response:
    user = _signed_in(request, session)
    if user is None:
        return _to_login(request)
    return _page(request, "profiles.html", user)


def _auth_page(request: Request, session: SessionDep, settings: SettingsDep, mode: str) -> Response:
    if _signed_in(request, session) is not None:
        return RedirectResponse("/", status_code=303)
    first = UserRepo(session).count() == 0
    signup_open = first or bool(
        SiteSettingsRepo(session).get("allow_signup", settings.allow_signup)
    )
    return templates.TemplateResponse(
        request, "auth.html", {"mode": mode, "signup_open": signup_open, "first_user": first}
    )


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, session: SessionDep, settings: SettingsDep) -> Response:
    return _auth_page(request, session, settings, "login")


@router.get("/signup", response_class=HTMLResponse)
def signup_page(request: Request, session: SessionDep, settings: SettingsDep) -> Response:
    return _auth_page(request, session, settings, "signup")


def install(app: FastAPI) -> None:
    """Serve the pages and /static from `app` (called once by create_app)."""
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
