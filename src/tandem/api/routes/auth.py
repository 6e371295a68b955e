"""Sign-up, log-in, log-out, the CSRF token and the signed-in user. Web sessions live in an
HttpOnly, SameSite=Lax cookie, next to the CSRF cookie the page echoes on writes; the first
account becomes the admin."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Request, Response, status
from pydantic import Field

from tandem.api.csrf import CSRF_COOKIE, check_csrf, new_csrf_token, set_csrf_cookie
from tandem.api.deps import SESSION_COOKIE, CurrentUser, SessionDep, SettingsDep
from tandem.api.errors import ApiError
from tandem.api.schemas import Body, Public
from tandem.store import SiteSettingsRepo, UserRepo, WebSessionRepo
from tandem.store.users import SESSION_LIFETIME

router = APIRouter(prefix="/api/auth", tags=["auth"])

Email = Annotated[str, Field(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")]
Password = Annotated[str, Field(min_length=8, max_length=200)]


class SignupIn(Body):
    email: Email
    password: Password
    display_name: str = Field("", max_length=200)


class LoginIn(Body):
    email: Email
    password: Annotated[str, Field(min_length=1, max_length=200)]


class MeUpdate(Body):
    display_name: str | None = Field(None, min_length=1, max_length=200)
    use_for_training: bool | None = None
    memory_enabled: bool | None = None


class CsrfPublic(Public):
    token: str


class UserPublic(Public):
    id: str
    email: str
    display_name: str
    is_admin: bool
    is_disabled: bool
    use_for_training: bool
    memory_enabled: bool
    created_at: datetime


def _start_session(request: Request, response: Response, session: SessionDep, user_id: str):
    token = WebSessionRepo(session).create(user_id)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(SESSION_LIFETIME.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )
    # A fresh CSRF token per session: one read before log-in is useless after it.
    set_csrf_cookie(request, response, new_csrf_token())


@router.post("/signup", status_code=status.HTTP_201_CREATED, response_model=UserPublic)
def signup(
    body: SignupIn, request: Request, response: Response, session: SessionDep, settings: SettingsDep
):
    users = UserRepo(session)
    first = users.count() == 0
    allowed = SiteSettingsRepo(session).get("allow_signup", settings.allow_signup)
    if not first and not allowed:
        raise ApiError(403, "sign-up is closed on this server; ask an admin", "signup_closed")
    user = users.create(body.email, body.password, body.display_name, is_admin=first)
    _start_session(request, response, session, user.id)
    return user


@router.post("/login", response_model=UserPublic)
def login(body: LoginIn, request: Request, response: Response, session: SessionDep):
    user = UserRepo(session).authenticate(body.email, body.password)
    if user is None:
        raise ApiError(401, "wrong email or password, or the account is disabled", "bad_login")
    _start_session(request, response, session, user.id)
    return user


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
def logout(request: Request, session: SessionDep) -> Response:
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        sessions = WebSessionRepo(session)
        if sessions.user_for(token) is not None:
            check_csrf(request)  # another site must not be able to log the user out
        sessions.delete(token)
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(CSRF_COOKIE, path="/")
    return response


@router.get("/csrf", response_model=CsrfPublic)
def csrf_token(request: Request, response: Response):
    """The CSRF token to send as `X-CSRF-Token` on writes; sets the cookie when missing."""
    token = request.cookies.get(CSRF_COOKIE)
    if not token:
        token = new_csrf_token()
        set_csrf_cookie(request, response, token)
    return CsrfPublic(token=token)


@router.get("/me", response_model=UserPublic)
def me(user: CurrentUser):
    return user


@router.patch("/me", response_model=UserPublic)
def update_me(body: MeUpdate, user: CurrentUser, session: SessionDep):
    return UserRepo(session).update_me(
        user.id, body.display_name, body.use_for_training, body.memory_enabled
    )
