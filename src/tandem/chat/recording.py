"""What a finished turn stores: its generation record and, in a chat, the answer message.

    generation, answer = store_answer(session_factory, user_id, record, prompt, text,
                                      generation_id, results, branch, make_current)

Both are written in one transaction, so a chat never shows an answer without its record (or
a record without its answer). A continuation is a new version of the answer it continues.
"""

from __future__ import annotations

from collections.abc import Sequence

from tandem.chat.branch import Branch
from tandem.chat.implicit_signals import note_regenerate, note_stop
from tandem.chat.tooling import answer_parts
from tandem.core.generation import GenerationRecord
from tandem.core.messages import Message, Part
from tandem.store import ConversationRepo, GenerationRepo, SessionFactory, one_transaction
from tandem.store.models import StoredGeneration, StoredMessage
from tandem.tools.base import ToolResult


def store_answer(
    session_factory: SessionFactory,
    user_id: str,
    record: GenerationRecord,
    messages: Sequence[Message],
    text: str,
    generation_id: str,
    results: Sequence[ToolResult],
    branch: Branch | None,
    make_current: bool,
) -> tuple[StoredGeneration, StoredMessage | None]:
    """Store the record of generating `text` from `messages` and, for a chat turn
    (`branch`), the answer under its question."""
    with one_transaction(session_factory) as session:
        generation = GenerationRepo(session).add(
            user_id, record, messages, text, generation_id=generation_id
        )
        if branch is None:
            return generation, None
        answer = ConversationRepo(session).add_message(
            user_id,
            branch.conversation_id,
            answer_message(text, results, branch.continues),
            branch.question.id,
            generation_id=generation.id,
            make_current=make_current,
        )
        # Implicit signals, written after the answer so they share its transaction (on SQLite
        # a savepoint opened before any write would commit on its own). A chat answer the user
        # stopped mid-stream (the web UI's Stop aborts the request) is a signal on it; a
        # comparison's two answers are judged by the vote instead.
        if record.finish_reason == "cancelled" and make_current:
            note_stop(session, user_id, answer)
        if branch.regenerates is not None:
            note_regenerate(session, user_id, branch.regenerates, answer)
    return generation, answer


def answer_message(
    text: str, results: Sequence[ToolResult], continues: StoredMessage | None = None
) -> Message:
    """The stored answer. A continuation is a new version of the answer it continues: that
    answer's text and then this turn's, with the sources and images it had."""
    if continues is None:
        return Message("assistant", answer_parts(text, results))
    before = continues.to_message()
    kept = tuple(p for p in before.parts if p.type != "text")
    return Message("assistant", (Part("text", before.content + text), *kept))
