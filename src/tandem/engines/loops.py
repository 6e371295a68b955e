"""Noticing an answer that repeats itself, so generation can stop early and say so.

    params = SamplingParams(stop_loops=True)          # the chat's default; evals choose theirs
    async for chunk in cut_loops(engine, messages, params, engine.stream(messages, params)):
        ...                                            # ends with finish_reason "loop" if cut

    detector = LoopDetector()
    detector.feed(piece)               # True once the tail is one stretch of text over and over

The embedded 135M model often falls into a loop ("Bird/Fish" fifty times) and would run to the
token cap: 285 of IFEval's 541 answers did. A loop is the end of the text being exactly
periodic: a unit of `MIN_UNIT`..`MAX_SHORT_UNIT` characters repeated at least `MIN_REPEATS`
times, or a longer unit (a sentence or a paragraph, up to `MAX_UNIT` characters) repeated
`LONG_REPEATS` times, over at least `MIN_SPAN` characters. Exact repetition keeps ordinary
lists, tables and code (whose lines differ in numbers and names) from being cut; three verbatim
copies of a passage over 200 characters in a row is not something an answer means to say (the
sentence and paragraph loops that ran answers to the cap when only short units were looked for).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import aclosing

from tandem.core.generation import SamplingParams, Usage
from tandem.core.messages import Message
from tandem.engines.base import Chunk, Engine

MIN_UNIT = 2
MAX_SHORT_UNIT = 200
MAX_UNIT = 1500
# Chosen on the instruction suite's dev split (`python -m bench.loop_detector`): with 4 copies
# 3 of 185 grades changed against running every loop to the cap, with 8 copies 1, for 5% less
# text saved.
MIN_REPEATS = 8
LONG_REPEATS = 3
MIN_SPAN = 160


def tail_needed() -> int:
    """Enough tail to see LONG_REPEATS copies of the longest unit (and MIN_REPEATS of short
    ones); recomputed by whoever changes the constants (bench.loop_detector)."""
    return max(MAX_UNIT * LONG_REPEATS, MAX_SHORT_UNIT * MIN_REPEATS)


WINDOW = tail_needed()
# Candidate periods are where the last PROBE characters occurred before: a loop's period is
# the distance to one of them, so only those few are checked (not every length up to 1,500).
PROBE = 16


def repeats_itself(text: str) -> bool:
    """Whether `text` ends in a loop (see the module's docstring)."""
    tail = text[-WINDOW:]
    if len(tail) < MIN_SPAN:
        return False
    probe = tail[-PROBE:]
    end = len(tail) - 1  # an earlier occurrence must end before the tail does
    while (found := tail.rfind(probe, 0, end)) >= 0:
        end = found + PROBE - 1
        unit = len(tail) - (found + PROBE)
        if unit > MAX_UNIT:
            break
        if unit < MIN_UNIT:
            continue
        copies = MIN_REPEATS if unit <= MAX_SHORT_UNIT else LONG_REPEATS
        span = max(unit * copies, MIN_SPAN)
        if span > len(tail):
            continue  # not enough text yet for this period (a longer one may need less)
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
