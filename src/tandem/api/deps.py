"""Dependencies every router uses, as `Annotated` aliases: `SessionDep`, `CurrentUser`,
`AdminUser`, `ChatDep`, `CatalogDep`, `SettingsDep`.

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
from tandem.store import ApiKeyRepo, WebSessionRepo
from tandem.store.models import User

SESSION_COOKIE = "tandem_session"


def get_session(request: Request) -> Iterator[Session]:
    with request.app.state.session_factory() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


def get_current_user(request: Request, session: SessionDep) -> User:
    header = request.headers.get("authorization")
    if header:
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise ApiError(401, "use 'Authorization: Bearer <api key>'", "invalid_api_key")
        user = ApiKeyRepo(session).user_for(token)
        if user is None:
            raise ApiError(401, "invalid, revoked or disabled API key", "invalid_api_key")
        return user
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        user = WebSessionRepo(session).user_for(cookie)
        if user is not None:
            check_csrf(request)
            return user
    raise ApiError(401, "authentication required: log in or send an API key", "unauthenticated")


CurrentUser = Annotated[User, Depends(get_current_user)]


def get_admin_user(user: CurrentUser) -> User:
    if not user.is_admin:
        raise ApiError(403, "admin only", "forbidden")
    return user


AdminUser = Annotated[User, Depends(get_admin_user)]


def get_chat(request: Request) -> ChatService:
    return request.app.state.chat


def get_catalog(request: Request) -> ModelCatalog:
    return request.app.state.catalog


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


ChatDep = Annotated[ChatService, Depends(get_chat)]
CatalogDep = Annotated[ModelCatalog, Depends(get_catalog)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
