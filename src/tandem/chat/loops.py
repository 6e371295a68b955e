"""Noticing an answer that repeats itself, so the chat can cut it short and say so.

    detector = LoopDetector()
    for piece in stream:
        if detector.feed(piece):      # the tail is one stretch of text over and over
            break                      # the turn ends with finish_reason "loop"

The embedded 135M model often falls into a loop ("Bird/Fish" fifty times) and would run to the
token cap: 285 of IFEval's 541 answers did. A loop is the end of the text being exactly
periodic: a unit of `MIN_UNIT`..`MAX_UNIT` characters repeated at least `MIN_REPEATS` times and
over at least `MIN_SPAN` characters. Exact repetition keeps ordinary lists, tables and code
(whose lines differ in numbers and names) from being cut.
"""

from __future__ import annotations

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
