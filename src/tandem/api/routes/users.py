"""Administration: list users, disable or re-enable one, open or close sign-up."""

from __future__ import annotations

from fastapi import APIRouter

from tandem.api.deps import AdminUser, SessionDep, SettingsDep
from tandem.api.routes.auth import UserPublic
from tandem.api.schemas import Body, Id
from tandem.store import SiteSettingsRepo, UserRepo

router = APIRouter(prefix="/api", tags=["admin"])


class UserAdminUpdate(Body):
    is_disabled: bool


class SiteSettingsPublic(Body):
    allow_signup: bool


@router.get("/users", response_model=list[UserPublic])
def list_users(admin: AdminUser, session: SessionDep):
    return UserRepo(session).list(admin.id)


@router.patch("/users/{user_id}", response_model=UserPublic)
def update_user(user_id: Id, body: UserAdminUpdate, admin: AdminUser, session: SessionDep):
    return UserRepo(session).set_disabled(admin.id, user_id, body.is_disabled)


@router.get("/admin/settings", response_model=SiteSettingsPublic)
def get_site_settings(_: AdminUser, session: SessionDep, settings: SettingsDep):
    allow = SiteSettingsRepo(session).get("allow_signup", settings.allow_signup)
    return SiteSettingsPublic(allow_signup=bool(allow))


@router.put("/admin/settings", response_model=SiteSettingsPublic)
def put_site_settings(body: SiteSettingsPublic, admin: AdminUser, session: SessionDep):
    SiteSettingsRepo(session).set(admin.id, "allow_signup", body.allow_signup)
    return body
