"""Dependencies every router uses, as `Annotated` aliases: `SessionDep`, `CurrentUser`,
`AdminUser`, `RaterUser`, `ChatDep`, `CatalogDep`, `SettingsDep`, `SignalWrites` (group commit for
ratings and votes, `tandem.store.group_commit`), `LoraAdaptersDep` (vLLM's LoRA adapters,
`tandem.engines.lora`).

Authentication: `Authorization: Bearer tk-…` (API keys, for /v1 and /api) or the HttpOnly
session cookie the web UI gets from /api/auth/login. Disabled users and revoked keys fail at
once because both lookups check them on every request. A write authenticated by the cookie
must also pass the CSRF check (`tandem.api.csrf`); one with an API key needs none.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from tandem.api.csrf import check_csrf
from tandem.api.errors import ApiError
from tandem.chat import ChatService
from tandem.core.settings import Settings
from tandem.engines import ModelCatalog
from tandem.engines.lora import LoraAdapters
from tandem.store import ApiKeyRepo, WebSessionRepo
from tandem.store.group_commit import GroupCommit
from tandem.store.models import User

SESSION_COOKIE = "tandem_session"


def get_session(request: Request) -> Iterator[Session]:
    with request.app.state.session_factory() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


async def get_signal_writes(request: Request) -> GroupCommit:
    # async: a dependency that only reads app state need not hop to the thread pool.
    return request.app.state.signal_writes


SignalWrites = Annotated[GroupCommit, Depends(get_signal_writes)]


# Ways of presenting a key that tandem does not accept. A request using one gets 401 rather
# than being served as if it carried no key (and so, say, by a session cookie beside it).
REFUSED_KEY_HEADERS = ("x-api-key", "api-key")
REFUSED_KEY_PARAMS = ("api_key", "key", "token", "access_token")


def credential(request: Request) -> tuple[str, str] | None:
    """The credential a request presents: ("key", api key), ("cookie", session token) or None.
    The one place that decides how a key may be presented (`Authorization: Bearer` only)."""
    if any(request.headers.get(h) for h in REFUSED_KEY_HEADERS) or any(
        p in request.query_params for p in REFUSED_KEY_PARAMS
    ):
        raise ApiError(401, "send the API key as 'Authorization: Bearer <key>'", "invalid_api_key")
    header = request.headers.get("authorization")
    if header:
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise ApiError(401, "use 'Authorization: Bearer <api key>'", "invalid_api_key")
        return ("key", token)
    cookie = request.cookies.get(SESSION_COOKIE)
    return ("cookie", cookie) if cookie else None


def user_for_credential(session: Session, cred: tuple[str, str]) -> User | None:
    """The enabled user behind an unrevoked key or a live session, else None."""
    kind, token = cred
    if kind == "key":
        return ApiKeyRepo(session).user_for(token)
    return WebSessionRepo(session).user_for(token)


def still_authenticated(request: Request) -> bool:
    """Whether the credential this request was admitted with still names an enabled user.
    Long streams call it as they go, so a revoked key or a disabled user stops them at once."""
    cred = getattr(request.state, "credential", None)
    if cred is None:
        return True  # a route without authentication
    with request.app.state.session_factory() as session:
        return user_for_credential(session, cred) is not None


def get_current_user(request: Request, session: SessionDep) -> User:
    cred = credential(request)
    if cred is not None:
        user = user_for_credential(session, cred)
        if cred[0] == "key" and user is None:
            raise ApiError(401, "invalid, revoked or disabled API key", "invalid_api_key")
        if user is not None:
            if cred[0] == "cookie":
                check_csrf(request, cred[1])
            request.state.credential = cred
            # End the lookup's transaction: the session gives its pooled connection back now,
            # not when the request ends. A generating request lives for seconds and records
            # its answer through another session; holding this one too let 15 of them take
            # the whole pool and wait 30 s for a 16th (bench/load.py found it).
            session.commit()
            return user
    raise ApiError(401, "authentication required: log in or send an API key", "unauthenticated")


CurrentUser = Annotated[User, Depends(get_current_user)]


def get_admin_user(user: CurrentUser) -> User:
    if not user.is_admin:
        raise ApiError(403, "admin only", "forbidden")
    return user


AdminUser = Annotated[User, Depends(get_admin_user)]


def get_rater_user(user: CurrentUser) -> User:
    """Raters only (an admin is not one until made one): their queue and assignments."""
    if not user.is_rater:
        raise ApiError(403, "raters only", "forbidden")
    return user


RaterUser = Annotated[User, Depends(get_rater_user)]


def get_chat(request: Request) -> ChatService:
    return request.app.state.chat


def get_catalog(request: Request) -> ModelCatalog:
    return request.app.state.catalog


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_lora_adapters(request: Request) -> LoraAdapters:
    return request.app.state.lora_adapters


ChatDep = Annotated[ChatService, Depends(get_chat)]
CatalogDep = Annotated[ModelCatalog, Depends(get_catalog)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
LoraAdaptersDep = Annotated[LoraAdapters, Depends(get_lora_adapters)]
