"""API keys: create (the full key is shown once), list, revoke."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Response, status
from pydantic import Field

from tandem.api.deps import CurrentUser, SessionDep
from tandem.api.schemas import Body, Id, Public
from tandem.store import ApiKeyRepo

router = APIRouter(prefix="/api/keys", tags=["api keys"])


class ApiKeyCreate(Body):
    name: str = Field("", max_length=100)


class ApiKeyPublic(Public):
    id: str
    name: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyPublic):
    key: str = Field(description="the full key; it is not stored and cannot be shown again")


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ApiKeyCreated)
def create_key(body: ApiKeyCreate, user: CurrentUser, session: SessionDep):
    row, key = ApiKeyRepo(session).create(user.id, body.name)
    return ApiKeyCreated(**ApiKeyPublic.model_validate(row).model_dump(), key=key)


@router.get("", response_model=list[ApiKeyPublic])
def list_keys(user: CurrentUser, session: SessionDep):
    return ApiKeyRepo(session).list(user.id)


@router.delete("/{key_id}", status_code=status.HTTP_204_NO_CONTENT)
def revoke_key(key_id: Id, user: CurrentUser, session: SessionDep) -> Response:
    ApiKeyRepo(session).revoke(user.id, key_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
