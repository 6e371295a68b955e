"""The files tool: hybrid search over the chat's uploaded documents and the profile's knowledge.

    result = await get_tool("files").call(ctx, {"query": "when was the contract signed?"})
    result.content     # "[1] (contract.pdf, page 3) The contract was signed on ..."
    result.citations   # Citation(kind="file", file_id, locator, chunk, passage, index from 1 up)

Searches the files uploaded to the chat by the acting user plus a profile's knowledge files
(`ctx.files`, tandem.tools.workspace): those belong to the profile's owner, and a user chatting
with a shared profile only ever sees them through the passages retrieved, never as files.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

from tandem.tools.base import Citation, Tool, ToolContext, ToolResult, register_tool

TOP_K = 5
MAX_QUERY_CHARS = 2000


def _search(ctx: ToolContext, query: str) -> ToolResult:
    arguments = {"query": query}
    rows = ctx.files.in_scope()
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
    hits = ctx.files.search(ready, query, TOP_K)
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
