"""One answer being generated: planned (and checked) first, then streamed, then recorded.

    plan = plan_turn(user_id, engine, messages, params, branch=branch, tools=tools)
    turn = Turn(plan, session_factory, titles)
    async for chunk in turn.stream():           # or: await turn.run()
        print(chunk.text, end="")
    turn.assistant_message, turn.generation     # stored when the stream ends

Everything that can fail on bad input fails in `plan_turn`, before any token is generated: the
prompt is fitted into the model's context, encoded and checked there, and the stream feeds the
model that same encoded prompt. A stream the client abandons is still recorded, with
finish_reason "cancelled".
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tandem.chat.branch import Branch
from tandem.chat.fitting import CONTEXT_NOTICE, STRATEGY, fit_to_context
from tandem.chat.recording import store_answer
from tandem.chat.titles import ChatTitles
from tandem.chat.tool_rounds import ToolPlan, ToolRounds
from tandem.core.generation import GenerationRecord, SamplingParams
from tandem.core.messages import Message
from tandem.engines.base import Chunk, EncodedPrompt, Engine
from tandem.store import SessionFactory
from tandem.store.models import Memory, StoredGeneration, StoredMessage, new_id
from tandem.tools.base import Tool, ToolResult


@dataclass(frozen=True)
class TurnPlan:
    """Everything a turn needs to answer, decided before any token is generated."""

    user_id: str
    engine: Engine
    params: SamplingParams
    # The model input, fitted into the context, encoded and checked.
    prompt: EncodedPrompt
    # Where the answer goes; None for an API request outside any conversation (/v1).
    branch: Branch | None = None
    # The answer becomes the conversation's current message (a comparison's two do not:
    # the comparison sets it once both are in).
    make_current: bool = True
    notices: tuple[str, ...] = ()
    # What the record says about messages that no longer fit ({} when all do).
    context: Mapping[str, Any] = field(default_factory=dict)
    tools: ToolPlan = field(default_factory=ToolPlan)


def fit_turn(
    engine: Engine,
    messages: Sequence[Message],
    params: SamplingParams,
    branch: Branch | None,
    notices: Sequence[str] = (),
) -> tuple[EncodedPrompt, dict[str, Any], tuple[str, ...]]:
    """The prompt, encoded: a chat turn drops the oldest turns that no longer fit
    (tandem.chat.fitting); an API request is sent as the client wrote it. With it, what the
    record says about dropped messages, and the notices, which tell the user once per branch
    that older messages no longer fit."""
    continue_final = branch is not None and branch.continues is not None
    if branch is None:
        return engine.encode(messages, continue_final), {}, tuple(notices)
    fitted = fit_to_context(engine, messages, params.max_tokens, continue_final)
    if not fitted.dropped:
        return fitted.prompt, {}, tuple(notices)
    context = {
        "strategy": STRATEGY,
        "dropped_messages": fitted.dropped,
        "dropped_message_ids": list(branch.message_ids[: fitted.dropped]),
    }
    if not branch.already_dropped and CONTEXT_NOTICE not in notices:
        notices = (*notices, CONTEXT_NOTICE)
    return fitted.prompt, context, tuple(notices)


def plan_turn(
    user_id: str,
    engine: Engine,
    messages: Sequence[Message],
    params: SamplingParams,
    *,
    branch: Branch | None = None,
    make_current: bool = True,
    notices: Sequence[str] = (),
    tools: ToolPlan | None = None,
) -> TurnPlan:
    """The turn's plan; a request that cannot fit the model's context fails here
    (ContextLengthExceeded), as the caller's error, before anything streams."""
    prompt, context, all_notices = fit_turn(engine, messages, params, branch, notices)
    engine.check(prompt, params)
    return TurnPlan(
        user_id,
        engine,
        params,
        prompt,
        branch,
        make_current,
        all_notices,
        context,
        tools or ToolPlan(),
    )


class Turn:
    """One answer being generated; records itself when its stream ends, however it ends."""

    def __init__(
        self, plan: TurnPlan, session_factory: SessionFactory, titles: ChatTitles | None = None
    ) -> None:
        self.plan = plan
        self.session_factory = session_factory
        self.titles = titles
        self.notices = list(plan.notices)
        self.context = dict(plan.context)
        self.rounds = ToolRounds(plan.engine, plan.params, plan.prompt, plan.tools, self._refit)
        # The memory this turn's user message asked for, saved before the model answered.
        self.memory_saved: Memory | None = None
        self.text = ""
        self.assistant_message: StoredMessage | None = None
        self.generation: StoredGeneration | None = None
        # Known before generation starts, so a stream can name its record up front.
        self.generation_id = new_id()
        self._started = False
        self._recording: asyncio.Future[None] | None = None
        # The chat's new title, when this is the first answer of the chat (tandem.chat.titles).
        self.title: asyncio.Task[str | None] | None = None

    @property
    def engine(self) -> Engine:
        return self.plan.engine

    @property
    def model(self) -> str:
        return self.plan.engine.model_id

    @property
    def user_message(self) -> StoredMessage | None:
        """The question this request added (None when it answers an existing one again)."""
        branch = self.plan.branch
        return branch.question if branch is not None and branch.created_question else None

    @property
    def messages(self) -> list[Message]:
        """The model's input as sent (so far): tool results and calls included."""
        return list(self.rounds.prompt.messages)

    @property
    def planned_tools(self) -> list[tuple[Tool, dict[str, Any]]]:
        return self.rounds.switched_on

    @property
    def tool_results(self) -> list[ToolResult]:
        return self.rounds.results

    @property
    def client_calls(self) -> list[dict[str, Any]]:
        return self.rounds.client_calls

    @property
    def notice(self) -> str | None:
        """What to show the user beside the answer (the model could not see their images,
        older messages no longer fit), as one text; None when there is nothing to say."""
        return " ".join(self.notices) or None

    def _refit(self, messages: Sequence[Message]) -> EncodedPrompt:
        """The prompt again once tool results are in it: it may no longer fit."""
        prompt, context, notices = fit_turn(
            self.plan.engine, messages, self.plan.params, self.plan.branch, self.notices
        )
        if context:
            self.context = context
        self.notices = list(notices)
        return prompt

    async def stream(self) -> AsyncGenerator[Chunk, None]:
        """Yield the engine's chunks; the final one carries finish_reason and usage. Tool
        events (`Chunk.event`) come first for switched-on tools, and between rounds for tools
        the model calls (tandem.chat.tool_rounds)."""
        if self._started:
            raise RuntimeError("a turn streams once")
        self._started = True
        start = time.perf_counter()
        ttft: float | None = None
        pieces: list[str] = []
        failed = False
        try:
            async for chunk in self.rounds.stream():
                if chunk.text:
                    if ttft is None:
                        ttft = time.perf_counter() - start
                    pieces.append(chunk.text)
                yield chunk
        except Exception:  # the engine's failure or any other: recorded as an error
            failed = True
            raise
        finally:
            # Runs on normal end, engine error, and a consumer that walked away (aclose or
            # task cancellation): what was generated is recorded either way.
            finish = "error" if failed else self.rounds.finish
            self.text = "".join(pieces)
            latency = time.perf_counter() - start
            # A commit (an fsync on SQLite) in a worker thread, not on the event loop every
            # other request waits on; shielded, so a cancelled turn still waits for its record.
            self._recording = asyncio.ensure_future(
                asyncio.to_thread(self._record, finish, len(pieces), latency, ttft)
            )
            await asyncio.shield(self._recording)
            branch = self.plan.branch
            if branch and self.plan.make_current and not failed and self.titles is not None:
                self.title = self.titles.name_chat(
                    self.plan.user_id,
                    branch.conversation_id,
                    branch.question.id,
                    self.plan.engine,
                    self.text,
                )

    async def run(self) -> Turn:
        async for _ in self.stream():
            pass
        return self

    async def recorded(self) -> None:
        """Wait until the record is stored (also after the stream was cancelled mid-way);
        returns at once for a turn that never started."""
        if self._recording is not None:
            await self._recording

    def _record(self, finish: str, pieces: int, latency: float, ttft: float | None) -> None:
        final = self.rounds.final
        usage = final.usage if final is not None else None
        rendered = final.rendered_prompt if final is not None else None
        seed = final.seed if final is not None and final.seed is not None else self.plan.params.seed
        prompt = self.rounds.prompt
        record = GenerationRecord(
            model_version=self.plan.engine.model_id,
            engine=self.plan.engine.backend,
            sampling=self.plan.params,
            seed=seed,
            rendered_prompt=rendered or prompt.text,
            prompt_tokens=usage.prompt_tokens if usage else 0,
            # A cancelled stream has no usage; its chunk count is the best estimate.
            completion_tokens=usage.completion_tokens if usage else pieces,
            latency_s=latency,
            time_to_first_token_s=ttft,
            finish_reason=finish,
            tool_calls=[r.to_record() for r in self.rounds.results],
            context=self.context,
            notices=self.notices,
        )
        self.generation, self.assistant_message = store_answer(
            self.session_factory,
            self.plan.user_id,
            record,
            prompt.messages,
            self.text,
            self.generation_id,
            self.rounds.results,
            self.plan.branch,
            self.plan.make_current,
        )
