"""Memories: short facts the user asked the assistant to remember, listed in the system
message of chats that have memory on. Per user; deleting stamps `deleted_at`.

    MemoryRepo(session).create(user_id, "I live in Lyon")
"""

from __future__ import annotations

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from tandem.core.errors import Conflict, InvalidInput, NotFound
from tandem.store.models import Memory, utcnow

MAX_MEMORY_CHARS = 1000
# Every memory goes into every prompt: a cap keeps the system message within a small
# model's context.
MAX_MEMORIES = 100


def clean_memory_text(text: str) -> str:
    """Whitespace-trimmed and cut to MAX_MEMORY_CHARS; empty text is the caller's error."""
    text = text.strip()[:MAX_MEMORY_CHARS].strip()
    if not text:
        raise InvalidInput("a memory needs some text")
    return text


class MemoryRepo:
    def __init__(self, session: Session) -> None:
        self.session = session

    def _live(self, user_id: str) -> Select[Memory]:
        return select(Memory).where(Memory.user_id == user_id, Memory.deleted_at.is_(None))

    def count(self, user_id: str) -> int:
        stmt = select(func.count()).select_from(self._live(user_id).subquery())
        return self.session.scalar(stmt) or 0

    def create(self, user_id: str, text: str) -> Memory:
        text = clean_memory_text(text)
        if self.count(user_id) >= MAX_MEMORIES:
            raise Conflict(f"you have {MAX_MEMORIES} memories; delete some to add more")
        row = Memory(user_id=user_id, text=text)
        self.session.add(row)
        self.session.commit()
        return row

    def list(self, user_id: str) -> list[Memory]:
        """Oldest first: the order they are listed in the system message."""
        return list(
            self.session.scalars(self._live(user_id).order_by(Memory.created_at, Memory.id))
        )

    def get(self, user_id: str, memory_id: str) -> Memory:
        row = self.session.scalar(self._live(user_id).where(Memory.id == memory_id))
        if row is None:
            raise NotFound("memory", memory_id)
        return row

    def update(self, user_id: str, memory_id: str, text: str) -> Memory:
        row = self.get(user_id, memory_id)
        row.text = clean_memory_text(text)
        row.updated_at = utcnow()
        self.session.commit()
        return row

    def delete(self, user_id: str, memory_id: str) -> None:
        row = self.get(user_id, memory_id)
        row.deleted_at = utcnow()
        self.session.commit()
