"""Assistant profiles (CRUD) and the user's custom instructions (GET/PUT).

A profile is the owner's; a shared one is usable by everyone and changeable by its owner or
an admin (others get 403; a private profile of someone else is 404). Listings carry `owned`
and `can_edit` so the UI can offer the right buttons."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Response, status
from pydantic import Field

from tandem.api.deps import CurrentUser, SessionDep
from tandem.api.errors import ApiError
from tandem.api.schemas import Body, Id, ModelId, Public, SamplingIn, ToolSwitch
from tandem.store import CustomInstructionsRepo, FileRepo, ProfileRepo
from tandem.store.models import Profile, User

router = APIRouter(prefix="/api", tags=["profiles"])

Starters = list[Annotated[str, Field(min_length=1, max_length=500)]]
# A profile switches tools on for every chat started from it.
ToolName = ToolSwitch
MAX_TOOLS = 10
MAX_KNOWLEDGE_FILES = 20


class ProfileCreate(Body):
    name: str = Field(min_length=1, max_length=100)
    description: str = Field("", max_length=2000)
    instructions: str = Field("", max_length=20_000)
    starters: Starters = Field(default_factory=list, max_length=10)
    model_version: ModelId | None = None
    sampling: SamplingIn | None = None
    shared: bool = False
    tools: list[ToolName] = Field(default_factory=list, max_length=MAX_TOOLS)
    knowledge_file_ids: list[Id] = Field(default_factory=list, max_length=MAX_KNOWLEDGE_FILES)


class ProfileUpdate(Body):
    name: str | None = Field(None, min_length=1, max_length=100)
    description: str | None = Field(None, max_length=2000)
    instructions: str | None = Field(None, max_length=20_000)
    starters: Starters | None = Field(None, max_length=10)
    model_version: ModelId | None = None
    sampling: SamplingIn | None = None
    shared: bool | None = None
    tools: list[ToolName] | None = Field(None, max_length=MAX_TOOLS)
    knowledge_file_ids: list[Id] | None = Field(None, max_length=MAX_KNOWLEDGE_FILES)


class ProfilePublic(Public):
    id: str
    name: str
    description: str
    instructions: str
    starters: list[str]
    model_version: str | None
    sampling: dict[str, Any]
    shared: bool
    tools: list[str]
    knowledge_file_ids: list[str]
    owned: bool
    is_mine: bool = Field(description="same as `owned` (kept for older clients)")
    can_edit: bool = Field(description="the owner, or an admin for a shared profile")
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: Profile, user: User) -> ProfilePublic:
        derived = {"owned", "is_mine", "can_edit"}
        fields = {name: getattr(row, name) for name in cls.model_fields if name not in derived}
        owned = row.owner_id == user.id
        can_edit = owned or (row.shared and user.is_admin)
        return cls(**fields, owned=owned, is_mine=owned, can_edit=can_edit)


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
    # An explicit null leaves a field as it is; only the model may be unset (default model).
    fields = {k: v for k, v in fields.items() if v is not None or k == "model_version"}
    if "sampling" in body.model_fields_set:
        fields["sampling"] = body.sampling.overrides() if body.sampling else {}
    return fields


def _check_knowledge(session: SessionDep, owner_id: str, fields: dict[str, Any]) -> None:
    """Knowledge files must be the profile owner's, queued, ingesting or ready; any other id
    (missing, someone else's, failed) is 422, the same answer for each so ids reveal nothing."""
    ids = fields.get("knowledge_file_ids") or []
    unknown = [i for i in ids if i not in FileRepo(session).usable_ids(owner_id, ids)]
    if unknown:
        raise ApiError(422, f"unknown knowledge file id(s): {', '.join(unknown)}", "unknown_file")


@router.post("/profiles", status_code=status.HTTP_201_CREATED, response_model=ProfilePublic)
def create_profile(body: ProfileCreate, user: CurrentUser, session: SessionDep):
    fields = _fields(body)
    _check_knowledge(session, user.id, fields)
    row = ProfileRepo(session).create(user.id, fields.pop("name", body.name), **fields)
    return ProfilePublic.of(row, user)


@router.get("/profiles", response_model=list[ProfilePublic])
def list_profiles(user: CurrentUser, session: SessionDep):
    """My profiles and everyone's shared ones."""
    return [ProfilePublic.of(p, user) for p in ProfileRepo(session).list(user.id)]


@router.get("/profiles/{profile_id}", response_model=ProfilePublic)
def get_profile(profile_id: Id, user: CurrentUser, session: SessionDep):
    return ProfilePublic.of(ProfileRepo(session).get(user.id, profile_id), user)


@router.patch("/profiles/{profile_id}", response_model=ProfilePublic)
def update_profile(profile_id: Id, body: ProfileUpdate, user: CurrentUser, session: SessionDep):
    fields = _fields(body)
    if fields.get("knowledge_file_ids"):
        owner_id = ProfileRepo(session).get(user.id, profile_id).owner_id
        _check_knowledge(session, owner_id, fields)
    row = ProfileRepo(session).update(user.id, profile_id, **fields)
    return ProfilePublic.of(row, user)


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
