"""What a tool may read and write of the user's data, handed over by the chat.

Tools never open the database: the chat builds these from the store for the one user and chat
a tool runs for (tandem.chat.tool_access), so a tool cannot reach anyone else's files.

    ctx.files.in_scope()                      # the chat's files and the profile's knowledge
    ctx.files.search(files, "contract", k=5)  # numbered passages to cite
    ctx.files.paths()                         # the chat's uploads on disk, for the sandbox
    ctx.uploads.save("chart.png", png)        # {"upload_id", "mime"}: shown with the answer
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from tandem.core.generation import Completion, SamplingParams
from tandem.core.messages import Message


@dataclass(frozen=True)
class ChatFile:
    """A file a tool may search: uploaded to the chat, or one of a profile's knowledge files."""

    id: str
    filename: str
    status: str  # "queued", "ingesting", "ready" or "failed"
    progress: float  # the share of the file read so far
    embedded: bool  # some of its passages have embeddings: search by meaning helps


@dataclass(frozen=True)
class Passage:
    """A passage of a file that matches a query."""

    file_id: str
    text: str
    locator: str  # where in the file: "page 3", "rows 10-20", "line 1"
    ordinal: int  # the passage's number in its file: GET /api/files/{file_id}/chunks/{ordinal}


class ChatFiles(Protocol):
    def in_scope(self) -> list[ChatFile]:
        """The files uploaded to the chat by the acting user and the profile's knowledge files
        (its owner's: seen only through the passages found), each once."""
        ...

    def search(self, files: Sequence[ChatFile], query: str, k: int) -> list[Passage]:
        """The `k` passages of `files` that best match `query`, best first."""
        ...

    def paths(self) -> list[tuple[str, Path]]:
        """The chat's own uploads on disk by filename (the code interpreter's working files;
        a profile's knowledge files are not copied anywhere)."""
        ...


class Uploads(Protocol):
    def save(self, filename: str, data: bytes) -> dict[str, str]:
        """Store an image as one of the user's uploads; returns the attachment
        `{"upload_id", "mime"}` that shows it with the answer."""
        ...


class ChatModel(Protocol):
    """The chat's model, for tools that ask it to write something (an image prompt, code)."""

    async def complete(self, messages: Sequence[Message], params: SamplingParams) -> Completion:
        """The model's answer; raises when it cannot give one (too long, a backend failure)."""
        ...
