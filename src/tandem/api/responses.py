"""The error answers every route may give, documented once for the OpenAPI schema.

Each route documents its success; these are added to all of them by `create_api`, so a client
(and the Schemathesis fuzz test, tests/security/test_fuzz_openapi.py) knows every status it
can meet and that each carries the one error shape of `tandem.api.errors`.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class ErrorDetail(BaseModel):
    message: str
    type: str
    code: str | None = None


class ErrorBody(BaseModel):
    """`{"error": {"message", "type", "code"}}`, OpenAI's shape."""

    error: ErrorDetail


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorBody, "description": description}


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _error("invalid parameters on the OpenAI-compatible /v1 routes; a bad header"),
    401: _error("no valid API key or session"),
    403: _error("not allowed: admin only, a failed CSRF check, a disabled account"),
    404: _error("no such resource, or it belongs to another user"),
    409: _error("conflicts with the current state"),
    413: _error("the request body is too large"),
    415: _error("an unsupported file type"),
    422: _error("invalid parameters or body"),
    429: _error("too many requests: rate limited"),
    502: _error("the model backend failed"),
}


def streamed(description: str) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route that answers `text/event-stream` when the body asks for
    `stream: true` (its JSON answer is documented by its response model)."""
    event = {  # one server-sent event, as a client's SSE parser hands it over
        "type": "object",
        "properties": {
            "data": {"type": "string", "description": description},
            "event": {"type": "string"},
            "id": {"type": "string"},
        },
        "required": ["data"],
    }
    return {200: {"content": {"text/event-stream": {"schema": event}}}}


# The native API's event stream (tandem.api.turns) and the OpenAI-compatible one.
NATIVE_STREAM = streamed(
    'with `stream: true`: `data: {"type": "delta", "text": …}` events, then one `done` event '
    "with the stored messages (or an `error` event)"
)
OPENAI_STREAM = streamed(
    "with `stream: true`: `chat.completion.chunk` objects as `data:` events, then `data: [DONE]`"
)
