"""Improved answers: list mine, withdraw one. Creating one is `POST
/api/messages/{id}/improve` (messages router). Withdrawing stamps the row, never deletes it:
a dataset may already have read it."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Response, status
from pydantic import BaseModel

from tandem.api.deps import CurrentUser, SessionDep
from tandem.api.schemas import Id, MessagePublic, Public
from tandem.store import ImprovementRepo

router = APIRouter(prefix="/api/improvements", tags=["improvements"])


class ImprovementPublic(Public):
    id: str
    conversation_id: str
    original_message_id: str
    original_generation_id: str
    improved_message_id: str
    text: str
    created_at: datetime
    withdrawn_at: datetime | None


class ImprovementCreated(BaseModel):
    improvement: ImprovementPublic
    message: MessagePublic


@router.get("", response_model=list[ImprovementPublic])
def list_improvements(
    user: CurrentUser,
    session: SessionDep,
    history: Annotated[bool, Query(description="include withdrawn ones")] = False,
):
    return ImprovementRepo(session).list(user.id, include_withdrawn=history)


@router.delete("/{improvement_id}", status_code=status.HTTP_204_NO_CONTENT)
def withdraw_improvement(improvement_id: Id, user: CurrentUser, session: SessionDep) -> Response:
    ImprovementRepo(session).withdraw(user.id, improvement_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
