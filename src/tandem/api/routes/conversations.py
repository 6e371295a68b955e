"""Conversations: create, list (newest first, `?q=` searches titles), get the message tree,
rename, delete, and continue with a new message (JSON or streamed). On a share of turns set
by the admin (`comparison_rate`), the new message is answered with a blind comparison."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from pydantic import Field

from tandem.api.deps import CatalogDep, ChatDep, CurrentUser, SessionDep
from tandem.api.rate_limit import GenerationQuota
from tandem.api.responses import NATIVE_STREAM
from tandem.api.routes.comparisons import ComparisonTurnPublic, respond_comparison
from tandem.api.schemas import (
    MAX_TEXT,
    Body,
    Id,
    MessagePublic,
    ModelId,
    Public,
    SamplingIn,
    ToolSwitch,
)
from tandem.api.schemas import sampling_overrides as overrides
from tandem.api.turns import TurnPublic, respond
from tandem.chat import ComparisonTurn
from tandem.chat.branch import MAX_ATTACHMENTS
from tandem.store import ConversationRepo, GenerationRepo, ProfileRepo

router = APIRouter(prefix="/api/conversations", tags=["conversations"])


class ConversationCreate(Body):
    title: str = Field("", max_length=300)
    profile_id: Id | None = None
    system_prompt: str | None = Field(None, max_length=20_000)
    model: ModelId | None = None
    use_memory: bool = Field(True, description="list the user's memories in this chat's prompt")


class ConversationUpdate(Body):
    title: str | None = Field(None, max_length=300)
    system_prompt: str | None = Field(None, max_length=20_000)
    use_memory: bool | None = None


class ConversationPublic(Public):
    id: str
    title: str
    profile_id: str | None
    system_prompt: str | None
    model: str | None
    current_message_id: str | None
    use_memory: bool
    created_at: datetime
    updated_at: datetime


class ConversationTree(Body):
    conversation: ConversationPublic
    messages: list[MessagePublic]


class MessageCreate(Body):
    content: str = Field(min_length=1, max_length=MAX_TEXT)
    parent_id: Id | None = Field(None, description="default: the conversation's current message")
    model: ModelId | None = None
    sampling: SamplingIn | None = None
    stream: bool = False
    attachments: list[Id] = Field(
        default_factory=list,
        max_length=MAX_ATTACHMENTS,
        description="ids of the user's uploaded images (POST /api/uploads)",
    )
    tools: list[ToolSwitch] = Field(
        default_factory=list,
        max_length=4,
        description="tools switched on for this message besides the profile's: "
        "files, code, web, image",
    )


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ConversationPublic)
def create_conversation(
    body: ConversationCreate, user: CurrentUser, session: SessionDep, catalog: CatalogDep
):
    if body.profile_id is not None:
        ProfileRepo(session).get(user.id, body.profile_id)
    if body.model is not None:
        catalog.get(body.model)  # unknown model: 404 now, not on the first message
    return ConversationRepo(session).create(
        user.id, body.title, body.model, body.profile_id, body.system_prompt, body.use_memory
    )


@router.get("", response_model=list[ConversationPublic])
def list_conversations(
    user: CurrentUser,
    session: SessionDep,
    q: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
):
    return ConversationRepo(session).list(user.id, q, limit, offset)


@router.get("/{conversation_id}", response_model=ConversationTree)
def get_conversation(conversation_id: Id, user: CurrentUser, session: SessionDep):
    convs = ConversationRepo(session)
    conv = convs.get(user.id, conversation_id)
    rows = convs.tree(user.id, conversation_id)
    records = GenerationRepo(session).get_many(
        user.id, [m.generation_id for m in rows if m.generation_id]
    )
    messages = [MessagePublic.of(m, records.get(m.generation_id or "")) for m in rows]
    return ConversationTree(conversation=ConversationPublic.model_validate(conv), messages=messages)


@router.get("/{conversation_id}/branch", response_model=list[MessagePublic])
def get_branch(
    conversation_id: Id,
    user: CurrentUser,
    session: SessionDep,
    leaf: Annotated[str | None, Query(max_length=64)] = None,
):
    """The path root -> `leaf` (default: the current message): what the model would see."""
    convs = ConversationRepo(session)
    conv = convs.get(user.id, conversation_id)
    leaf_id = leaf or conv.current_message_id
    if leaf_id is None:
        return []
    path = convs.branch(user.id, leaf_id)
    if path[-1].conversation_id != conv.id:
        return []
    return [MessagePublic.of(m) for m in path]


@router.patch("/{conversation_id}", response_model=ConversationPublic)
def update_conversation(
    conversation_id: Id, body: ConversationUpdate, user: CurrentUser, session: SessionDep
):
    kwargs = body.model_dump(exclude_unset=True)
    return ConversationRepo(session).update(user.id, conversation_id, **kwargs)


@router.delete("/{conversation_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_conversation(conversation_id: Id, user: CurrentUser, session: SessionDep) -> Response:
    ConversationRepo(session).delete(user.id, conversation_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{conversation_id}/messages",
    response_model=TurnPublic | ComparisonTurnPublic,
    responses=NATIVE_STREAM,
    dependencies=[GenerationQuota],
)
async def send_message(
    conversation_id: Id,
    body: MessageCreate,
    user: CurrentUser,
    chat: ChatDep,
    request: Request,
):
    """Continue the conversation. Usually one answer (`TurnPublic`); on a share of turns
    (admin setting `comparison_rate`) a blind comparison instead (`{"comparison": …}`, or
    one `{"type": "comparison", …}` event when streaming)."""
    turn = await run_in_threadpool(
        chat.send,
        user.id,
        conversation_id,
        body.content,
        body.parent_id,
        body.model,
        overrides(body.sampling),
        body.attachments,
        body.tools,
    )
    if isinstance(turn, ComparisonTurn):
        return await respond_comparison(turn, body.stream, request, user.id)
    return await respond(turn, body.stream, request)


class CurrentIn(Body):
    message_id: Id


@router.put("/{conversation_id}/current", response_model=ConversationPublic)
def set_current_message(
    conversation_id: Id, body: CurrentIn, user: CurrentUser, session: SessionDep
):
    """Make `message_id`'s branch the current one, so the next message continues it (the web
    app calls this when the user pages to another answer or edit)."""
    convs = ConversationRepo(session)
    convs.set_current(user.id, conversation_id, body.message_id)
    return convs.get(user.id, conversation_id)
