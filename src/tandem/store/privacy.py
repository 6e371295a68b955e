"""Deleting everything a user said and signalled, while keeping the account.

This is the one place rows that datasets read are really deleted (not stamped): the user asked
for their data to be gone. Snapshots already built keep their own copies; later snapshots
cannot see the rows.

    counts = delete_user_data(session, user_id, settings.home / "uploads")
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from tandem.store.files import FileChunkRow, FileRepo, FileRow
from tandem.store.implicit import ImplicitSignal
from tandem.store.models import (
    Comparison,
    Conversation,
    Feedback,
    Improvement,
    Memory,
    StoredGeneration,
    StoredMessage,
    Upload,
)
from tandem.store.uploads import UploadRepo


def delete_user_data(
    session: Session, user_id: str, uploads_root: Path, files_root: Path | None = None
) -> dict[str, int]:
    """Delete the user's conversations (deleted ones too), messages, generation records,
    feedback, comparisons, improvements, implicit signals, memories, uploads and documents
    (their bytes and chunks included), in one transaction. Returns how many of each were
    deleted. The account, its API keys, profiles and custom instructions stay. `files_root`
    defaults to the `files` folder beside `uploads_root` ($TANDEM_HOME/files)."""
    conversations = select(Conversation.id).where(Conversation.owner_id == user_id)
    user_files = select(FileRow.id).where(FileRow.user_id == user_id)
    # Children before parents, so every count is a row this call deleted (a cascade would
    # delete rows without counting them).
    targets = [
        ("feedback", Feedback, Feedback.user_id == user_id),
        ("comparisons", Comparison, Comparison.user_id == user_id),
        ("improvements", Improvement, Improvement.user_id == user_id),
        ("implicit_signals", ImplicitSignal, ImplicitSignal.user_id == user_id),
        ("file_chunks", FileChunkRow, FileChunkRow.file_id.in_(user_files)),
        ("files", FileRow, FileRow.user_id == user_id),
        ("messages", StoredMessage, StoredMessage.conversation_id.in_(conversations)),
        ("conversations", Conversation, Conversation.owner_id == user_id),
        ("generations", StoredGeneration, StoredGeneration.user_id == user_id),
        ("memories", Memory, Memory.user_id == user_id),
        ("uploads", Upload, Upload.user_id == user_id),
    ]
    counts: dict[str, int] = {}
    for name, model, where in targets:
        counts[name] = session.scalar(select(func.count()).select_from(model).where(where)) or 0
        if model is StoredMessage:
            # Messages point at each other (parent_id) and at generations: unlink first so
            # no row order matters within the one DELETE.
            session.execute(
                StoredMessage.__table__.update()
                .where(where)
                .values(parent_id=None, generation_id=None)
            )
        session.execute(delete(model).where(where))
    session.commit()
    # Chunks are a file's insides: the user counts documents, not passages.
    counts.pop("file_chunks")
    UploadRepo(session, uploads_root).delete_all_files(user_id)
    FileRepo(session, files_root or uploads_root.parent / "files").delete_all_files(user_id)
    return counts
