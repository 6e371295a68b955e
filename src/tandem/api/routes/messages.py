"""Acting on one message: regenerate an answer, edit-and-branch a question, rate an answer,
improve (rewrite) an answer, remember a message, report what the user did with an answer
(an implicit signal, such as a copy)."""

from __future__ import annotations

import asyncio
from datetime import datetime

from fastapi import APIRouter, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from tandem.api.deps import ChatDep, CurrentUser, SessionDep, SignalWrites
from tandem.api.errors import ApiError
from tandem.api.rate_limit import GenerationQuota
from tandem.api.responses import NATIVE_STREAM
from tandem.api.routes.feedback import FeedbackCreate, FeedbackPublic
from tandem.api.routes.improvements import ImprovementCreated, ImprovementPublic
from tandem.api.routes.memories import MemoryPublic
from tandem.api.schemas import MAX_TEXT, Body, Id, MessagePublic, ModelId, SamplingIn
from tandem.api.schemas import sampling_overrides as overrides
from tandem.api.turns import TurnPublic, respond
from tandem.core.signals import ClientImplicitKind, ImplicitKind
from tandem.store import (
    ConversationRepo,
    FeedbackRepo,
    ImplicitSignalRepo,
    ImprovementRepo,
    MemoryRepo,
)
from tandem.store.feedback import Rating
from tandem.store.memories import MAX_MEMORY_CHARS

router = APIRouter(prefix="/api/messages", tags=["messages"])


class RegenerateIn(Body):
    model: ModelId | None = None
    sampling: SamplingIn | None = None
    stream: bool = False


class EditIn(RegenerateIn):
    content: str = Field(min_length=1, max_length=MAX_TEXT)


class ImplicitSignalIn(Body):
    kind: ClientImplicitKind


class ImplicitSignalPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    kind: ImplicitKind
    message_id: str | None
    generation_id: str
    created_at: datetime


class ImproveIn(Body):
    content: str = Field(min_length=1, max_length=MAX_TEXT, description="the better answer")


@router.post(
    "/{message_id}/regenerate",
    response_model=TurnPublic,
    responses=NATIVE_STREAM,
    dependencies=[GenerationQuota],
)
async def regenerate(
    message_id: Id, body: RegenerateIn, user: CurrentUser, chat: ChatDep, request: Request
):
    """A new answer beside assistant message `message_id`, to the same question."""
    turn = await run_in_threadpool(
        chat.regenerate, user.id, message_id, body.model, overrides(body.sampling)
    )
    return await respond(turn, body.stream, request)


@router.post(
    "/{message_id}/edit",
    response_model=TurnPublic,
    responses=NATIVE_STREAM,
    dependencies=[GenerationQuota],
)
async def edit(message_id: Id, body: EditIn, user: CurrentUser, chat: ChatDep, request: Request):
    """A new user message beside `message_id` (same parent), then its answer."""
    turn = await run_in_threadpool(
        chat.edit, user.id, message_id, body.content, body.model, overrides(body.sampling)
    )
    return await respond(turn, body.stream, request)


@router.post(
    "/{message_id}/continue",
    response_model=TurnPublic,
    responses=NATIVE_STREAM,
    dependencies=[GenerationQuota],
)
async def continue_answer(
    message_id: Id, body: RegenerateIn, user: CurrentUser, chat: ChatDep, request: Request
):
    """Go on writing assistant message `message_id` (cut by the token cap or a loop): the
    whole answer becomes a new version beside it, and the current one."""
    turn = await run_in_threadpool(
        chat.continue_answer, user.id, message_id, body.model, overrides(body.sampling)
    )
    return await respond(turn, body.stream, request)


@router.post("/{message_id}/feedback", response_model=FeedbackPublic)
async def rate_message(
    message_id: Id, body: FeedbackCreate, user: CurrentUser, writes: SignalWrites
):
    """Rate an answer; rating it again supersedes the previous rating."""

    write = Rating(user.id, body.rating, tuple(body.reasons), body.comment, message_id=message_id)
    # Answered once the batch holding this rating has committed (tandem.store.group_commit).
    return await asyncio.wrap_future(writes.submit(write))


@router.get("/{message_id}/feedback", response_model=FeedbackPublic)
def get_message_feedback(message_id: Id, user: CurrentUser, session: SessionDep):
    row = FeedbackRepo(session).current_for_message(user.id, message_id)
    if row is None:
        raise ApiError(404, "no feedback on this message", "not_found")
    return row


@router.delete("/{message_id}/feedback", status_code=status.HTTP_204_NO_CONTENT)
def withdraw_message_feedback(message_id: Id, user: CurrentUser, session: SessionDep) -> Response:
    FeedbackRepo(session).withdraw_message(user.id, message_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{message_id}/improve", status_code=status.HTTP_201_CREATED, response_model=ImprovementCreated
)
def improve(message_id: Id, body: ImproveIn, user: CurrentUser, session: SessionDep):
    """Rewrite an answer: a new sibling message with `content` becomes the current one, and
    the rewrite is stored as a signal against the answer's generation record."""
    row, message = ImprovementRepo(session).create(user.id, message_id, body.content)
    return ImprovementCreated(
        improvement=ImprovementPublic.model_validate(row), message=MessagePublic.of(message)
    )


@router.post(
    "/{message_id}/remember", status_code=status.HTTP_201_CREATED, response_model=MemoryPublic
)
def remember(message_id: Id, user: CurrentUser, session: SessionDep):
    """Save this message's text (cut to 1000 characters) as a memory."""
    message = ConversationRepo(session).get_message(user.id, message_id)
    text = message.to_message().content.strip()[:MAX_MEMORY_CHARS]
    return MemoryRepo(session).create(user.id, text)


@router.post(
    "/{message_id}/signals",
    status_code=status.HTTP_201_CREATED,
    response_model=ImplicitSignalPublic,
    responses={200: {"model": ImplicitSignalPublic, "description": "reported already: unchanged"}},
)
def report_signal(
    message_id: Id,
    body: ImplicitSignalIn,
    user: CurrentUser,
    session: SessionDep,
    response: Response,
):
    """Report what the user did with answer `message_id` (`copy`): 201 recorded; 200 when the
    same kind was reported on it in the last 10 minutes (a retry or a double click), with that
    signal. Only the owner, only assistant answers."""
    row, created = ImplicitSignalRepo(session).record_client(user.id, message_id, body.kind)
    if not created:
        response.status_code = status.HTTP_200_OK
    return row
