"""Blind comparisons: two answers to one turn, model names hidden until the vote.

Streamed (`"stream": true`), a comparison is these events, one JSON object per `data:` line:
    {"type": "user_message", "message": {...}}     when the request added a question
    {"type": "comparison_start"}                    two answers are on their way
    {"type": "comparison_delta", "side": "a"|"b", "text": "..."}   as each side's tokens arrive
    {"type": "tool", "side": "a"|"b", ...}          a tool of that side started or finished
    {"type": "comparison", "comparison": {...}, "memory_saved", "notice"}   both are stored
    {"type": "error", "error": {"message", "type", "code"}}
The conversation continues from answer A until the vote; voting right away makes the chosen
answer the continuation.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import aclosing
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from tandem.api.deps import ChatDep, CurrentUser, SessionDep, SignalWrites
from tandem.api.errors import ApiError, error_body
from tandem.api.rate_limit import GenerationQuota
from tandem.api.responses import NATIVE_STREAM
from tandem.api.schemas import MAX_TEXT, Body, Id, MessagePublic, ModelId, SamplingIn
from tandem.api.schemas import sampling_overrides as overrides
from tandem.api.sse import sse, sse_response, stream_error
from tandem.api.turns import MemorySaved
from tandem.chat import ComparisonTurn
from tandem.core.signals import Verdict
from tandem.engines import EngineError
from tandem.store import (
    ComparisonRepo,
    ConversationRepo,
    ExperimentRepo,
    GenerationRepo,
    SessionFactory,
)
from tandem.store.models import Comparison

router = APIRouter(prefix="/api", tags=["comparisons"])


class ComparisonCreate(Body):
    content: str | None = Field(
        None,
        min_length=1,
        max_length=MAX_TEXT,
        description="a new question; omit it to answer the user message `parent_id` again",
    )
    parent_id: Id | None = None
    model_a: ModelId | None = Field(None, description="default: the conversation's model")
    model_b: ModelId | None = Field(None, description="default: model_a (two samples)")
    sampling: SamplingIn | None = None
    stream: bool = False


class VoteIn(Body):
    verdict: Verdict


class Candidate(BaseModel):
    message_id: str
    content: str
    model: str | None = Field(description="hidden (null) until the vote")
    variant: str | None = Field(
        None, description="the behavior experiment's variant; hidden (null) until the vote"
    )


class ComparisonPublic(BaseModel):
    id: str
    conversation_id: str
    parent_message_id: str
    a: Candidate
    b: Candidate
    verdict: str | None
    voted_at: datetime | None
    created_at: datetime


def comparison_public(session: Session, user_id: str, row: Comparison) -> ComparisonPublic:
    convs, gens = ConversationRepo(session), GenerationRepo(session)
    variants = None
    if row.verdict is not None:
        variants = ExperimentRepo(session).variant_names(row.id)

    def candidate(message_id: str, side: int) -> Candidate:
        message = convs.get_message(user_id, message_id)
        model = None
        if row.verdict is not None and message.generation_id:
            model = gens.get(user_id, message.generation_id).model_version
        return Candidate(
            message_id=message.id,
            content=message.to_message().content,
            model=model,
            variant=variants[side] if variants else None,
        )

    return ComparisonPublic(
        id=row.id,
        conversation_id=row.conversation_id,
        parent_message_id=row.parent_message_id,
        a=candidate(row.message_a_id, 0),
        b=candidate(row.message_b_id, 1),
        verdict=row.verdict,
        voted_at=row.voted_at,
        created_at=row.created_at,
    )


class ComparisonTurnPublic(BaseModel):
    """The answer to a turn drawn for a comparison: two blind answers to vote on."""

    comparison: ComparisonPublic
    memory_saved: MemorySaved | None = None
    notice: str | None = None


def _finished(sessions: SessionFactory, user_id: str, pair: ComparisonTurn) -> ComparisonTurnPublic:
    if pair.comparison is None:
        raise ApiError(502, "the two answers did not both finish; try again", "engine_error")
    with sessions() as session:
        comparison = comparison_public(session, user_id, pair.comparison)
    return ComparisonTurnPublic(
        comparison=comparison, memory_saved=MemorySaved.of(pair.memory_saved), notice=pair.notice
    )


async def _comparison_events(
    pair: ComparisonTurn, sessions: SessionFactory, user_id: str
) -> AsyncGenerator[str, None]:
    if pair.user_message is not None:
        message = MessagePublic.of(pair.user_message).model_dump(mode="json")
        yield sse({"type": "user_message", "message": message})
    yield sse({"type": "comparison_start"})
    try:
        async with aclosing(pair.stream()) as chunks:
            async for side, chunk in chunks:
                if chunk.event is not None:
                    yield sse({**chunk.event, "side": side})
                if chunk.text:
                    yield sse({"type": "comparison_delta", "side": side, "text": chunk.text})
        done = await run_in_threadpool(_finished, sessions, user_id, pair)
    except ApiError as exc:
        yield sse({"type": "error", **error_body(exc.status, exc.message, exc.code)})
        return
    except Exception as exc:  # any failure, not only the engine's: the client is told
        yield sse({"type": "error", **stream_error(exc)})
        return
    yield sse({"type": "comparison", **done.model_dump(mode="json")})


async def respond_comparison(
    pair: ComparisonTurn, stream: bool, request: Request, user_id: str
) -> ComparisonTurnPublic | StreamingResponse:
    """A comparison answered as JSON when both answers are done, or streamed side by side."""
    sessions = request.app.state.session_factory
    if stream:
        return sse_response(_comparison_events(pair, sessions, user_id), request)
    try:
        await pair.run()
    except EngineError as exc:
        raise ApiError(502, f"the model backend failed: {exc}", "engine_error") from exc
    return await run_in_threadpool(_finished, sessions, user_id, pair)


@router.post(
    "/conversations/{conversation_id}/comparisons",
    status_code=status.HTTP_201_CREATED,
    response_model=ComparisonPublic,
    responses=NATIVE_STREAM,
    dependencies=[GenerationQuota],
)
async def create_comparison(
    conversation_id: Id, body: ComparisonCreate, user: CurrentUser, chat: ChatDep, request: Request
) -> Any:
    """Two blind answers to a new question (`content`) or to the user message `parent_id`.
    JSON: the comparison once both answers are done; streamed: both sides as they come."""
    pair = await run_in_threadpool(
        chat.compare,
        user.id,
        conversation_id,
        body.content,
        body.parent_id,
        (body.model_a, body.model_b),
        overrides(body.sampling),
    )
    result = await respond_comparison(pair, body.stream, request, user.id)
    return result.comparison if isinstance(result, ComparisonTurnPublic) else result


@router.get("/comparisons", response_model=list[ComparisonPublic])
def list_comparisons(user: CurrentUser, session: SessionDep, conversation_id: Id | None = None):
    """Newest first (the last 100), or every comparison of one conversation."""
    rows = ComparisonRepo(session).list(
        user.id, limit=10_000 if conversation_id else 100, conversation_id=conversation_id
    )
    return [comparison_public(session, user.id, c) for c in rows]


@router.get("/comparisons/{comparison_id}", response_model=ComparisonPublic)
def get_comparison(comparison_id: Id, user: CurrentUser, session: SessionDep):
    return comparison_public(session, user.id, ComparisonRepo(session).get(user.id, comparison_id))


@router.post("/comparisons/{comparison_id}/vote", response_model=ComparisonPublic)
def vote(
    comparison_id: Id, body: VoteIn, user: CurrentUser, session: SessionDep, writes: SignalWrites
):
    # Shares a commit with concurrent ratings and votes (tandem.store.group_commit); the answer
    # is built after that commit, from this request's own session.
    row = writes.run(lambda s: ComparisonRepo(s).vote(user.id, comparison_id, body.verdict))
    return comparison_public(session, user.id, row)
