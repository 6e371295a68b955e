"""Assistant profiles (named instructions + model + sampling defaults) and per-user custom
instructions. A profile is readable by its owner, and by everyone when `shared`; its owner or
an admin can change a shared one, only its owner a private one (to anyone else a private
profile does not exist)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from tandem.core.errors import NotFound, PermissionDenied
from tandem.store.models import CustomInstructions, Profile, User, utcnow

PROFILE_FIELDS = (
    "name",
    "description",
    "instructions",
    "starters",
    "model_version",
    "sampling",
    "shared",
    "tools",
    "knowledge_file_ids",
)


class ProfileRepo:
    def __init__(self, session: Session) -> None:
        self.session = session

    def create(self, user_id: str, name: str, **fields: Any) -> Profile:
        unknown = set(fields) - set(PROFILE_FIELDS)
        if unknown:
            raise TypeError(f"unknown profile fields {sorted(unknown)}")
        row = Profile(owner_id=user_id, name=name, **fields)
        self.session.add(row)
        self.session.commit()
        return row

    def get(self, user_id: str, profile_id: str) -> Profile:
        """A profile the user may use: their own or a shared one."""
        row = self.session.scalar(
            select(Profile).where(
                Profile.id == profile_id,
                or_(Profile.owner_id == user_id, Profile.shared.is_(True)),
            )
        )
        if row is None:
            raise NotFound("profile", profile_id)
        return row

    def can_edit(self, user_id: str, row: Profile) -> bool:
        if row.owner_id == user_id:
            return True
        user = self.session.get(User, user_id)
        return bool(row.shared and user is not None and user.is_admin)

    def _editable(self, user_id: str, profile_id: str) -> Profile:
        row = self.get(user_id, profile_id)  # NotFound unless own or shared
        if not self.can_edit(user_id, row):
            raise PermissionDenied("only its owner or an admin can change a shared profile")
        return row

    def list(self, user_id: str) -> list[Profile]:
        return list(
            self.session.scalars(
                select(Profile)
                .where(or_(Profile.owner_id == user_id, Profile.shared.is_(True)))
                .order_by(Profile.name, Profile.id)
            )
        )

    def update(self, user_id: str, profile_id: str, **fields: Any) -> Profile:
        row = self._editable(user_id, profile_id)
        for key, value in fields.items():
            if key not in PROFILE_FIELDS:
                raise TypeError(f"unknown profile field {key!r}")
            setattr(row, key, value)
        row.updated_at = utcnow()
        self.session.commit()
        return row

    def delete(self, user_id: str, profile_id: str) -> None:
        self.session.delete(self._editable(user_id, profile_id))
        self.session.commit()


class CustomInstructionsRepo:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, user_id: str) -> CustomInstructions:
        """The user's instructions; empty and enabled when never set (not stored until then)."""
        row = self.session.get(CustomInstructions, user_id)
        if row is None:
            return CustomInstructions(
                user_id=user_id, about_user="", response_style="", enabled=True
            )
        return row

    def put(
        self, user_id: str, about_user: str, response_style: str, enabled: bool = True
    ) -> CustomInstructions:
        row = self.session.get(CustomInstructions, user_id)
        if row is None:
            row = CustomInstructions(user_id=user_id)
            self.session.add(row)
        row.about_user, row.response_style, row.enabled = about_user, response_style, enabled
        row.updated_at = utcnow()
        self.session.commit()
        return row
