"""Blind comparisons: two answers to one turn, streamed side by side, then a vote.

    pair = service.compare(user_id, conversation_id, "Which is better?")   # ready to stream
    async for side, chunk in pair.stream():      # "a" or "b", and that side's chunk
        ...
    pair.comparison                              # stored once both answers are recorded

A chat message is answered this way on a share of turns (tandem.chat.context.draw_comparison):
the admin's `comparison_rate` (default 0) with the `comparison_models` pair, or a rollout's own
rate with its production version against a candidate that is `in_comparisons`, or a running
behavior experiment's rate with two of its variants (tandem.chat.experiments; the comparison
then records which variant wrote each side).

Both answers generate at once, and their chunks arrive interleaved as the engine makes them.
When both are recorded the comparison is stored and the conversation continues from answer A
(the sides are shuffled, so that is a random one of the two): someone who writes on without
voting continues that answer, and the comparison stays open for a vote where it stands in the
chat, the other answer hidden from the branch until then. A comparison whose answers did not
both finish (stopped, failed) is not stored: there is nothing fair to vote on.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import Literal

from tandem.chat.turn import Turn
from tandem.engines.base import Chunk
from tandem.store import (
    ComparisonRepo,
    ConversationRepo,
    ExperimentRepo,
    SessionFactory,
    one_transaction,
)
from tandem.store.models import Comparison, Memory, StoredMessage

Side = Literal["a", "b"]
SIDES: tuple[Side, Side] = ("a", "b")
# Answers that may be voted on: finished on their own, or cut by the token cap or a loop.
VOTABLE = ("stop", "length", "loop")


class ComparisonTurn:
    """Two turns answering one question; records the comparison when both are done."""

    def __init__(
        self,
        session_factory: SessionFactory,
        user_id: str,
        conversation_id: str,
        question: StoredMessage,
        created_question: bool,
        turns: tuple[Turn, Turn],
        memory_saved: Memory | None = None,
        variants: tuple[str, str, str] | None = None,
    ) -> None:
        self.session_factory = session_factory
        self.user_id = user_id
        self.conversation_id = conversation_id
        self.question = question
        # The question this request added (None when it answers an existing one again).
        self.user_message = question if created_question else None
        self.turns = dict(zip(SIDES, turns, strict=True))
        self.memory_saved = memory_saved
        # (experiment id, variant A id, variant B id) when a behavior experiment drew the turn.
        self.variants = variants
        self.comparison: Comparison | None = None
        self._started = False

    @property
    def answer_a(self) -> Turn:
        return self.turns["a"]

    @property
    def answer_b(self) -> Turn:
        return self.turns["b"]

    @property
    def notice(self) -> str | None:
        return self.turns["a"].notice or self.turns["b"].notice

    async def stream(self) -> AsyncGenerator[tuple[Side, Chunk], None]:
        """Each side's chunks as they come. An engine failure on either side is raised after
        the other side is stopped; however the stream ends, both answers are recorded."""
        if self._started:
            raise RuntimeError("a comparison streams once")
        self._started = True
        queue: asyncio.Queue[tuple[Side, Chunk | BaseException | None]] = asyncio.Queue()

        async def pump(side: Side, turn: Turn) -> None:
            try:
                async for chunk in turn.stream():
                    queue.put_nowait((side, chunk))
            except Exception as exc:  # handed to the consumer, which raises it
                queue.put_nowait((side, exc))
            finally:
                queue.put_nowait((side, None))

        tasks = [asyncio.create_task(pump(side, turn)) for side, turn in self.turns.items()]
        try:
            running = len(tasks)
            while running:
                side, item = await queue.get()
                if item is None:
                    running -= 1
                elif isinstance(item, BaseException):
                    raise item
                else:
                    yield side, item
        finally:
            for task in tasks:
                task.cancel()
            # Shielded: a client that went away still gets its answers and comparison stored.
            await asyncio.shield(self._finish(tasks))

    async def run(self) -> ComparisonTurn:
        async for _ in self.stream():
            pass
        return self

    async def _finish(self, tasks: list[asyncio.Task[None]]) -> None:
        await asyncio.gather(*tasks, return_exceptions=True)
        for turn in self.turns.values():
            await turn.recorded()
        await asyncio.to_thread(self._store)

    def _store(self) -> None:
        a, b = self.turns["a"], self.turns["b"]
        answers = [t.assistant_message for t in (a, b)]
        finished = all(
            t.generation is not None and t.generation.finish_reason in VOTABLE for t in (a, b)
        )
        # One transaction: the comparison and the branch the chat goes on from.
        with one_transaction(self.session_factory) as session:
            if finished and answers[0] is not None and answers[1] is not None:
                self.comparison = ComparisonRepo(session).create(
                    self.user_id,
                    self.conversation_id,
                    self.question.id,
                    answers[0].id,
                    answers[1].id,
                )
                if self.variants is not None:
                    ExperimentRepo(session).record_comparison(self.comparison.id, *self.variants)
            # The chat goes on from one answer (A, random), as after a single answer.
            continued = next((m for m in answers if m is not None), None)
            if continued is not None:
                ConversationRepo(session).set_current(
                    self.user_id, self.conversation_id, continued.id
                )
