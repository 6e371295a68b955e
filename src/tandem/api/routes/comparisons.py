"""Blind comparisons: two answers to one turn, model names hidden until the vote; the chosen
answer becomes the conversation's continuation."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter, status
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from tandem.api.deps import ChatDep, CurrentUser, SessionDep, SignalWrites
from tandem.api.rate_limit import GenerationQuota
from tandem.api.schemas import MAX_TEXT, Body, Id, ModelId, SamplingIn
from tandem.api.schemas import sampling_overrides as overrides
from tandem.store import ComparisonRepo, ConversationRepo, GenerationRepo
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


class VoteIn(Body):
    verdict: Literal["a", "b", "tie", "both_bad"]


class Candidate(BaseModel):
    message_id: str
    content: str
    model: str | None = Field(description="hidden (null) until the vote")


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

    def candidate(message_id: str) -> Candidate:
        message = convs.get_message(user_id, message_id)
        model = None
        if row.verdict is not None and message.generation_id:
            model = gens.get(user_id, message.generation_id).model_version
        return Candidate(message_id=message.id, content=message.to_message().content, model=model)

    return ComparisonPublic(
        id=row.id,
        conversation_id=row.conversation_id,
        parent_message_id=row.parent_message_id,
        a=candidate(row.message_a_id),
        b=candidate(row.message_b_id),
        verdict=row.verdict,
        voted_at=row.voted_at,
        created_at=row.created_at,
    )


@router.post(
    "/conversations/{conversation_id}/comparisons",
    status_code=status.HTTP_201_CREATED,
    response_model=ComparisonPublic,
    dependencies=[GenerationQuota],
)
async def create_comparison(
    conversation_id: Id,
    body: ComparisonCreate,
    user: CurrentUser,
    chat: ChatDep,
    session: SessionDep,
):
    outcome = await chat.compare(
        user.id,
        conversation_id,
        text=body.content,
        parent_id=body.parent_id,
        models=(body.model_a, body.model_b),
        sampling=overrides(body.sampling),
    )
    return comparison_public(session, user.id, outcome.comparison)


@router.get("/comparisons", response_model=list[ComparisonPublic])
def list_comparisons(user: CurrentUser, session: SessionDep):
    return [comparison_public(session, user.id, c) for c in ComparisonRepo(session).list(user.id)]


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
