"""The tool interface: what every tool (files, code, web, image) implements, and its registry.

A tool runs two ways (issue: the embedded 135M model cannot call functions reliably):

* **switched on** by the user in the composer or by a profile: tandem derives the tool's
  arguments from the user's message (`arguments_for`), runs it before the model answers and puts
  the result in the prompt;
* **called by the model** through OpenAI-style tool calls, for models behind an
  OpenAI-compatible engine that support them: the model fills in `parameters`.

Either way the call, its input, its output and its citations become part of the generation
record (`ToolResult.to_record`), so datasets and evals see them.

    @register_tool
    class Echo(Tool):
        name = "echo"
        title = "Echo"
        description = "Repeats its input."
        parameters = {"type": "object", "properties": {"text": {"type": "string"}},
                      "required": ["text"]}

        async def run(self, ctx, arguments):
            return ToolResult(self.name, arguments, content=arguments["text"])
"""

from __future__ import annotations

import importlib
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from tandem.core.settings import Settings
from tandem.tools.workspace import ChatFiles, ChatModel, Uploads

# The longest a tool's text may be when it goes into the prompt: the embedded model has a
# 8k-token context, and a tool must leave room for the conversation and the answer.
MAX_PROMPT_CHARS = 6000


@dataclass(frozen=True)
class Citation:
    """A numbered source the answer can cite as [index]; clicking it shows `passage`."""

    index: int
    kind: str  # "file" or "web"
    title: str
    passage: str
    url: str | None = None
    file_id: str | None = None
    locator: str | None = None  # where in the source: "page 3", "rows 10-20", "chunk 7"
    chunk: int | None = None  # a file passage's ordinal: GET /api/files/{file_id}/chunks/{chunk}

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass
class ToolResult:
    """What one tool call produced.

    `content` is what the model reads; `display` is tool-specific data for the person (stdout
    and stderr, a table, search results, the image prompt); `attachments` are image parts to
    show with the answer (`{"upload_id", "mime"}`: a chart, a generated image); `error` is a
    sentence for the user when the tool failed or was refused - a failed tool never fails the
    turn, the model answers without it."""

    tool: str
    arguments: dict[str, Any]
    content: str = ""
    citations: list[Citation] = field(default_factory=list)
    attachments: list[dict[str, Any]] = field(default_factory=list)
    display: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    duration_s: float = 0.0
    call_id: str | None = None  # the model's tool-call id, for model-initiated calls

    def to_record(self) -> dict[str, Any]:
        return {
            "tool": self.tool,
            "call_id": self.call_id,
            "arguments": self.arguments,
            "content": self.content,
            "citations": [c.to_dict() for c in self.citations],
            "attachments": self.attachments,
            "display": self.display,
            "error": self.error,
            "duration_s": round(self.duration_s, 3),
        }


@dataclass
class ToolContext:
    """Who is asking and what they may touch (tandem.tools.workspace): tools only ever see
    this user's data, and only as the chat hands it over."""

    user_id: str
    settings: Settings
    # The chat's files (the files tool searches them, the code interpreter reads them) and
    # the user's uploads (where charts and generated images go).
    files: ChatFiles
    uploads: Uploads
    # The chat model, for tools that ask it to write something (the image tool's prompt).
    engine: ChatModel | None = None
    # Citations from several tools in one turn are numbered consecutively.
    citation_start: int = 1

    @property
    def home(self) -> Path:
        return self.settings.home


class Tool(ABC):
    name: ClassVar[str]
    title: ClassVar[str]  # the composer's label
    description: ClassVar[str]  # for the model, in the OpenAI `tools` list
    parameters: ClassVar[dict[str, Any]]  # JSON Schema of the arguments

    @abstractmethod
    async def run(self, ctx: ToolContext, arguments: dict[str, Any]) -> ToolResult:
        """Do the work. Expected failures come back as `ToolResult(error=...)`, not raised."""

    def arguments_for(self, ctx: ToolContext, user_text: str) -> dict[str, Any]:
        """The arguments when the user switched the tool on: by default their message is the
        query. Tools whose input is something else (code) override this."""
        return {"query": user_text}

    def available(self, settings: Settings) -> str | None:
        """None when the tool can run here, else a sentence saying why not (no image backend
        configured); a tool that is not available answers with that sentence as its error."""
        return None

    def openai_schema(self) -> dict[str, Any]:
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.parameters,
            },
        }

    async def call(self, ctx: ToolContext, arguments: dict[str, Any]) -> ToolResult:
        """`run` with timing, the availability check and a last-resort guard: a bug in a tool
        becomes an error the user sees, never a failed turn."""
        start = time.perf_counter()
        reason = self.available(ctx.settings)
        if reason is not None:
            result = ToolResult(self.name, arguments, error=reason)
        else:
            try:
                result = await self.run(ctx, arguments)
            except Exception as exc:
                result = ToolResult(self.name, arguments, error=f"{self.title} failed: {exc}")
        result.duration_s = time.perf_counter() - start
        return result


TOOLS: dict[str, Callable[[], Tool]] = {}

# Built-in tools register when their module is imported; imported on first use, so chat
# without tools never loads parsers, embedding models or the sandbox.
BUILTIN_TOOL_MODULES = {
    "files": "tandem.tools.files",
    "code": "tandem.tools.code",
    "web": "tandem.tools.web",
    "image": "tandem.tools.image",
}


def register_tool(factory: Callable[[], Tool]) -> Callable[[], Tool]:
    """Class decorator: make a tool available by its `name`."""
    TOOLS[factory.name] = factory  # type: ignore[attr-defined]  # a Tool class is its own factory
    return factory


def tool_names() -> list[str]:
    return sorted(set(TOOLS) | set(BUILTIN_TOOL_MODULES))


def get_tool(name: str) -> Tool:
    if name not in TOOLS and name in BUILTIN_TOOL_MODULES:
        importlib.import_module(BUILTIN_TOOL_MODULES[name])
    if name not in TOOLS:
        raise KeyError(f"no tool {name!r}; known: {', '.join(tool_names())}")
    return TOOLS[name]()


def prompt_block(results: list[ToolResult]) -> str:
    """Tool results as the text the model reads: each tool's content under its title, failed
    tools named so the model does not pretend they ran, and how to cite."""
    sections = []
    cites = False
    for result in results:
        title = result.tool
        if result.error:
            sections.append(f"## {title}\nThe tool could not run: {result.error}")
            continue
        sections.append(f"## {title}\n{result.content[:MAX_PROMPT_CHARS]}")
        cites = cites or bool(result.citations)
    text = "Results of tools run for this message:\n\n" + "\n\n".join(sections)
    if cites:
        text += "\n\nWhen you use a numbered source, cite it like [1]."
    return text
