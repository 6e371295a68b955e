"""Continuing conversations: store the user's turn, stream the engine's answer, record it.

    service = ChatService(session_factory, catalog)
    turn = service.send(user_id, conversation_id, "Hello!")   # raises NotFound / ModelNotFound
    async for chunk in turn.stream():                          # or: await turn.run()
        print(chunk.text, end="")
    turn.assistant_message, turn.generation                    # stored when the stream ends

Everything that can fail on bad input (a foreign conversation, an unknown model) fails in
`send`/`regenerate`/`edit`, before any token is generated, so an HTTP layer can answer 404
before it starts a stream. A stream the client abandons is still recorded, with
finish_reason "cancelled". No HTTP here.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

from tandem.chat.render import render_messages, render_system_prompt
from tandem.core.generation import GenerationRecord, SamplingParams
from tandem.core.messages import Message
from tandem.engines.base import Chunk, Engine, EngineError
from tandem.engines.catalog import ModelCatalog
from tandem.store import (
    ComparisonRepo,
    ConversationRepo,
    CustomInstructionsRepo,
    GenerationRepo,
    InvalidInput,
    NotFound,
    ProfileRepo,
    SessionFactory,
)
from tandem.store.models import (
    Comparison,
    Conversation,
    StoredGeneration,
    StoredMessage,
    new_id,
)

TITLE_CHARS = 60


def resolve_sampling(
    defaults: Mapping[str, Any] | None = None, overrides: Mapping[str, Any] | None = None
) -> SamplingParams:
    """SamplingParams from profile defaults, then per-request overrides (None means unset)."""
    merged = {**(defaults or {}), **{k: v for k, v in (overrides or {}).items() if v is not None}}
    return SamplingParams.from_dict(merged)


class Turn:
    """One answer being generated; records itself when its stream ends, however it ends."""

    def __init__(
        self,
        service: ChatService,
        user_id: str,
        engine: Engine,
        messages: Sequence[Message],
        params: SamplingParams,
        conversation_id: str | None = None,
        parent_id: str | None = None,
        user_message: StoredMessage | None = None,
        make_current: bool = True,
    ) -> None:
        # A request that cannot fit fails here, as the caller's error, before any streaming.
        engine.check_request(messages, params)
        self.service = service
        self.user_id = user_id
        self.engine = engine
        self.messages = list(messages)
        self.params = params
        self.conversation_id = conversation_id
        self.parent_id = parent_id
        self.user_message = user_message
        self.make_current = make_current
        self.text = ""
        self.assistant_message: StoredMessage | None = None
        self.generation: StoredGeneration | None = None
        # Known before generation starts, so a stream can name its record up front.
        self.generation_id = new_id()
        self._started = False

    @property
    def model(self) -> str:
        return self.engine.model_id

    async def stream(self) -> AsyncIterator[Chunk]:
        """Yield the engine's chunks; the final one carries finish_reason and usage."""
        if self._started:
            raise RuntimeError("a turn streams once")
        self._started = True
        start = time.perf_counter()
        ttft: float | None = None
        pieces: list[str] = []
        final: Chunk | None = None
        finish = "cancelled"  # unless the engine says otherwise before we stop
        try:
            async with aclosing(self.engine.stream(self.messages, self.params)) as chunks:
                async for chunk in chunks:
                    if chunk.text:
                        if ttft is None:
                            ttft = time.perf_counter() - start
                        pieces.append(chunk.text)
                    if chunk.finish_reason:
                        final, finish = chunk, chunk.finish_reason
                    yield chunk
            if final is None:
                finish = "stop"
        except EngineError:
            finish = "error"
            raise
        finally:
            # Runs on normal end, engine error, and a consumer that walked away (aclose or
            # task cancellation): what was generated is recorded either way.
            self.text = "".join(pieces)
            self._record(final, finish, pieces, time.perf_counter() - start, ttft)

    async def run(self) -> Turn:
        async for _ in self.stream():
            pass
        return self

    def _record(
        self,
        final: Chunk | None,
        finish: str,
        pieces: list[str],
        latency: float,
        ttft: float | None,
    ) -> None:
        usage = final.usage if final is not None else None
        rendered = final.rendered_prompt if final is not None else None
        seed = final.seed if final is not None and final.seed is not None else self.params.seed
        record = GenerationRecord(
            model_version=self.engine.model_id,
            engine=self.engine.backend,
            sampling=self.params,
            seed=seed,
            rendered_prompt=rendered or self.engine.render_prompt(self.messages),
            prompt_tokens=usage.prompt_tokens if usage else 0,
            # A cancelled stream has no usage; its chunk count is the best estimate.
            completion_tokens=usage.completion_tokens if usage else len(pieces),
            latency_s=latency,
            time_to_first_token_s=ttft,
            finish_reason=finish,
        )
        with self.service.session_factory() as session:
            self.generation = GenerationRepo(session).add(
                self.user_id, record, self.messages, self.text, generation_id=self.generation_id
            )
            if self.conversation_id is not None:
                self.assistant_message = ConversationRepo(session).add_message(
                    self.user_id,
                    self.conversation_id,
                    Message.text("assistant", self.text),
                    self.parent_id,
                    generation_id=self.generation.id,
                    make_current=self.make_current,
                )


@dataclass
class ComparisonOutcome:
    comparison: Comparison
    user_message: StoredMessage | None
    answer_a: Turn
    answer_b: Turn


class ChatService:
    def __init__(
        self,
        session_factory: SessionFactory,
        catalog: ModelCatalog,
        default_model: str | None = None,
    ) -> None:
        self.session_factory = session_factory
        self.catalog = catalog
        self.default_model = default_model

    # -- building the model input ---------------------------------------------------------

    def _context(
        self, user_id: str, conversation_id: str, model: str | None
    ) -> tuple[Conversation, str | None, Engine, dict[str, Any]]:
        """The conversation, its system prompt, the engine that answers, sampling defaults."""
        with self.session_factory() as session:
            conv = ConversationRepo(session).get(user_id, conversation_id)
            profile = None
            if conv.profile_id:
                try:
                    profile = ProfileRepo(session).get(user_id, conv.profile_id)
                except NotFound:
                    profile = None  # the owner stopped sharing it; chat goes on without it
            custom = CustomInstructionsRepo(session).get(user_id)
        system = render_system_prompt(
            about_user=custom.about_user if custom.enabled else "",
            response_style=custom.response_style if custom.enabled else "",
            profile_instructions=profile.instructions if profile else "",
            system_prompt=conv.system_prompt or "",
        )
        model_id = (
            model
            or conv.model
            or (profile.model_version if profile else None)
            or self.default_model
            or self.catalog.default_model
        )
        engine = self.catalog.get(model_id)  # ModelNotFound before anything is stored
        return conv, system, engine, dict(profile.sampling) if profile else {}

    def _branch(self, user_id: str, leaf_id: str | None) -> list[Message]:
        if leaf_id is None:
            return []
        with self.session_factory() as session:
            return [m.to_message() for m in ConversationRepo(session).branch(user_id, leaf_id)]

    def _add_user_message(
        self, user_id: str, conv: Conversation, text: str, parent_id: str | None
    ) -> StoredMessage:
        with self.session_factory() as session:
            convs = ConversationRepo(session)
            row = convs.add_message(user_id, conv.id, Message.text("user", text), parent_id)
            if not conv.title:
                convs.rename(user_id, conv.id, " ".join(text.split())[:TITLE_CHARS])
            return row

    def _answer(
        self,
        user_id: str,
        conv: Conversation,
        system: str | None,
        engine: Engine,
        params: SamplingParams,
        user_message: StoredMessage,
        created_user_message: bool,
        make_current: bool = True,
    ) -> Turn:
        branch = self._branch(user_id, user_message.id)
        return Turn(
            self,
            user_id,
            engine,
            render_messages(system, branch),
            params,
            conversation_id=conv.id,
            parent_id=user_message.id,
            user_message=user_message if created_user_message else None,
            make_current=make_current,
        )

    # -- the operations ---------------------------------------------------------------------

    def send(
        self,
        user_id: str,
        conversation_id: str,
        text: str,
        parent_id: str | None = None,
        model: str | None = None,
        sampling: Mapping[str, Any] | None = None,
    ) -> Turn:
        """Add a user message under `parent_id` (default: the conversation's current message)
        and prepare the answer."""
        conv, system, engine, defaults = self._context(user_id, conversation_id, model)
        if parent_id is None:
            parent_id = conv.current_message_id
        else:
            with self.session_factory() as session:
                parent = ConversationRepo(session).get_message(user_id, parent_id)
                if parent.conversation_id != conv.id:
                    raise NotFound("message", parent_id)
        params = resolve_sampling(defaults, sampling)
        user_message = self._add_user_message(user_id, conv, text, parent_id)
        return self._answer(user_id, conv, system, engine, params, user_message, True)

    def regenerate(
        self,
        user_id: str,
        message_id: str,
        model: str | None = None,
        sampling: Mapping[str, Any] | None = None,
    ) -> Turn:
        """A new answer to the same user message: a sibling of assistant message `message_id`."""
        with self.session_factory() as session:
            answer = ConversationRepo(session).get_message(user_id, message_id)
            if answer.role != "assistant" or answer.parent_id is None:
                raise InvalidInput("only an assistant message can be regenerated")
            question = ConversationRepo(session).get_message(user_id, answer.parent_id)
        conv, system, engine, defaults = self._context(user_id, answer.conversation_id, model)
        params = resolve_sampling(defaults, sampling)
        return self._answer(user_id, conv, system, engine, params, question, False)

    def edit(
        self,
        user_id: str,
        message_id: str,
        text: str,
        model: str | None = None,
        sampling: Mapping[str, Any] | None = None,
    ) -> Turn:
        """Edit-and-branch: a new user message beside `message_id` (same parent), answered."""
        with self.session_factory() as session:
            original = ConversationRepo(session).get_message(user_id, message_id)
        if original.role != "user":
            raise InvalidInput("only a user message can be edited")
        conv, system, engine, defaults = self._context(user_id, original.conversation_id, model)
        params = resolve_sampling(defaults, sampling)
        user_message = self._add_user_message(user_id, conv, text, original.parent_id)
        return self._answer(user_id, conv, system, engine, params, user_message, True)

    def generate(
        self,
        user_id: str,
        messages: Sequence[Message],
        model: str | None = None,
        sampling: SamplingParams | None = None,
    ) -> Turn:
        """An answer outside any conversation (the OpenAI-compatible API): only its generation
        record is stored, owned by `user_id`, so feedback can point at it."""
        engine = self.catalog.get(model or self.default_model or self.catalog.default_model)
        return Turn(self, user_id, engine, messages, sampling or SamplingParams())

    async def compare(
        self,
        user_id: str,
        conversation_id: str,
        text: str | None = None,
        parent_id: str | None = None,
        models: tuple[str | None, str | None] = (None, None),
        sampling: Mapping[str, Any] | None = None,
    ) -> ComparisonOutcome:
        """Two answers to one turn, generated concurrently, in random order (the user votes
        blind). With `text`, a new user message is added under `parent_id` first; without it,
        `parent_id` must be a user message to answer again."""
        conv, system, engine_a, defaults = self._context(user_id, conversation_id, models[0])
        engine_b = self._context(user_id, conversation_id, models[1] or models[0])[2]
        params = resolve_sampling(defaults, sampling)
        if text is not None:
            question = self._add_user_message(
                user_id, conv, text, parent_id or conv.current_message_id
            )
            created = True
        else:
            if parent_id is None:
                raise InvalidInput("give either text or the id of a user message to answer")
            with self.session_factory() as session:
                question = ConversationRepo(session).get_message(user_id, parent_id)
            if question.role != "user" or question.conversation_id != conv.id:
                raise InvalidInput("parent_id must be a user message of this conversation")
            created = False
        engines = [engine_a, engine_b]
        random.shuffle(engines)
        turns = []
        for i, engine in enumerate(engines):
            # Two samples of one model must differ: give the second its own seed.
            p = params
            if i == 1 and engines[0] is engines[1] and params.seed is not None:
                p = dataclasses.replace(params, seed=params.seed + 1)
            turns.append(self._answer(user_id, conv, system, engine, p, question, created, False))
        await asyncio.gather(*(t.run() for t in turns))
        assert turns[0].assistant_message and turns[1].assistant_message
        with self.session_factory() as session:
            comparison = ComparisonRepo(session).create(
                user_id,
                conv.id,
                question.id,
                turns[0].assistant_message.id,
                turns[1].assistant_message.id,
            )
            # Until the vote, the turn's question is where the branch stands.
            ConversationRepo(session).set_current(user_id, conv.id, question.id)
        return ComparisonOutcome(comparison, question if created else None, *turns)
