"""Sampling parameters, usage counts and the generation record that makes an answer reproducible."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

# "loop": generation was cut because the answer kept repeating itself (tandem.engines.loops);
# an OpenAI client sees it as "length", the other reason an answer is cut short.
FINISH_REASONS = ("stop", "length", "loop", "tool_calls", "cancelled", "error")
# The answers a person sees cut short, which the chat offers to continue.
CUT_SHORT = ("length", "loop")


@dataclass(frozen=True)
class SamplingParams:
    """How to sample. temperature 0 means greedy; `seed` makes sampling reproducible."""

    # SmolLM2's authors recommend a low temperature; a request's own values override these.
    temperature: float = 0.3
    top_p: float = 0.9
    max_tokens: int = 512
    stop: tuple[str, ...] = ()
    seed: int | None = None
    # The 135M model repeats itself until the token cap without a mild penalty.
    repetition_penalty: float = 1.1
    # End an answer whose end is the same text over and over (tandem.engines.loops), with
    # finish_reason "loop". Chats switch it on; the OpenAI-compatible API leaves it off unless
    # asked; evals choose (tandem.evals.runs.EVAL_SAMPLING).
    stop_loops: bool = False

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["stop"] = list(self.stop)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SamplingParams:
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        if "stop" in known:
            known["stop"] = tuple(known["stop"] or ())
        return cls(**known)


@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def to_dict(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
        }


@dataclass
class Completion:
    """A finished answer from an engine."""

    text: str
    finish_reason: str
    usage: Usage = field(default_factory=Usage)
    rendered_prompt: str | None = None
    seed: int | None = None
    time_to_first_token_s: float | None = None
    latency_s: float = 0.0


@dataclass
class GenerationRecord:
    """Everything needed to reproduce one answer: which weights, which engine, which prompt."""

    model_version: str
    engine: str
    sampling: SamplingParams
    seed: int | None
    rendered_prompt: str | None
    prompt_tokens: int
    completion_tokens: int
    latency_s: float
    time_to_first_token_s: float | None
    finish_reason: str
    # Tools that ran for this answer (`ToolResult.to_record()` each): name, arguments, output,
    # citations, attachments, error, duration.
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    # How the conversation was fitted into the model's context, when it did not fit whole:
    # `{"strategy": "drop_oldest", "dropped_messages": n, "dropped_message_ids": [...]}`.
    context: dict[str, Any] = field(default_factory=dict)
    # Sentences shown to the person beside the answer (the model could not see their images,
    # older messages no longer fit), kept so the answer shows them after a reload too.
    notices: list[str] = field(default_factory=list)

    @classmethod
    def of_completion(
        cls, model_version: str, engine: str, params: SamplingParams, completion: Completion
    ) -> GenerationRecord:
        """The record of a finished (non-streamed) answer: evals and batch sampling."""
        return cls(
            model_version=model_version,
            engine=engine,
            sampling=params,
            seed=completion.seed,
            rendered_prompt=completion.rendered_prompt,
            prompt_tokens=completion.usage.prompt_tokens,
            completion_tokens=completion.usage.completion_tokens,
            latency_s=completion.latency_s,
            time_to_first_token_s=completion.time_to_first_token_s,
            finish_reason=completion.finish_reason,
        )

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["sampling"] = self.sampling.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GenerationRecord:
        d = dict(d)
        d["sampling"] = SamplingParams.from_dict(d.get("sampling") or {})
        return cls(**d)
