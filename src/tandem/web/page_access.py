"""Who may see a page: `PageUser` (a live session cookie), `AdminPageUser` (an admin's) and
`RaterPageUser` (a rater's: /rate).

    @router.get("/admin/evals", response_class=HTMLResponse)
    def admin_evals_page(request: Request, user: AdminPageUser) -> Response: ...

A visitor without a live session is sent to /login, and back to the page after signing in; a
signed-in user who is not an admin gets a 403 page. Pages read the session cookie only, never
an API key: what a page shows beyond who is signed in comes from the API, which applies its own
rule to every call (`tandem.api.access`, `tandem.api.deps.AdminUser`).
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from tandem.api.deps import SESSION_COOKIE, SessionDep
from tandem.store import WebSessionRepo
from tandem.store.models import User

ADMINS_ONLY_PAGE = "<!doctype html><title>tandem</title><p>Admins only.</p>"
RATERS_ONLY_PAGE = (
    "<!doctype html><title>tandem</title><p>Raters only: an admin makes an account a rater.</p>"
)


class LoginRequired(Exception):
    """Raised by `PageUser`: the visitor is redirected to /login."""


class AdminsOnly(Exception):
    """Raised by `AdminPageUser`: the signed-in user gets the 403 page."""


def session_user(request: Request, session: SessionDep) -> User | None:
    """The enabled user behind the request's live session cookie, else None."""
    token = request.cookies.get(SESSION_COOKIE)
    return WebSessionRepo(session).user_for(token) if token else None


def get_page_user(request: Request, session: SessionDep) -> User:
    user = session_user(request, session)
    if user is None:
        raise LoginRequired
    return user


PageUser = Annotated[User, Depends(get_page_user)]


def get_admin_page_user(user: PageUser) -> User:
    if not user.is_admin:
        raise AdminsOnly
    return user


AdminPageUser = Annotated[User, Depends(get_admin_page_user)]


class RatersOnly(Exception):
    """Raised by `RaterPageUser`: the signed-in user is not a rater and gets the 403 page."""


def get_rater_page_user(user: PageUser) -> User:
    if not user.is_rater:
        raise RatersOnly
    return user


RaterPageUser = Annotated[User, Depends(get_rater_page_user)]


async def _to_login(request: Request, _: Exception) -> RedirectResponse:
    target = request.url.path
    nxt = f"?next={quote(target, safe='/')}" if target != "/" else ""
    return RedirectResponse(f"/login{nxt}", status_code=303)


async def _admins_only(_: Request, __: Exception) -> HTMLResponse:
    return HTMLResponse(ADMINS_ONLY_PAGE, status_code=403)


async def _raters_only(_: Request, __: Exception) -> HTMLResponse:
    return HTMLResponse(RATERS_ONLY_PAGE, status_code=403)


def install_page_access(app: FastAPI) -> None:
    """Answer the page dependencies' refusals with a redirect or a 403 page, not the API's JSON."""
    app.add_exception_handler(LoginRequired, _to_login)
    app.add_exception_handler(AdminsOnly, _admins_only)
    app.add_exception_handler(RatersOnly, _raters_only)
