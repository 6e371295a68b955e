"""The files tool: hybrid search over the chat's uploaded documents and the profile's knowledge.

    result = await get_tool("files").call(ctx, {"query": "when was the contract signed?"})
    result.content     # "[1] (contract.pdf, page 3) The contract was signed on ..."
    result.citations   # Citation(kind="file", file_id, locator, chunk, passage, index from 1 up)

Searches the files uploaded to `ctx.conversation_id` by the acting user plus
`ctx.knowledge_file_ids`, which are a profile's knowledge files: those belong to the profile's
owner (checked again here against the profile row), and a user chatting with a shared
profile only ever sees them through the passages retrieved, never as file rows.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, ClassVar

from sqlalchemy import select

from tandem.retrieval.embeddings import Embedder, get_embedder
from tandem.retrieval.search import search_chunks
from tandem.store.files import FileRepo, FileRow
from tandem.store.models import Profile
from tandem.tools.base import Citation, Tool, ToolContext, ToolResult, register_tool

log = logging.getLogger("tandem.tools.files")

TOP_K = 5
MAX_QUERY_CHARS = 2000


def _files_in_scope(ctx: ToolContext, repo: FileRepo) -> list[FileRow]:
    rows: list[FileRow] = []
    if ctx.conversation_id:
        rows += repo.list_for_conversation(ctx.user_id, ctx.conversation_id)
    if ctx.knowledge_file_ids and ctx.profile_id:
        owner = repo.session.scalar(select(Profile.owner_id).where(Profile.id == ctx.profile_id))
        if owner is not None:
            rows += repo.rows_by_ids(owner, list(ctx.knowledge_file_ids))
    return list({row.id: row for row in rows}.values())


def _embedder(ctx: ToolContext) -> Embedder | None:
    """The process's embedder, prepared under this server's home; None (keywords only) if the
    model cannot be loaded."""
    try:
        return get_embedder(ctx.settings.home)
    except Exception:
        log.exception("the embedding model is unavailable; searching by keywords")
        return None


def _search(ctx: ToolContext, query: str) -> ToolResult:
    arguments = {"query": query}
    with ctx.session_factory() as session:
        repo = FileRepo(session)
        rows = _files_in_scope(ctx, repo)
        ready = [r for r in rows if r.status == "ready"]
        pending = [r for r in rows if r.status in ("queued", "ingesting")]
        if not ready:
            if pending:
                progress = ", ".join(f"{r.filename} {int(r.progress * 100)}%" for r in pending)
                message = f"still ingesting: {progress}"
            elif rows:
                message = "No readable files in this chat: every upload failed to ingest"
            else:
                message = "No files in this chat yet"
            return ToolResult("files", arguments, error=message)
        hits = search_chunks(
            session,
            [r.id for r in ready],
            query,
            k=TOP_K,
            embedder=_embedder(ctx) if any(r.embedded_count for r in ready) else None,
        )
    names = {r.id: r.filename for r in ready}
    lines, citations = [], []
    for n, hit in enumerate(hits, start=ctx.citation_start):
        name = names[hit.file_id]
        lines.append(f"[{n}] ({name}, {hit.locator}) {hit.text}")
        citations.append(
            Citation(
                index=n,
                kind="file",
                title=name,
                passage=hit.text,
                file_id=hit.file_id,
                locator=hit.locator,
                chunk=hit.ordinal,
            )
        )
    if not lines:
        lines.append("No passage in the files matches this question.")
    if pending:
        lines.append(
            "(Not searched yet, still ingesting: " + ", ".join(r.filename for r in pending) + ")"
        )
    return ToolResult(
        "files",
        arguments,
        content="\n\n".join(lines),
        citations=citations,
        display={"query": query, "files": [r.filename for r in ready]},
    )


@register_tool
class FilesTool(Tool):
    name = "files"
    title = "Files"
    description = (
        "Search the documents uploaded to this chat (and the assistant's knowledge files) "
        "and return the most relevant numbered passages to cite."
    )
    parameters: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {"query": {"type": "string", "description": "what to look for"}},
        "required": ["query"],
    }

    async def run(self, ctx: ToolContext, arguments: dict[str, Any]) -> ToolResult:
        query = arguments.get("query")
        if not isinstance(query, str) or not query.strip():
            return ToolResult(self.name, arguments, error="the files tool needs a query")
        # Embedding the query and scoring chunks is CPU work: keep it off the event loop.
        return await asyncio.to_thread(_search, ctx, query.strip()[:MAX_QUERY_CHARS])
