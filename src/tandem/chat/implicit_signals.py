"""Recording the implicit signals a chat turn reveals, inside the turn's own transaction.

    with one_transaction(session_factory) as session:
        ...                                                    # the turn's own writes first
        note_edit_resend(session, user_id, original, shown)    # POST …/edit
        note_followup(session, user_id, parent_id, text, id)   # a message that corrects
        note_stop(session, user_id, answer)                    # a stream the user stopped
        note_regenerate(session, user_id, old, new_answer)     # POST …/regenerate

A signal must never slow or break the turn that reveals it: each write runs in a SAVEPOINT
(no extra transaction, no extra commit), and a failure rolls back only that savepoint and is
logged; the question, the answer and its record are stored as if nothing happened. Each call
comes after a write of the same transaction (the new question, the new answer): SQLite's
driver opens its transaction at the first write, so a savepoint before any would be a
transaction, and a commit, of its own. Regenerate is therefore recorded when the new answer
is stored (tandem.chat.recording), with that answer's id.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tandem.chat.corrections import classify_followup
from tandem.store import ImplicitSignalRepo
from tandem.store.models import StoredMessage

log = logging.getLogger("tandem.chat.implicit_signals")


def _note(
    session: Session,
    user_id: str,
    answer: StoredMessage | None,
    kind: str,
    detail: dict[str, Any] | None = None,
) -> None:
    if answer is None or answer.role != "assistant" or answer.generation_id is None:
        return
    try:
        with session.begin_nested():
            ImplicitSignalRepo(session).record(
                user_id, answer.generation_id, kind, message_id=answer.id, detail=detail
            )
    except Exception:  # recording is best-effort: the user's turn goes on
        log.exception("could not record a %s signal on message %s", kind, answer.id)


def note_regenerate(
    session: Session, user_id: str, answer: StoredMessage, replacement: StoredMessage
) -> None:
    """The user asked for another answer in place of `answer`; `replacement` is the new one,
    stored in this transaction."""
    _note(session, user_id, answer, "regenerate", {"replacement_message_id": replacement.id})


def note_stop(session: Session, user_id: str, answer: StoredMessage | None) -> None:
    """The user stopped `answer` while it streamed (its finish reason is "cancelled")."""
    _note(session, user_id, answer, "stop")


def note_edit_resend(
    session: Session, user_id: str, original: StoredMessage, current_id: str | None
) -> None:
    """The user edited question `original` and sent it again: the signal goes on the answer
    that followed it, the one the chat showed (on the current branch) when there were several,
    else the newest."""
    try:
        answers = list(
            session.scalars(
                select(StoredMessage)
                .where(
                    StoredMessage.parent_id == original.id,
                    StoredMessage.role == "assistant",
                    StoredMessage.generation_id.is_not(None),
                )
                .order_by(StoredMessage.created_at.desc(), StoredMessage.id.desc())
            )
        )
    except Exception:
        log.exception("could not find the answer to edited message %s", original.id)
        return
    if not answers:
        return
    shown = next((a for a in answers if a.id == current_id), answers[0])
    _note(session, user_id, shown, "edit_resend", {"edited_message_id": original.id})


def note_followup(
    session: Session, user_id: str, parent_id: str | None, text: str, question_id: str
) -> None:
    """A new user message `text` under `parent_id`: when the parent is an answer and the
    message corrects it (tandem.chat.corrections), a signal on that answer."""
    if parent_id is None:
        return
    correction = classify_followup(text)
    if correction is None:
        return
    try:
        parent = session.get(StoredMessage, parent_id)
    except Exception:
        log.exception("could not read message %s", parent_id)
        return
    _note(
        session,
        user_id,
        parent,
        "corrective_followup",
        {"followup_message_id": question_id, "rule": correction.rule},
    )
