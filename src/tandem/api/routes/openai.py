"""The OpenAI-compatible API: `GET /v1/models` and `POST /v1/chat/completions`.

Every completion is stored as a generation record owned by the caller; the response `id` is
`chatcmpl-<generation id>`, and `POST /api/generations/{id}/feedback` rates it. With n > 1 each
choice is its own generation (the id names choice 0; every choice carries `generation_id`).

    from openai import OpenAI
    client = OpenAI(base_url="http://127.0.0.1:8000/v1", api_key="tk-...")
    client.chat.completions.create(model="smollm2-135m-instruct", messages=[...])

`tools` are passed through to a model behind an OpenAI-compatible backend that supports them
(`"supports_tools": true` in TANDEM_BACKENDS): its tool calls come back to the client as
OpenAI's `tool_calls` (finish_reason "tool_calls"), the client runs them and sends the results
as `tool` messages. Any other model answers a request with tools (or tool messages) with 400.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Request
from pydantic import Field, model_validator

from tandem.api.deps import CatalogDep, ChatDep, CurrentUser
from tandem.api.errors import ApiError
from tandem.api.rate_limit import GenerationQuota
from tandem.api.responses import OPENAI_STREAM
from tandem.api.schemas import MAX_TEXT, Body, ModelId, Seed
from tandem.api.sse import sse, sse_response, stream_error
from tandem.chat import Turn, resolve_sampling
from tandem.core.messages import Message, Part
from tandem.engines import Chunk, EngineError

router = APIRouter(prefix="/v1", tags=["openai"])

Stop = Annotated[str, Field(min_length=1, max_length=100)]


class TextPart(Body):
    type: Literal["text"]
    text: str = Field(max_length=MAX_TEXT)


class FunctionCallIn(Body):
    name: str = Field(min_length=1, max_length=64)
    arguments: str = Field(max_length=MAX_TEXT)


class ToolCallIn(Body):
    """A tool call the model made earlier, as the client sends the conversation back."""

    id: str = Field(min_length=1, max_length=128)
    type: Literal["function"] = "function"
    function: FunctionCallIn


class FunctionSpec(Body):
    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    description: str | None = Field(None, max_length=4000)
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class ToolSpec(Body):
    type: Literal["function"]
    function: FunctionSpec


class ChatMessageIn(Body):
    # "developer" is what newer OpenAI clients send in place of "system".
    role: Literal["system", "developer", "user", "assistant", "tool"]
    # null only for an assistant message that made tool calls, as OpenAI has it.
    content: (
        Annotated[str, Field(max_length=MAX_TEXT)]
        | Annotated[list[TextPart], Field(max_length=64)]
        | None
    ) = None
    name: str | None = Field(None, max_length=64)
    tool_calls: list[ToolCallIn] | None = Field(None, max_length=64)
    tool_call_id: str | None = Field(None, min_length=1, max_length=128)

    @model_validator(mode="after")
    def _tool_shape(self) -> ChatMessageIn:
        if self.tool_calls and self.role != "assistant":
            raise ValueError("only an assistant message has tool_calls")
        if self.content is None and not self.tool_calls:
            raise ValueError("content is required unless the message has tool_calls")
        if (self.role == "tool") != (self.tool_call_id is not None):
            raise ValueError("a tool message, and only a tool message, has tool_call_id")
        return self

    @property
    def uses_tools(self) -> bool:
        return self.role == "tool" or bool(self.tool_calls)

    def to_message(self) -> Message:
        if isinstance(self.content, list):
            text = "".join(p.text for p in self.content)
        else:
            text = self.content or ""
        if self.role == "tool":
            return Message("tool", (Part("tool_output", text, {"call_id": self.tool_call_id}),))
        role = "system" if self.role == "developer" else self.role
        if not self.tool_calls:
            return Message.text(role, text)
        calls = tuple(
            Part(
                "tool_call",
                data={"id": c.id, "name": c.function.name, "arguments": c.function.arguments},
            )
            for c in self.tool_calls
        )
        return Message(role, ((Part("text", text),) if text else ()) + calls)


class StreamOptions(Body):
    include_usage: bool = False


class ChatCompletionRequest(Body):
    model: ModelId | None = None
    messages: list[ChatMessageIn] = Field(min_length=1, max_length=1000)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    max_tokens: int | None = Field(None, ge=1, le=4096)
    max_completion_tokens: int | None = Field(None, ge=1, le=4096)
    stop: Stop | list[Stop] | None = Field(None, max_length=4)
    seed: Seed | None = None
    n: int = Field(1, ge=1, le=8)
    stream: bool = False
    stream_options: StreamOptions | None = None
    # Accepted for client compatibility; `user` is an opaque end-user label, never an identity.
    user: str | None = Field(None, max_length=256)
    frequency_penalty: float | None = Field(None, ge=-2, le=2)
    presence_penalty: float | None = Field(None, ge=-2, le=2)
    # Passed to models that support tool calls; "required" and naming a function are not.
    tools: list[ToolSpec] | None = Field(None, max_length=64)
    tool_choice: Literal["auto", "none"] | None = None

    def tool_schemas(self) -> list[dict[str, Any]]:
        if self.tool_choice == "none":
            return []
        return [t.model_dump(exclude_none=True) for t in self.tools or []]

    @property
    def uses_tools(self) -> bool:
        return bool(self.tool_schemas()) or any(m.uses_tools for m in self.messages)

    def sampling(self, choice: int) -> dict[str, Any]:
        stop = [self.stop] if isinstance(self.stop, str) else self.stop
        seed = None if self.seed is None else self.seed + choice  # n samples must differ
        return {
            "temperature": self.temperature,
            "top_p": self.top_p,
            "max_tokens": self.max_completion_tokens or self.max_tokens,
            "stop": stop,
            "seed": seed,
        }


def _finish(reason: str | None) -> str:
    """OpenAI's finish reasons: an answer cut for looping was cut short, like at the cap."""
    if reason == "loop":
        return "length"
    return reason if reason in ("stop", "length", "tool_calls") else "stop"


def _tool_calls(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Tool calls in OpenAI's shape (an `index` is added for stream deltas)."""
    return [
        {
            "index": i,
            "id": c["id"],
            "type": "function",
            "function": {"name": c["name"], "arguments": c["arguments"]},
        }
        for i, c in enumerate(calls)
    ]


def _message(turn: Turn) -> dict[str, Any]:
    if not turn.client_calls:
        return {"role": "assistant", "content": turn.text}
    calls = [{k: v for k, v in c.items() if k != "index"} for c in _tool_calls(turn.client_calls)]
    return {"role": "assistant", "content": turn.text or None, "tool_calls": calls}


def _usage(turns: list[Turn]) -> dict[str, int]:
    # The prompt is shared by all n choices, so it counts once, as OpenAI counts it.
    prompt = turns[0].generation.prompt_tokens if turns[0].generation else 0
    completion = sum(t.generation.completion_tokens for t in turns if t.generation)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


@router.get("/models")
def list_models(user: CurrentUser, catalog: CatalogDep) -> dict[str, Any]:
    """The models to chat with; engine variants (`<id>@transformers`) for admins only (they
    still answer by name, for comparing engines)."""
    data = [
        {"id": m.id, "object": "model", "created": 0, "owned_by": m.owned_by}
        for m in catalog.list()
        if user.is_admin or m.variant_of is None
    ]
    return {"object": "list", "data": data}


@router.post("/chat/completions", responses=OPENAI_STREAM, dependencies=[GenerationQuota])
async def chat_completions(
    body: ChatCompletionRequest, user: CurrentUser, chat: ChatDep, request: Request
):
    messages = [m.to_message() for m in body.messages]
    turns = [
        chat.generate(
            user.id,
            messages,
            body.model,
            resolve_sampling(None, body.sampling(i)),
            tools=body.tool_schemas(),
            uses_tools=body.uses_tools,
        )
        for i in range(body.n)
    ]  # ModelNotFound here: a 404 before any generation; a model without tools: 400
    created = int(time.time())
    model = turns[0].model
    if body.stream:
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        return sse_response(_stream(turns, model, created, include_usage), request)
    try:
        await asyncio.gather(*(t.run() for t in turns))
    except EngineError as exc:
        raise ApiError(502, f"the model backend failed: {exc}", "engine_error") from exc
    return {
        "id": f"chatcmpl-{turns[0].generation_id}",
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": i,
                "message": _message(t),
                "finish_reason": _finish(t.generation.finish_reason if t.generation else None),
                "logprobs": None,
                "generation_id": t.generation_id,
            }
            for i, t in enumerate(turns)
        ],
        "usage": _usage(turns),
    }


def _finish_choice(turns: list[Turn], index: int, reason: str | None) -> dict[str, Any]:
    return {
        "index": index,
        "delta": {},
        "finish_reason": _finish(reason),
        "generation_id": turns[index].generation_id,
    }


async def _stream(
    turns: list[Turn], model: str, created: int, include_usage: bool
) -> AsyncGenerator[str, None]:
    """Interleave the n choices' chunks as they come, in OpenAI's chunk format. Any failure
    (the backend's or a bug) ends the stream with one error event instead of its chunks."""
    queue: asyncio.Queue[tuple[int, Chunk | Exception | None]] = asyncio.Queue()

    async def pump(index: int, turn: Turn) -> None:
        try:
            async with aclosing(turn.stream()) as chunks:
                async for chunk in chunks:
                    await queue.put((index, chunk))
        except Exception as exc:
            await queue.put((index, exc))
        finally:
            await queue.put((index, None))

    stream_id = f"chatcmpl-{turns[0].generation_id}"

    def frame(choices: list[dict[str, Any]], usage: dict[str, int] | None = None) -> str:
        payload: dict[str, Any] = {
            "id": stream_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": choices,
        }
        if include_usage:
            payload["usage"] = usage
        return sse(payload)

    tasks = [asyncio.create_task(pump(i, t)) for i, t in enumerate(turns)]
    try:
        for i in range(len(turns)):
            delta = {"role": "assistant", "content": ""}
            yield frame([{"index": i, "delta": delta, "finish_reason": None}])
        remaining, finished = len(turns), set()
        while remaining:
            index, item = await queue.get()
            if item is None:
                remaining -= 1
                if index not in finished:  # the engine ended without saying why: it stopped
                    generation = turns[index].generation
                    reason = generation.finish_reason if generation else None
                    finished.add(index)
                    yield frame([_finish_choice(turns, index, reason)])
            elif isinstance(item, Exception):
                yield sse(stream_error(item))
                return
            else:
                if item.text:
                    text = {"content": item.text}
                    yield frame([{"index": index, "delta": text, "finish_reason": None}])
                if item.tool_calls and turns[index].plan.tools.client_schemas:
                    calls = {"tool_calls": _tool_calls(item.tool_calls)}
                    yield frame([{"index": index, "delta": calls, "finish_reason": None}])
                if item.finish_reason and index not in finished:
                    finished.add(index)
                    yield frame([_finish_choice(turns, index, item.finish_reason)])
        if include_usage:
            yield frame([], _usage(turns))
        yield sse("[DONE]")
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
