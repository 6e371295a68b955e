"""Noticing an answer that repeats itself, so generation can stop early and say so.

    params = SamplingParams(stop_loops=True)          # the chat's default; evals choose theirs
    async for chunk in cut_loops(engine, messages, params, engine.stream(messages, params)):
        ...                                            # ends with finish_reason "loop" if cut

    detector = LoopDetector()
    detector.feed(piece)               # True once the tail is one stretch of text over and over

The embedded 135M model often falls into a loop ("Bird/Fish" fifty times) and would run to the
token cap: 285 of IFEval's 541 answers did. A loop is the end of the text being exactly
periodic: a unit of `MIN_UNIT`..`MAX_UNIT` characters repeated at least `MIN_REPEATS` times and
over at least `MIN_SPAN` characters. Exact repetition keeps ordinary lists, tables and code
(whose lines differ in numbers and names) from being cut.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import aclosing

from tandem.core.generation import SamplingParams, Usage
from tandem.core.messages import Message
from tandem.engines.base import Chunk, Engine

MIN_UNIT = 2
MAX_UNIT = 200
MIN_REPEATS = 4
MIN_SPAN = 160
# Enough tail to see MIN_REPEATS copies of the longest unit.
WINDOW = MAX_UNIT * MIN_REPEATS


def repeats_itself(text: str) -> bool:
    """Whether `text` ends in a loop (see the module's docstring)."""
    tail = text[-WINDOW:]
    for unit in range(MIN_UNIT, min(MAX_UNIT, len(tail) // MIN_REPEATS) + 1):
        span = max(unit * MIN_REPEATS, MIN_SPAN)
        if span > len(tail):
            break
        window = tail[-span:]
        # Periodic with period `unit` <=> the window equals itself shifted by `unit`.
        if window[unit:] == window[:-unit] and window.strip():
            return True
    return False


class LoopDetector:
    """Feeds a streamed answer to `repeats_itself`, keeping only the tail it needs."""

    def __init__(self) -> None:
        self._tail = ""

    def feed(self, text: str) -> bool:
        self._tail = (self._tail + text)[-WINDOW:]
        return bool(text) and repeats_itself(self._tail)


async def cut_loops(
    engine: Engine,
    messages: Sequence[Message],
    params: SamplingParams,
    chunks: AsyncIterator[Chunk],
    continue_final: bool = False,
) -> AsyncIterator[Chunk]:
    """`chunks` (the engine's stream for `messages`), ended early with finish_reason "loop"
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
    prompt = engine.count_tokens(messages, continue_final) or 0
    yield Chunk(finish_reason="loop", usage=Usage(prompt, pieces), seed=params.seed)
