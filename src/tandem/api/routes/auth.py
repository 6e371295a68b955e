"""Sign-up, log-in, log-out (here or everywhere), password change, the CSRF token and the
signed-in user. Web sessions live in an HttpOnly, SameSite=Lax cookie, next to the CSRF cookie
the page echoes on writes; the first account becomes the admin. Log-in attempts are rate
limited per account and per client address (tandem.api.rate_limit)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status
from pydantic import Field

from tandem.api.csrf import (
    CSRF_COOKIE,
    check_csrf,
    csrf_token_for,
    new_csrf_token,
    set_csrf_cookie,
)
from tandem.api.deps import SESSION_COOKIE, CurrentUser, SessionDep, SettingsDep
from tandem.api.errors import ApiError
from tandem.api.rate_limit import check_login_rate
from tandem.api.schemas import Body, Public
from tandem.store import SiteSettingsRepo, UserRepo, WebSessionRepo
from tandem.store.credentials import PASSWORD_MAX_CHARS, PASSWORD_MIN_CHARS
from tandem.store.users import RESERVED_EMAIL_MESSAGE, is_reserved_email

router = APIRouter(prefix="/api/auth", tags=["auth"])

Email = Annotated[str, Field(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")]
# Length here; the common-password and context-word rules in tandem.store.credentials.
Password = Annotated[str, Field(min_length=PASSWORD_MIN_CHARS, max_length=PASSWORD_MAX_CHARS)]


class SignupIn(Body):
    email: Email
    password: Password
    display_name: str = Field("", max_length=200)


class LoginIn(Body):
    email: Email
    # Any length an old password may have had, bounded so hashing stays cheap to refuse.
    password: Annotated[str, Field(min_length=1, max_length=PASSWORD_MAX_CHARS)]


class PasswordChange(Body):
    current_password: Annotated[str, Field(min_length=1, max_length=PASSWORD_MAX_CHARS)]
    new_password: Password


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
    is_rater: bool
    is_disabled: bool
    use_for_training: bool
    memory_enabled: bool
    created_at: datetime


def _start_session(request: Request, response: Response, session: SessionDep, user_id: str):
    token = WebSessionRepo(session).create(user_id)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        # The browser may keep it this long; the server ends it sooner when it sits idle.
        max_age=int(request.app.state.settings.session_max_age.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )
    # The session's own CSRF token: one read before log-in is useless after it.
    set_csrf_cookie(request, response, csrf_token_for(token))


@router.post("/signup", status_code=status.HTTP_201_CREATED, response_model=UserPublic)
def signup(
    body: SignupIn, request: Request, response: Response, session: SessionDep, settings: SettingsDep
):
    if is_reserved_email(body.email):  # the TANDEM_ADMIN_API_KEY account's (tandem.store.users)
        raise ApiError(409, RESERVED_EMAIL_MESSAGE, "email_reserved")
    users = UserRepo(session)
    first = users.count() == 0
    allowed = SiteSettingsRepo(session).get("allow_signup", settings.allow_signup)
    if not first and not allowed:
        raise ApiError(403, "sign-up is closed on this server; ask an admin", "signup_closed")
    # Racing first sign-ups: one becomes the admin (a database-level claim), the rest not.
    user = first and users.create_first_admin(body.email, body.password, body.display_name)
    if not user:
        user = users.create(body.email, body.password, body.display_name)
    _start_session(request, response, session, user.id)
    return user


@router.post("/login", response_model=UserPublic)
def login(body: LoginIn, request: Request, response: Response, session: SessionDep):
    check_login_rate(request, body.email)
    user = UserRepo(session).authenticate(body.email, body.password)
    if user is None:
        raise ApiError(401, "wrong email or password, or the account is disabled", "bad_login")
    _start_session(request, response, session, user.id)
    return user


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
def logout(
    request: Request,
    session: SessionDep,
    everywhere: Annotated[
        bool, Query(description="end every web session of this account, not just this one")
    ] = False,
) -> Response:
    """End this web session on the server (the cookie stops working at once, even if a copy
    of it is replayed); with `everywhere=true`, every web session of the account. API keys
    are not sessions: revoke them under /api/keys."""
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        sessions = WebSessionRepo(session)
        user = sessions.user_for(token)
        if user is not None:
            check_csrf(request, token)  # another site must not be able to log the user out
            if everywhere:
                sessions.delete_all(user.id)
        sessions.delete(token)
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(CSRF_COOKIE, path="/")
    return response


@router.post("/password", status_code=status.HTTP_204_NO_CONTENT)
def change_password(
    body: PasswordChange, request: Request, user: CurrentUser, session: SessionDep
) -> Response:
    """Change my password (the current one is required). Every web session of the account
    ends, so a stolen cookie dies with the old password; a request made with the session
    cookie gets a fresh session (and CSRF token) in its place."""
    check_login_rate(request, user.email)  # guessing `current_password` is guessing a login
    UserRepo(session).change_password(user.id, body.current_password, body.new_password)
    WebSessionRepo(session).delete_all(user.id)
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    if request.cookies.get(SESSION_COOKIE) and not request.headers.get("authorization"):
        _start_session(request, response, session, user.id)
    return response


@router.get("/csrf", response_model=CsrfPublic)
def csrf_token(request: Request, response: Response):
    """The CSRF token to send as `X-CSRF-Token` on writes (the session's own), also set as
    the `tandem_csrf` cookie when the cookie is missing or holds another token."""
    session_token = request.cookies.get(SESSION_COOKIE)
    if session_token:
        token = csrf_token_for(session_token)
    else:  # no session yet: a placeholder that guards nothing until log-in replaces it
        token = request.cookies.get(CSRF_COOKIE) or new_csrf_token()
    if request.cookies.get(CSRF_COOKIE) != token:
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
