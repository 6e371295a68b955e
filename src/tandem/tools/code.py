"""The code interpreter: Python from the user or the model, run in the sandbox.

Switched on in the composer, the code is the first fenced block of the user's message
(```python or plain ```); a message without one is a request, and the chat model is asked to
write the code for it (the display says so). The chat's uploaded files are copied into the
sandbox's working directory; charts come back as image uploads shown with the answer, and
the model reads the output, the last value and table previews.

    POST /api/conversations/{id}/messages
    {"text": "```python\\nimport pandas as pd\\npd.read_csv('sales.csv').plot()\\n```",
     "tools": ["code"]}
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from tandem.core.generation import SamplingParams
from tandem.core.messages import Message
from tandem.sandbox import SandboxResult, SandboxUnavailable, detect_isolation, run_code_async
from tandem.sandbox.limits import SandboxLimits
from tandem.tools.base import Tool, ToolContext, ToolResult, register_tool

_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)```", re.DOTALL)
WRITE_CODE_PROMPT = (
    "Write a short Python program that does what the user asks. Reply with one ```python "
    "code block and nothing else. Use print() for results; matplotlib for charts."
)
WRITE_CODE_MAX_TOKENS = 200
MAX_SHOWN = 4000  # characters of stdout/stderr kept in the display and the prompt
PREVIEW_ROWS = 10


def first_code_block(text: str) -> str | None:
    """The first ```python (or bare ```) fenced block's contents; blocks in another language
    are skipped."""
    for match in _FENCE.finditer(text):
        language = match.group(1).lower()
        if language in ("", "python", "py", "python3"):
            return match.group(2).strip("\n")
    return None


def _trim(text: str, limit: int = MAX_SHOWN) -> str:
    return (
        text if len(text) <= limit else text[:limit] + f"\n… ({len(text) - limit} more characters)"
    )


def _table_preview(table: dict[str, Any]) -> str:
    lines = [" | ".join(table["columns"])]
    lines += [
        " | ".join("" if c is None else str(c) for c in row) for row in table["rows"][:PREVIEW_ROWS]
    ]
    more = table.get("total_rows", len(table["rows"])) - min(len(table["rows"]), PREVIEW_ROWS)
    if more > 0:
        lines.append(f"… {more} more rows")
    return "\n".join(lines)


def model_content(code: str, result: SandboxResult, charts: int) -> str:
    """What the chat model reads: the code, its output, its value, table previews, charts."""
    parts = [f"Python code that ran:\n```python\n{_trim(code, 2000)}\n```"]
    if result.stdout:
        parts.append(f"Output:\n{_trim(result.stdout, 2000)}")
    if result.value is not None:
        parts.append(f"Value of the last line: {_trim(result.value, 1000)}")
    for i, table in enumerate(result.tables[:3], 1):
        parts.append(f"Table {i}:\n{_table_preview(table)}")
    if charts:
        parts.append(f"{charts} chart(s) were drawn and are shown to the user below the answer.")
    if result.error:
        parts.append(f"Error: {result.error}\n{_trim(result.stderr, 1000)}")
    return "\n\n".join(parts)


@register_tool
class CodeInterpreter(Tool):
    name = "code"
    title = "Code"
    description = (
        "Run Python in a sandbox without network access. The chat's uploaded files are in the "
        "working directory; pandas and matplotlib are available where installed. Returns "
        "stdout, the last expression's value, tables and charts."
    )
    parameters: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {"code": {"type": "string", "description": "Python source to run"}},
        "required": ["code"],
    }

    def arguments_for(self, ctx: ToolContext, user_text: str) -> dict[str, Any]:
        """The first fenced code block; without one, the request for the model to write code
        for (in `run`, which can await the model)."""
        code = first_code_block(user_text)
        return {"code": code} if code is not None else {"request": user_text}

    def available(self, settings: Any) -> str | None:
        try:
            detect_isolation()
        except SandboxUnavailable as exc:
            return f"The code interpreter is switched off on this server: {exc}."
        return None

    async def _write_code(self, ctx: ToolContext, request: str, files: list[str]) -> str | None:
        if ctx.engine is None:
            return None
        system = WRITE_CODE_PROMPT
        if files:
            system += " Files in the working directory: " + ", ".join(files) + "."
        completion = await ctx.engine.complete(
            [Message.text("system", system), Message.text("user", request[:4000])],
            SamplingParams(temperature=0.0, max_tokens=WRITE_CODE_MAX_TOKENS),
        )
        text = completion.text
        return first_code_block(text + ("\n```" if text.count("```") % 2 else ""))

    async def run(self, ctx: ToolContext, arguments: dict[str, Any]) -> ToolResult:
        files = ctx.files.paths()
        code = arguments.get("code")
        written_by = "user"
        if code is None and isinstance(arguments.get("request"), str):
            written_by = "model"
            code = await self._write_code(ctx, arguments["request"], [n for n, _ in files])
            if code is None:
                return ToolResult(
                    self.name,
                    arguments,
                    error="The model did not write any Python code for this request.",
                    display={
                        "code": "",
                        "stdout": "",
                        "stderr": "",
                        "tables": [],
                        "status": "error",
                        "written_by": "model",
                    },
                )
        if not isinstance(code, str) or not code.strip():
            return ToolResult(self.name, arguments, error="There is no Python code to run.")
        result = await run_code_async(code, files, home=ctx.home, limits=SandboxLimits.from_env())
        attachments = [ctx.uploads.save(f"chart-{name}", png) for name, png in result.charts]
        display: dict[str, Any] = {
            "code": code,
            "stdout": _trim(result.stdout),
            "stderr": _trim(result.stderr),
            "value": result.value,
            "tables": result.tables,
            "status": result.status,
            "written_by": written_by,
        }
        notes = []
        if written_by == "model":
            notes.append("The model wrote this code for your request.")
        if result.files_skipped:
            notes.append("Left out (too large): " + ", ".join(result.files_skipped))
        if notes:
            display["note"] = " ".join(notes)
        return ToolResult(
            self.name,
            arguments,
            content=model_content(code, result, len(attachments)),
            attachments=attachments,
            display=display,
            error=result.error,
        )
