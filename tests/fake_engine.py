"""A scripted engine for hermetic tests: deterministic, instant, and honest about usage."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Sequence

from tandem.core.generation import SamplingParams, Usage
from tandem.core.messages import Message
from tandem.engines.base import Chunk, EncodedPrompt, Engine


class FakeEngine(Engine):
    """Answers from `script` in turn (cycling), or echoes the last user message.

    Each whitespace-separated word counts as one token, so `max_tokens` truncation, stop
    strings and usage behave as they would with a real tokenizer.
    """

    backend = "fake"

    def __init__(
        self,
        model_id: str = "fake-model",
        script: Sequence[str] = (),
        delay_s: float = 0.0,
        accepts_images: bool = False,
        max_context: int | None = None,
    ):
        super().__init__(model_id)
        self.accepts_images = accepts_images
        self.script = list(script)
        self.delay_s = delay_s
        # A context in words (the fake tokens), to test what happens when a chat outgrows it.
        self.max_context = max_context
        self.calls: list[tuple[list[Message], SamplingParams]] = []

    def render_prompt(self, messages: Sequence[Message], continue_final: bool = False) -> str:
        if continue_final:
            *before, final = messages
            return self.render_prompt(before)[: -len("<assistant>")] + f"<assistant>{final.content}"
        return "".join(f"<{m.role}>{m.content}\n" for m in messages) + "<assistant>"

    def tokenize(self, text: str) -> list[int]:
        # A word is a token; the fake never decodes, so an id is only a position.
        return list(range(len(text.split())))

    def _answer(self, messages: Sequence[Message]) -> str:
        if self.script:
            return self.script[(len(self.calls) - 1) % len(self.script)]
        last_user = next((m.content for m in reversed(messages) if m.role == "user"), "")
        return f"You said: {last_user}"

    async def stream(
        self, prompt: EncodedPrompt, params: SamplingParams
    ) -> AsyncGenerator[Chunk, None]:
        self.check(prompt, params)
        messages = list(prompt.messages)
        self.calls.append((messages, params))
        answer, finish = self._answer(messages), "stop"
        words = answer.split(" ")
        if len(words) > params.max_tokens:
            words, finish = words[: params.max_tokens], "length"
        text = " ".join(words)
        hits = [i for s in params.stop if (i := text.find(s)) >= 0]
        if hits:
            text, finish = text[: min(hits)], "stop"
        pieces = [w if i == 0 else " " + w for i, w in enumerate(text.split(" "))] if text else []
        for piece in pieces:
            if self.delay_s:
                await asyncio.sleep(self.delay_s)
            yield Chunk(text=piece)
        yield Chunk(
            finish_reason=finish,
            usage=Usage(prompt_tokens=prompt.token_count or 0, completion_tokens=len(pieces)),
            rendered_prompt=prompt.text,
            seed=params.seed,
        )
