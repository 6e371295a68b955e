"""The store behind the tools' workspace (tandem.tools.workspace), for one user in one chat.

    files = ConversationFiles(session_factory, home, user_id, conversation_id, profile)
    uploads = UserUploads(session_factory, home, user_id)
    ToolContext(user_id, settings, files=files, uploads=uploads, engine=engine)

Each call opens its own short session: tools run while the turn streams, long after the
request's own transaction has committed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from tandem.retrieval.embeddings import Embedder, get_embedder
from tandem.retrieval.search import search_chunks
from tandem.store import FileRepo, SessionFactory, UploadRepo
from tandem.store.files import FileRow
from tandem.store.models import Profile
from tandem.tools.workspace import ChatFile, Passage

log = logging.getLogger("tandem.chat.tool_access")


def _embedder(home: Path) -> Embedder | None:
    """The process's embedder, prepared under this server's home; None (keywords only) if the
    model cannot be loaded."""
    try:
        return get_embedder(home)
    except Exception:
        log.exception("the embedding model is unavailable; searching by keywords")
        return None


class ConversationFiles:
    """The files of one chat as its user may see them: their own uploads to it, and the
    profile's knowledge files, which belong to the profile's owner."""

    def __init__(
        self,
        session_factory: SessionFactory,
        home: Path,
        user_id: str,
        conversation_id: str,
        profile: Profile | None,
    ) -> None:
        self.session_factory = session_factory
        self.home = home
        self.user_id = user_id
        self.conversation_id = conversation_id
        # Knowledge file ids were checked when the profile was saved; they are read as the
        # owner's files, so an id of anyone else's finds nothing.
        self.knowledge_owner = profile.owner_id if profile else None
        self.knowledge_ids = list(profile.knowledge_file_ids) if profile else []

    def in_scope(self) -> list[ChatFile]:
        with self.session_factory() as session:
            repo = FileRepo(session)
            rows: list[FileRow] = repo.list_for_conversation(self.user_id, self.conversation_id)
            if self.knowledge_ids and self.knowledge_owner is not None:
                rows += repo.rows_by_ids(self.knowledge_owner, self.knowledge_ids)
        unique = {row.id: row for row in rows}.values()
        return [
            ChatFile(r.id, r.filename, r.status, r.progress, bool(r.embedded_count)) for r in unique
        ]

    def search(self, files: Sequence[ChatFile], query: str, k: int) -> list[Passage]:
        """Hybrid search (tandem.retrieval.search): keywords, plus meaning where the files
        have embeddings."""
        embedder = _embedder(self.home) if any(f.embedded for f in files) else None
        with self.session_factory() as session:
            hits = search_chunks(session, [f.id for f in files], query, k=k, embedder=embedder)
        return [Passage(h.file_id, h.text, h.locator, h.ordinal) for h in hits]

    def paths(self) -> list[tuple[str, Path]]:
        with self.session_factory() as session:
            repo = FileRepo(session, self.home / "files")
            rows = repo.list_for_conversation(self.user_id, self.conversation_id)
            return [(row.filename, repo.path(row)) for row in rows if repo.path(row).is_file()]


class UserUploads:
    """Where tools keep the images they make (charts, generated images): the user's uploads."""

    def __init__(self, session_factory: SessionFactory, home: Path, user_id: str) -> None:
        self.session_factory = session_factory
        self.home = home
        self.user_id = user_id

    def save(self, filename: str, data: bytes) -> dict[str, str]:
        with self.session_factory() as session:
            row = UploadRepo(session, self.home / "uploads").create(self.user_id, filename, data)
        return {"upload_id": row.id, "mime": row.mime}
