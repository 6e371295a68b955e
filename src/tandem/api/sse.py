"""Server-sent events: `data: <json>` lines, as OpenAI clients and the web UI read them.

A stream outlives the request's authentication check, so `sse_response(events, request)`
checks the request's credential again as events flow (at most every `RECHECK_S` seconds):
once the key is revoked or the user disabled, the stream ends with an `error` event (401)
and the generator is closed, which stops generation and stores the partial answer as
"cancelled" (tandem.chat).

A stream that fails ends with an error event too, whatever the exception (`stream_error`):
the model backend's own errors as 502 with their message, anything else as 500 with a generic
message (the details go to the log, never to the client). A stream never just stops.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Any

from fastapi import Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from tandem.api.deps import still_authenticated
from tandem.api.errors import error_body
from tandem.engines import EngineError

log = logging.getLogger("tandem.api")
RECHECK_S = 0.5


def sse(payload: Any) -> str:
    data = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
    return f"data: {data}\n\n"


def stream_error(exc: Exception) -> dict[str, Any]:
    """The error body that ends a stream that raised `exc` (logged here when unexpected)."""
    if isinstance(exc, EngineError):
        return error_body(502, f"the model backend failed: {exc}", "engine_error")
    log.error("a stream failed", exc_info=exc)
    return error_body(500, "internal server error", "internal_error")


async def _guarded(
    events: AsyncGenerator[str, None], request: Request
) -> AsyncGenerator[str, None]:
    checked = time.monotonic()
    try:
        async with aclosing(events) as frames:
            async for frame in frames:
                now = time.monotonic()
                if now - checked >= RECHECK_S:
                    checked = now
                    if not await run_in_threadpool(still_authenticated, request):
                        message = "the API key was revoked or the account disabled"
                        yield sse({"type": "error", **error_body(401, message, "invalid_api_key")})
                        return
                yield frame
    except Exception as exc:  # the last net: the streams end with their own error events
        yield sse({"type": "error", **stream_error(exc)})


def sse_response(
    events: AsyncGenerator[str, None], request: Request | None = None
) -> StreamingResponse:
    if request is not None:
        events = _guarded(events, request)
    # no-cache and X-Accel-Buffering stop proxies from holding tokens back.
    return StreamingResponse(
        events,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
