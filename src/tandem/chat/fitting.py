"""Fitting a long conversation into the model's context: the oldest turns go first.

    fitted = fit_to_context(engine, messages, params.max_tokens)
    fitted.prompt, fitted.dropped            # what the model reads, encoded; how many went

A chat outgrows the embedded model's 4,096 tokens in a few long turns. Rather than refusing the
next message ("the prompt is 4127 tokens"), the chat drops the oldest turns (a user message and
everything answering it) until the prompt plus room for the answer fits. The system message
(instructions, memories, tool results) and the newest turn always stay; when even they do not
fit, the engine's own check refuses the request with its clear error. Engines that cannot count
tokens (remote servers) get the whole conversation: their server has the last word. The prompt
that was counted is the one the model is fed: nothing is rendered or tokenized twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tandem.core.messages import Message
from tandem.engines.base import EncodedPrompt, Engine

# The room held back for the answer: the request's max_tokens, but never more than this share
# of the context, so a large max_tokens cannot push out the whole conversation.
ANSWER_ROOM_SHARE = 4
STRATEGY = "drop_oldest"
CONTEXT_NOTICE = (
    "This chat is now longer than the model can read at once: it no longer sees the oldest "
    "messages."
)


@dataclass(frozen=True)
class Fitted:
    prompt: EncodedPrompt
    # Messages dropped from the start of the conversation (after the system message).
    dropped: int = 0


def fit_to_context(
    engine: Engine,
    messages: Sequence[Message],
    max_tokens: int,
    continue_final: bool = False,
) -> Fitted:
    """`messages` minus the oldest whole turns, so that the prompt and room for the answer fit
    `engine.max_context`. Dropping more never makes a prompt longer, so the first turn to keep
    is found by binary search: a handful of tokenizations even for a long chat."""
    messages = list(messages)
    if engine.max_context is None:
        return Fitted(engine.encode(messages, continue_final))
    max_context = engine.max_context
    room = min(max_tokens, max_context // ANSWER_ROOM_SHARE)
    head = messages[:1] if messages and messages[0].role == "system" else []
    body = messages[len(head) :]
    encoded: dict[int, EncodedPrompt] = {}

    def encode(cut: int) -> EncodedPrompt:
        if cut not in encoded:
            encoded[cut] = engine.encode(head + body[cut:], continue_final)
        return encoded[cut]

    def fits(cut: int) -> bool:
        count = encode(cut).token_count
        return count is None or count + room <= max_context

    if fits(0):
        return Fitted(encode(0))
    # A kept part starts at a user message; the newest turn is never dropped.
    cuts = [i for i, m in enumerate(body) if m.role == "user" and i > 0]
    if not cuts:
        return Fitted(encode(0))
    lo, hi = 0, len(cuts) - 1
    while lo < hi:
        mid = (lo + hi) // 2
        if fits(cuts[mid]):
            hi = mid
        else:
            lo = mid + 1
    return Fitted(encode(cuts[lo]), cuts[lo])
