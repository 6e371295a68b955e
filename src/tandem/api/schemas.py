"""Schemas more than one router returns or accepts. Request bodies forbid unknown fields (so a
smuggled `user_id` is rejected, never trusted) and bound every string and list."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from tandem.api.deps import CurrentUser
from tandem.api.errors import ApiError
from tandem.store.improvements import improved_from
from tandem.store.models import StoredGeneration, StoredMessage

MAX_TEXT = 100_000  # characters in one message
Id = Annotated[str, Field(min_length=1, max_length=64)]
ModelId = Annotated[str, Field(min_length=1, max_length=200)]
# A seed is stored in a signed 64-bit column and seeds a NumPy/torch RNG, which refuse negative
# values (OpenAI documents it as a non-negative integer too). n choices on /v1 and a
# comparison's second answer add up to 7 to it, so the top 7 values stay out.
SEED_MAX = 2**63 - 8
Seed = Annotated[int, Field(ge=0, le=SEED_MAX)]


# The built-in tools a message or a profile can switch on (tandem.tools).
ToolSwitch = Literal["files", "code", "web", "image"]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


def form_fields(*allowed: str) -> Any:
    """A route dependency that gives multipart forms what `Body` gives JSON: 422 for a field
    the route does not declare (a smuggled `user_id` is refused, not silently dropped).

        @router.post("", dependencies=[form_fields("file")])
    """

    async def check(request: Request, _: CurrentUser) -> None:
        form = await request.form()  # parsed once: FastAPI reads the same cached form
        extra = sorted(set(form.keys()) - set(allowed))
        if extra:
            # 400 on the OpenAI-compatible /v1, as its clients expect (tandem.api.errors).
            status = 400 if request.url.path.startswith("/v1/") else 422
            raise ApiError(status, f"unknown form fields: {', '.join(extra)}", "extra_forbidden")

    return Depends(check)


class SamplingIn(Body):
    """Per-request sampling overrides; unset fields fall back to the profile, then defaults."""

    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    max_tokens: int | None = Field(None, ge=1, le=4096)
    stop: list[Annotated[str, Field(min_length=1, max_length=100)]] | None = Field(
        None, max_length=4
    )
    seed: Seed | None = None
    repetition_penalty: float | None = Field(None, ge=0.5, le=2)
    stop_loops: bool | None = Field(
        None, description="end an answer that keeps repeating itself (chats: on by default)"
    )

    def overrides(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


def sampling_overrides(sampling: SamplingIn | None) -> dict[str, Any]:
    return sampling.overrides() if sampling is not None else {}


class Public(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class MessagePublic(Public):
    id: str
    conversation_id: str
    parent_id: str | None
    role: str
    content: str
    parts: list[dict[str, Any]]
    generation_id: str | None
    improved_from: str | None = Field(
        None, description="the answer this one rewrites (the UI labels it 'edited by you')"
    )
    finish_reason: str | None = Field(
        None,
        description="why the answer ended: stop, length (the token cap) or loop (it repeated "
        "itself; both can be continued), cancelled, error",
    )
    notices: list[str] = Field(
        default_factory=list,
        description="what the user was told beside the answer (the model could not see the "
        "images, older messages no longer fit the context)",
    )
    created_at: datetime

    @classmethod
    def of(cls, row: StoredMessage, generation: StoredGeneration | None = None) -> MessagePublic:
        """`generation`: the answer's record, for its finish reason and notices (never its
        model: a blind comparison hides that until the vote)."""
        return cls(
            id=row.id,
            conversation_id=row.conversation_id,
            parent_id=row.parent_id,
            role=row.role,
            content=row.to_message().content,
            parts=row.parts,
            generation_id=row.generation_id,
            improved_from=improved_from(row),
            finish_reason=generation.finish_reason if generation is not None else None,
            notices=list(generation.notices or []) if generation is not None else [],
            created_at=row.created_at,
        )


class GenerationPublic(Public):
    id: str
    model_version: str
    backend: str
    sampling: dict[str, Any]
    seed: int | None
    prompt_tokens: int
    completion_tokens: int
    latency_s: float
    time_to_first_token_s: float | None
    finish_reason: str
    # Tools that ran for this answer: name, arguments, output, citations, attachments, error.
    tool_calls: list[dict[str, Any]] = []
    created_at: datetime

    @classmethod
    def of(cls, row: StoredGeneration) -> GenerationPublic:
        return cls.model_validate(row)
