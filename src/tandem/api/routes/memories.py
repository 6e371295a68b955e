"""Memories: what the assistant keeps in mind across chats (list, add, edit, delete). The
switches are `memory_enabled` on /api/auth/me and `use_memory` on each conversation."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Response, status
from pydantic import Field

from tandem.api.deps import CurrentUser, SessionDep
from tandem.api.schemas import Body, Id, Public
from tandem.store import MemoryRepo
from tandem.store.memories import MAX_MEMORY_CHARS

router = APIRouter(prefix="/api/memories", tags=["memories"])


class MemoryIn(Body):
    text: str = Field(min_length=1, max_length=MAX_MEMORY_CHARS)


class MemoryPublic(Public):
    id: str
    text: str
    created_at: datetime
    updated_at: datetime


@router.get("", response_model=list[MemoryPublic])
def list_memories(user: CurrentUser, session: SessionDep):
    return MemoryRepo(session).list(user.id)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=MemoryPublic)
def create_memory(body: MemoryIn, user: CurrentUser, session: SessionDep):
    return MemoryRepo(session).create(user.id, body.text)


@router.patch("/{memory_id}", response_model=MemoryPublic)
def update_memory(memory_id: Id, body: MemoryIn, user: CurrentUser, session: SessionDep):
    return MemoryRepo(session).update(user.id, memory_id, body.text)


@router.delete("/{memory_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_memory(memory_id: Id, user: CurrentUser, session: SessionDep) -> Response:
    MemoryRepo(session).delete(user.id, memory_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
