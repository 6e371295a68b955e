"""The image tool: the chat model writes the image prompt, another model renders it.

Switched on (composer or profile), tandem asks the chat model for a one-line picture
description of the user's message (greedy, a few dozen tokens: even the embedded 135M model
manages that), falls back to the message itself when the model says nothing, and sends the
prompt to the admin's image backend (`TANDEM_IMAGE_BACKEND`, tandem.tools.image_backends).
Called by a model that supports tools, the model writes `prompt` itself.

The image is stored as one of the user's uploads and shown with the answer; the prompt is
stored with it (the tool call's arguments and display), and the model reads that an image was
made from that prompt, so its answer can describe it.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

from tandem.core.generation import SamplingParams
from tandem.core.messages import Message
from tandem.core.settings import Settings
from tandem.tools.base import Tool, ToolContext, ToolResult, register_tool
from tandem.tools.image_backends import (
    MAX_PROMPT_CHARS,
    ImageBackendError,
    image_backend_for,
    image_mime,
)
from tandem.tools.workspace import ChatModel

NOT_CONFIGURED = (
    "No image backend is configured; an admin can set TANDEM_IMAGE_BACKEND (see docs/tools.md)."
)
PROMPT_INSTRUCTION = (
    "Write a prompt for an image generator that draws what the user asks for. "
    "Answer with one short line describing the picture, nothing else."
)
# One line of description: more costs the embedded model CPU time and only adds noise.
PROMPT_TOKENS = 48
EXTENSIONS = {"image/png": ".png", "image/jpeg": ".jpg", "image/webp": ".webp"}


def clean_prompt(text: str) -> str:
    """The first non-empty line, without the labels and quotes small models like to add."""
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    for label in ("image prompt:", "prompt:"):
        if line.lower().startswith(label):
            line = line[len(label) :].strip()
    return line.strip("\"'` ")[:MAX_PROMPT_CHARS]


async def write_image_prompt(engine: ChatModel | None, request: str) -> str:
    """The chat model's image prompt for the user's `request`, or the request itself when
    there is no model, it fails, or it answers with nothing usable."""
    fallback = " ".join(request.split())[:MAX_PROMPT_CHARS]
    if engine is None or not fallback:
        return fallback
    messages = [Message.text("system", PROMPT_INSTRUCTION), Message.text("user", fallback)]
    params = SamplingParams(temperature=0.0, max_tokens=PROMPT_TOKENS)
    try:
        completion = await engine.complete(messages, params)
    except Exception:
        # A message too long for the model's context or a backend hiccup (the engine's
        # errors, which tools do not import): the user's own words still make a prompt.
        return fallback
    return clean_prompt(completion.text) or fallback


@register_tool
class ImageTool(Tool):
    name = "image"
    title = "Image"
    description = (
        "Draws a picture with an image model. Call it when the user asks for an image; "
        "describe the picture in `prompt`."
    )
    parameters: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {
            "prompt": {
                "type": "string",
                "description": "what the picture shows, in one or two sentences",
            }
        },
        "required": ["prompt"],
    }

    def available(self, settings: Settings) -> str | None:
        return NOT_CONFIGURED if settings.image_backend is None else None

    def arguments_for(self, ctx: ToolContext, user_text: str) -> dict[str, Any]:
        # The prompt is written when the tool runs (it needs the model, which is async); until
        # then the arguments are what the user asked for.
        return {"request": user_text}

    async def run(self, ctx: ToolContext, arguments: dict[str, Any]) -> ToolResult:
        config = ctx.settings.image_backend
        assert config is not None  # `available` said so
        prompt = arguments.get("prompt")
        if isinstance(prompt, str) and prompt.strip():
            prompt = " ".join(prompt.split())[:MAX_PROMPT_CHARS]
        else:
            prompt = await write_image_prompt(ctx.engine, str(arguments.get("request") or ""))
        recorded = {**arguments, "prompt": prompt}
        display = {"prompt": prompt, "size": config.size}
        if not prompt:
            return ToolResult(self.name, recorded, display=display, error="There is no prompt.")
        try:
            data = await image_backend_for(ctx.settings).generate(prompt, config.size)
            mime = image_mime(data)
        except ImageBackendError as exc:
            return ToolResult(
                self.name, recorded, display=display, error=f"No image was made: {exc}."
            )
        # Writing and fsyncing the file blocks: keep it off the event loop.
        filename = f"generated-image{EXTENSIONS[mime]}"
        attachment = await asyncio.to_thread(ctx.uploads.save, filename, data)
        return ToolResult(
            self.name,
            recorded,
            content=f"An image was generated from the prompt: {prompt}",
            attachments=[attachment],
            display=display,
        )
