"""Answering a chat turn over HTTP: JSON when it is done, or server-sent events as it streams.

Stream events, one JSON object per `data:` line:
    {"type": "user_message", "message": {...}, "notice"?}   when the turn added a user message
    {"type": "notice", "notice": "..."}             first, when there is a notice and no
                                                    user_message event
    {"type": "tool", "tool": "web", "status": "running"}   a tool switched on for the turn
                                                    (or called by the model) started
    {"type": "tool", "status": "done"|"error", "tool", "arguments", "content", "citations",
     "attachments", "display", "error", "duration_s"}  ... and finished
    {"type": "delta", "text": "..."}                 as tokens arrive
    {"type": "done", "message": {...}, "generation": {...}, "memory_saved", "notice"}
    {"type": "title", "title": "..."}              after the first answer: the chat's new title
    {"type": "error", "error": {"message", "type", "code"}}
`memory_saved` is `{"id", "text"}` when the user message asked to remember something, else
null; `notice` is a sentence to show beside the answer (the model could not see the images),
else null.
A client that disconnects mid-stream cancels generation; the partial answer is stored with
finish_reason "cancelled".
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from contextlib import aclosing

from fastapi import Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from tandem.api.errors import ApiError
from tandem.api.schemas import GenerationPublic, MessagePublic
from tandem.api.sse import sse, sse_response, stream_error
from tandem.chat import Turn
from tandem.engines import EngineError
from tandem.store.models import Memory


class MemorySaved(BaseModel):
    id: str
    text: str

    @classmethod
    def of(cls, row: Memory | None) -> MemorySaved | None:
        return None if row is None else cls(id=row.id, text=row.text)


class TurnPublic(BaseModel):
    user_message: MessagePublic | None
    assistant_message: MessagePublic
    generation: GenerationPublic
    memory_saved: MemorySaved | None = None
    notice: str | None = None


def _done(turn: Turn) -> TurnPublic:
    assert turn.assistant_message is not None and turn.generation is not None
    return TurnPublic(
        user_message=MessagePublic.of(turn.user_message) if turn.user_message else None,
        assistant_message=MessagePublic.of(turn.assistant_message, turn.generation),
        generation=GenerationPublic.of(turn.generation),
        memory_saved=MemorySaved.of(turn.memory_saved),
        notice=turn.notice,
    )


async def _events(turn: Turn) -> AsyncGenerator[str, None]:
    if turn.user_message is not None:
        message = MessagePublic.of(turn.user_message).model_dump(mode="json")
        first: dict = {"type": "user_message", "message": message}
        if turn.notice:
            first["notice"] = turn.notice
        yield sse(first)
    elif turn.notice:
        yield sse({"type": "notice", "notice": turn.notice})
    try:
        async with aclosing(turn.stream()) as chunks:
            async for chunk in chunks:
                if chunk.event is not None:
                    yield sse(chunk.event)
                if chunk.text:
                    yield sse({"type": "delta", "text": chunk.text})
        done = _done(turn)
    except Exception as exc:  # any failure, not only the engine's: the client is told
        yield sse({"type": "error", **stream_error(exc)})
        return
    yield sse(
        {
            "type": "done",
            "message": done.assistant_message.model_dump(mode="json"),
            "generation": done.generation.model_dump(mode="json"),
            "memory_saved": done.memory_saved.model_dump() if done.memory_saved else None,
            "notice": done.notice,
        }
    )
    if turn.title is not None:
        # The first answer names the chat (tandem.chat.titles): the title follows the answer.
        # Shielded: a client that leaves now does not stop the chat being named.
        title = await asyncio.shield(turn.title)
        if title:
            yield sse({"type": "title", "title": title})


async def respond(
    turn: Turn, stream: bool, request: Request | None = None
) -> TurnPublic | StreamingResponse:
    if stream:
        return sse_response(_events(turn), request)
    try:
        await turn.run()
    except EngineError as exc:
        raise ApiError(502, f"the model backend failed: {exc}", "engine_error") from exc
    return _done(turn)
