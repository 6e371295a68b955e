"""Noticing an answer that repeats itself, so generation can stop early and say so.

    detector = LoopDetector()
    detector.feed(piece)               # True once the tail is one stretch of text over and over

`tandem.engines.base.cut_loops` ends a stream with finish_reason "loop" when
`SamplingParams.stop_loops` (the chat's default; evals choose theirs) and it detects one.

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
