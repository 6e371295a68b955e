"""Feedback: rate a generation made through /v1 (by its completion id), list my ratings,
withdraw one. Rating a conversation message lives in the messages router."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Response, status
from pydantic import Field

from tandem.api.deps import CurrentUser, SessionDep, SignalWrites
from tandem.api.schemas import Body, Id, Public
from tandem.core.signals import FeedbackReason, RatingValue
from tandem.store import FeedbackRepo
from tandem.store.feedback import Rating

router = APIRouter(prefix="/api", tags=["feedback"])


class FeedbackCreate(Body):
    rating: RatingValue
    reasons: list[FeedbackReason] = Field(default_factory=list, max_length=6)
    comment: str = Field("", max_length=2000)


class FeedbackPublic(Public):
    id: str
    generation_id: str
    message_id: str | None
    rating: str
    reasons: list[str]
    comment: str
    created_at: datetime


def generation_id_of(completion_id: str) -> str:
    """/v1 responses are identified as `chatcmpl-<generation id>`; accept either form."""
    return completion_id.removeprefix("chatcmpl-")


@router.post("/generations/{generation_id}/feedback", response_model=FeedbackPublic)
async def rate_generation(
    generation_id: Id, body: FeedbackCreate, user: CurrentUser, writes: SignalWrites
):
    write = Rating(
        user.id,
        body.rating,
        tuple(body.reasons),
        body.comment,
        generation_id=generation_id_of(generation_id),
    )
    # Answered once the batch holding this rating has committed (tandem.store.group_commit).
    return await asyncio.wrap_future(writes.submit(write))


@router.delete("/generations/{generation_id}/feedback", status_code=status.HTTP_204_NO_CONTENT)
def withdraw_generation_feedback(
    generation_id: Id, user: CurrentUser, session: SessionDep
) -> Response:
    FeedbackRepo(session).withdraw_generation(user.id, generation_id_of(generation_id))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/feedback", response_model=list[FeedbackPublic])
def list_feedback(
    user: CurrentUser,
    session: SessionDep,
    history: Annotated[bool, Query(description="include superseded and withdrawn")] = False,
):
    return FeedbackRepo(session).list(user.id, include_history=history)


@router.delete("/feedback/{feedback_id}", status_code=status.HTTP_204_NO_CONTENT)
def withdraw_feedback(feedback_id: Id, user: CurrentUser, session: SessionDep) -> Response:
    FeedbackRepo(session).withdraw(user.id, feedback_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
