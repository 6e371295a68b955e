"""Privacy: delete everything I said and signalled, keep my account. (The "use my
conversations to improve the model" switch is `use_for_training` on /api/auth/me.)"""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from tandem.api.deps import CurrentUser, SessionDep, SettingsDep
from tandem.store import delete_user_data

router = APIRouter(prefix="/api/auth/me", tags=["privacy"])


class DeletedCounts(BaseModel):
    conversations: int
    messages: int
    generations: int
    feedback: int
    comparisons: int
    improvements: int
    implicit_signals: int
    memories: int
    uploads: int
    files: int


class DataDeleted(BaseModel):
    deleted: DeletedCounts


@router.delete("/data", response_model=DataDeleted)
def delete_my_data(user: CurrentUser, session: SessionDep, settings: SettingsDep):
    """Delete my conversations, messages, generation records, feedback, comparisons,
    improvements, implicit signals, memories, uploads and documents (bytes too). Returns how
    many of each went."""
    counts = delete_user_data(session, user.id, settings.home / "uploads")
    return DataDeleted(deleted=DeletedCounts(**counts))
