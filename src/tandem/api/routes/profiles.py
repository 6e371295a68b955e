"""Assistant profiles (CRUD) and the user's custom instructions (GET/PUT)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Response, status
from pydantic import Field

from tandem.api.deps import CurrentUser, SessionDep
from tandem.api.schemas import Body, Id, ModelId, Public, SamplingIn
from tandem.store import CustomInstructionsRepo, ProfileRepo
from tandem.store.models import Profile

router = APIRouter(prefix="/api", tags=["profiles"])

Starters = list[Annotated[str, Field(min_length=1, max_length=500)]]


class ProfileCreate(Body):
    name: str = Field(min_length=1, max_length=100)
    description: str = Field("", max_length=2000)
    instructions: str = Field("", max_length=20_000)
    starters: Starters = Field(default_factory=list, max_length=10)
    model_version: ModelId | None = None
    sampling: SamplingIn | None = None
    shared: bool = False


class ProfileUpdate(Body):
    name: str | None = Field(None, min_length=1, max_length=100)
    description: str | None = Field(None, max_length=2000)
    instructions: str | None = Field(None, max_length=20_000)
    starters: Starters | None = Field(None, max_length=10)
    model_version: ModelId | None = None
    sampling: SamplingIn | None = None
    shared: bool | None = None


class ProfilePublic(Public):
    id: str
    name: str
    description: str
    instructions: str
    starters: list[str]
    model_version: str | None
    sampling: dict[str, Any]
    shared: bool
    is_mine: bool
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: Profile, user_id: str) -> ProfilePublic:
        fields = {name: getattr(row, name) for name in cls.model_fields if name != "is_mine"}
        return cls(**fields, is_mine=row.owner_id == user_id)


class InstructionsIn(Body):
    about_user: str = Field("", max_length=5000)
    response_style: str = Field("", max_length=5000)
    enabled: bool = True


class InstructionsPublic(Public):
    about_user: str
    response_style: str
    enabled: bool


def _fields(body: ProfileCreate | ProfileUpdate) -> dict[str, Any]:
    fields = body.model_dump(exclude_unset=True, exclude={"sampling"})
    if "sampling" in body.model_fields_set:
        fields["sampling"] = body.sampling.overrides() if body.sampling else {}
    return fields


@router.post("/profiles", status_code=status.HTTP_201_CREATED, response_model=ProfilePublic)
def create_profile(body: ProfileCreate, user: CurrentUser, session: SessionDep):
    fields = _fields(body)
    row = ProfileRepo(session).create(user.id, fields.pop("name", body.name), **fields)
    return ProfilePublic.of(row, user.id)


@router.get("/profiles", response_model=list[ProfilePublic])
def list_profiles(user: CurrentUser, session: SessionDep):
    return [ProfilePublic.of(p, user.id) for p in ProfileRepo(session).list(user.id)]


@router.get("/profiles/{profile_id}", response_model=ProfilePublic)
def get_profile(profile_id: Id, user: CurrentUser, session: SessionDep):
    return ProfilePublic.of(ProfileRepo(session).get(user.id, profile_id), user.id)


@router.patch("/profiles/{profile_id}", response_model=ProfilePublic)
def update_profile(profile_id: Id, body: ProfileUpdate, user: CurrentUser, session: SessionDep):
    row = ProfileRepo(session).update(user.id, profile_id, **_fields(body))
    return ProfilePublic.of(row, user.id)


@router.delete("/profiles/{profile_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_profile(profile_id: Id, user: CurrentUser, session: SessionDep) -> Response:
    ProfileRepo(session).delete(user.id, profile_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/custom-instructions", response_model=InstructionsPublic)
def get_instructions(user: CurrentUser, session: SessionDep):
    return CustomInstructionsRepo(session).get(user.id)


@router.put("/custom-instructions", response_model=InstructionsPublic)
def put_instructions(body: InstructionsIn, user: CurrentUser, session: SessionDep):
    return CustomInstructionsRepo(session).put(
        user.id, body.about_user, body.response_style, body.enabled
    )
