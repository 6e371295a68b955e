"""The engine interface: one way to generate tokens, whatever does the work.

Every backend (the embedded ONNX engine, transformers, any OpenAI-compatible server, the fake
engine of the tests) implements `stream`; `complete` and `complete_batch` derive from it.
Closing a stream early (the client went away, the user pressed stop) cancels the generation
and frees its place in the batch.

    prompt = engine.encode(messages)        # rendered and tokenized once
    engine.check(prompt, params)            # ContextLengthExceeded before anything streams
    async for chunk in engine.stream(prompt, params):
        ...
    cut_loops(prompt, params, engine.stream(prompt, params))   # ends a loop early ("loop")

The prompt a request was checked with is the prompt the model reads: a chat turn renders and
tokenizes its conversation once, not once to check its length and again to generate.
"""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, Callable, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field

from tandem.core.generation import Completion, SamplingParams, Usage
from tandem.core.messages import Message
from tandem.engines.loops import LoopDetector


@dataclass
class Chunk:
    """A piece of a streamed answer. The last chunk carries `finish_reason` and `usage`."""

    text: str = ""
    finish_reason: str | None = None
    usage: Usage | None = None
    # Filled on the last chunk by local engines: what the model actually saw.
    rendered_prompt: str | None = None
    seed: int | None = None
    # Tool calls the model made (engines whose `ModelInfo.supports_tools`), each
    # `{"id", "name", "arguments"}` with arguments as the model's JSON text; the last chunk then
    # has finish_reason "tool_calls".
    tool_calls: list[dict] | None = None
    # Not from the engine: an event of the layer above (a tool started or finished), passed
    # through the same stream so a client sees it in order with the text.
    event: dict | None = None


class EngineError(RuntimeError):
    """A backend failed in a way the caller should report (unreachable server, bad model)."""


class ContextLengthExceeded(EngineError, ValueError):
    """The request does not fit the model's context: the caller's input, not a failure."""


@dataclass
class ModelInfo:
    id: str
    backend: str
    owned_by: str = "tandem"
    accepts_images: bool = False
    # The model takes OpenAI-style `tools` and answers with tool calls; `stream` then accepts
    # a `tools=` keyword argument.
    supports_tools: bool = False
    # Another engine serving the same weights as model `variant_of` (the transformers
    # reference `<id>@transformers`): for comparing engines, not offered to ordinary users.
    variant_of: str | None = None
    extra: dict = field(default_factory=dict)


@dataclass(frozen=True)
class EncodedPrompt:
    """Messages as one engine reads them: rendered and tokenized once (`Engine.encode`), then
    checked against the context and streamed from as they are."""

    messages: tuple[Message, ...]
    # The last message is an unfinished assistant answer the model goes on writing (no end of
    # turn after it, no new turn opened).
    continue_final: bool = False
    # The exact text a local engine feeds the model; None for remote servers, which render it.
    text: str | None = None
    # Its tokens; None where the engine cannot count (remote servers count for themselves).
    token_ids: tuple[int, ...] | None = None

    @property
    def token_count(self) -> int | None:
        return None if self.token_ids is None else len(self.token_ids)


def ensure_fits(prompt_tokens: int, max_context: int) -> None:
    """A prompt must leave room for at least one generated token."""
    if prompt_tokens + 1 >= max_context:
        raise ContextLengthExceeded(
            f"the prompt is {prompt_tokens} tokens; this model's context is {max_context}"
        )


async def relay(
    queue: asyncio.Queue[Chunk | BaseException], on_abandon: Callable[[], None]
) -> AsyncGenerator[Chunk, None]:
    """Yield what a generating thread puts on `queue`, up to the final chunk; an exception put
    there is raised. A consumer that stops early (client gone, stop pressed) triggers
    `on_abandon`, which must cancel the generation so it stops using the CPU."""
    done = False
    try:
        while True:
            item = await queue.get()
            if isinstance(item, BaseException):
                done = True
                raise item
            done = item.finish_reason is not None
            yield item
            if done:
                return
    finally:
        if not done:
            on_abandon()


class Engine(ABC):
    """Generates text for one model. Safe to call from many asyncio tasks at once."""

    backend: str = "abstract"
    # Text-only unless a backend says otherwise: the chat service then drops image parts and
    # tells the user the model answered from their text.
    accepts_images: bool = False
    # Whether `stream` takes `tools=[...]` (OpenAI function schemas) and reports tool calls.
    # The embedded 135M model cannot call functions reliably; its tools run before it answers.
    supports_tools: bool = False
    # Prompt plus answer, in tokens; None where the engine cannot count (remote servers).
    max_context: int | None = None

    def __init__(self, model_id: str) -> None:
        self.model_id = model_id

    @property
    def info(self) -> ModelInfo:
        return ModelInfo(
            id=self.model_id,
            backend=self.backend,
            accepts_images=self.accepts_images,
            supports_tools=self.supports_tools,
        )

    def render_prompt(
        self, messages: Sequence[Message], continue_final: bool = False
    ) -> str | None:
        """The exact prompt text a local engine feeds the model; None for remote servers.
        `continue_final` as in `EncodedPrompt`."""
        return None

    def tokenize(self, text: str) -> list[int] | None:
        """The rendered prompt's tokens, for engines that know their tokenizer (None for
        remote servers). With `max_context` it lets the chat fit a long conversation into
        the context."""
        return None

    def encode(self, messages: Sequence[Message], continue_final: bool = False) -> EncodedPrompt:
        """The messages rendered and tokenized, ready to `check` and `stream`."""
        text = self.render_prompt(messages, continue_final)
        ids = self.tokenize(text) if text is not None else None
        return EncodedPrompt(
            tuple(messages), continue_final, text, tuple(ids) if ids is not None else None
        )

    def check(self, prompt: EncodedPrompt, params: SamplingParams) -> None:
        """Raise ContextLengthExceeded for a request that cannot fit, before anything is
        stored or streamed. Remote engines leave this to their server."""
        if prompt.token_count is not None and self.max_context is not None:
            ensure_fits(prompt.token_count, self.max_context)

    @abstractmethod
    def stream(self, prompt: EncodedPrompt, params: SamplingParams) -> AsyncGenerator[Chunk, None]:
        """Yield chunks as tokens are produced; the final chunk has finish_reason and usage.
        `prompt` comes from this engine's `encode`."""

    async def complete(self, messages: Sequence[Message], params: SamplingParams) -> Completion:
        start = time.perf_counter()
        first: float | None = None
        parts: list[str] = []
        last = Chunk()
        prompt = self.encode(messages)
        async for chunk in cut_loops(prompt, params, self.stream(prompt, params)):
            if chunk.text and first is None:
                first = time.perf_counter() - start
            parts.append(chunk.text)
            last = chunk
        return Completion(
            text="".join(parts),
            finish_reason=last.finish_reason or "stop",
            usage=last.usage or Usage(),
            rendered_prompt=last.rendered_prompt,
            seed=last.seed,
            time_to_first_token_s=first,
            latency_s=time.perf_counter() - start,
        )

    async def complete_batch(
        self, items: Sequence[tuple[Sequence[Message], SamplingParams]]
    ) -> list[Completion]:
        """Many answers at once (evals, dataset sampling). Engines batch concurrent requests."""
        return list(await asyncio.gather(*(self.complete(m, p) for m, p in items)))

    def close(self) -> None:
        """Release threads, sessions and connections."""


async def cut_loops(
    prompt: EncodedPrompt, params: SamplingParams, chunks: AsyncGenerator[Chunk, None]
) -> AsyncGenerator[Chunk, None]:
    """`chunks` (the engine's stream for `prompt`), ended early with finish_reason "loop"
    when `params.stop_loops` and the answer starts repeating itself. Closing the engine's
    stream cancels the request, which frees its place in the batch at once."""
    if not params.stop_loops:
        async with aclosing(chunks) as source:
            async for chunk in source:
                yield chunk
        return
    detector = LoopDetector()
    pieces = 0
    async with aclosing(chunks) as source:
        async for chunk in source:
            yield chunk
            pieces += bool(chunk.text)
            if chunk.finish_reason is None and detector.feed(chunk.text):
                break
        else:
            return
    # Cut: the engine never sent its final chunk, so its usage is counted here.
    yield Chunk(
        finish_reason="loop", usage=Usage(prompt.token_count or 0, pieces), seed=params.seed
    )
