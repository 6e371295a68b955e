"""Administration: list users, disable or re-enable one, make or unmake an admin or a rater, set a
temporary password; site settings (open or close
sign-up, the share of turns answered as blind comparisons and by which two models)."""

from __future__ import annotations

from fastapi import APIRouter, Response, status
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from tandem.api.deps import AdminUser, CatalogDep, SessionDep, SettingsDep
from tandem.api.errors import ApiError
from tandem.api.routes.auth import Password, UserPublic
from tandem.api.schemas import Body, Id, ModelId
from tandem.core.settings import Settings
from tandem.store import SiteSettingsRepo, UserRepo

router = APIRouter(prefix="/api", tags=["admin"])


class UserAdminUpdate(Body):
    """Only the fields sent change; an admin cannot disable themselves or drop their own role."""

    is_disabled: bool | None = None
    is_admin: bool | None = None
    is_rater: bool | None = None


class PasswordReset(Body):
    new_password: Password = Field(description="a temporary password to hand to the user")


class SiteSettingsPublic(BaseModel):
    allow_signup: bool
    comparison_rate: float
    comparison_models: list[str] | None


class SiteSettingsUpdate(Body):
    """Only the fields sent change."""

    allow_signup: bool | None = None
    comparison_rate: float | None = Field(
        None, ge=0, le=1, description="share of user turns answered as a blind comparison"
    )
    comparison_models: list[ModelId] | None = Field(
        None,
        min_length=2,
        max_length=2,
        description="the two models compared; null: two samples of the chat's model",
    )


def _site_settings(session: Session, settings: Settings) -> SiteSettingsPublic:
    site = SiteSettingsRepo(session)
    models = site.get("comparison_models")
    return SiteSettingsPublic(
        allow_signup=bool(site.get("allow_signup", settings.allow_signup)),
        comparison_rate=site.get_float("comparison_rate"),
        comparison_models=list(models) if isinstance(models, list) else None,
    )


@router.get("/users", response_model=list[UserPublic])
def list_users(admin: AdminUser, session: SessionDep):
    return UserRepo(session).list(admin.id)


@router.patch("/users/{user_id}", response_model=UserPublic)
def update_user(user_id: Id, body: UserAdminUpdate, admin: AdminUser, session: SessionDep):
    if body.is_disabled is None and body.is_admin is None and body.is_rater is None:
        raise ApiError(422, "send is_disabled, is_admin or is_rater", "invalid_value")
    users = UserRepo(session)
    user = users.get(user_id)
    if body.is_admin is not None:
        user = users.set_admin(admin.id, user_id, body.is_admin)
    if body.is_rater is not None:
        user = users.set_rater(admin.id, user_id, body.is_rater)
    if body.is_disabled is not None:
        user = users.set_disabled(admin.id, user_id, body.is_disabled)
    return user


@router.post("/users/{user_id}/password", status_code=status.HTTP_204_NO_CONTENT)
def reset_user_password(
    user_id: Id, body: PasswordReset, admin: AdminUser, session: SessionDep
) -> Response:
    """Set a temporary password for another user (yours: POST /api/auth/password); every
    web session of theirs ends, so whoever held one must sign in with the new password."""
    UserRepo(session).reset_password(admin.id, user_id, body.new_password)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/admin/settings", response_model=SiteSettingsPublic)
def get_site_settings(_: AdminUser, session: SessionDep, settings: SettingsDep):
    return _site_settings(session, settings)


@router.put("/admin/settings", response_model=SiteSettingsPublic)
def put_site_settings(
    body: SiteSettingsUpdate,
    admin: AdminUser,
    session: SessionDep,
    settings: SettingsDep,
    catalog: CatalogDep,
):
    for model in body.comparison_models or ():
        if model not in catalog:
            raise ApiError(422, f"comparison_models: unknown model {model!r}", "invalid_value")
    site = SiteSettingsRepo(session)
    # `comparison_models: null` sent explicitly resets to "two samples of the chat's model".
    for key in body.model_fields_set:
        value = getattr(body, key)
        if value is None and key != "comparison_models":
            continue
        site.set(admin.id, key, value)
    return _site_settings(session, settings)
