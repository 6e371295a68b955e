"""The chat app's pages: server-rendered shells that hand-written JS fills from the `/api`.

Pages carry no user data beyond who is signed in: everything else is fetched by the page's
script through the same API any client uses, so the UI can never show what the API would not.
A visit without a valid session goes to /login (and back to the page after signing in).
The app factory (`tandem.web.app.create_app`) serves this router.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from tandem.api.deps import SessionDep, SettingsDep
from tandem.core.signals import FEEDBACK_REASON_LABELS
from tandem.store import SiteSettingsRepo, UserRepo
from tandem.store.models import User
from tandem.web.page_access import PageUser, session_user
from tandem.web.templating import templates

router = APIRouter(include_in_schema=False)

# The thumbs-down reasons, as [value, label] pairs for chat.html's JS: a list keeps their
# order, which `tojson` (it sorts a dict's keys) would not.
_REASONS = list(FEEDBACK_REASON_LABELS.items())


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
def chat_page(request: Request, user: PageUser) -> Response:
    return _page(request, "chat.html", user, conversation_id="", reasons=_REASONS)


@router.get("/c/{conversation_id}", response_class=HTMLResponse)
def conversation_page(
    conversation_id: Annotated[str, PathParam(max_length=64)],
    request: Request,
    user: PageUser,
) -> Response:
    # Ownership is checked by the API call the page makes: a foreign or missing id shows the
    # same "not found" state either way.
    return _page(request, "chat.html", user, conversation_id=conversation_id, reasons=_REASONS)


@router.get("/settings", response_class=HTMLResponse)
def settings_page(request: Request, user: PageUser) -> Response:
    return _page(request, "settings.html", user)


@router.get("/profiles", response_class=HTMLResponse)
def profiles_page(request: Request, user: PageUser) -> Response:
    return _page(request, "profiles.html", user)


def _auth_page(request: Request, session: SessionDep, settings: SettingsDep, mode: str) -> Response:
    if session_user(request, session) is not None:
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
