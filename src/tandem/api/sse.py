"""Server-sent events: `data: <json>` lines, as OpenAI clients and the web UI read them."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi.responses import StreamingResponse


def sse(payload: Any) -> str:
    data = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
    return f"data: {data}\n\n"


def sse_response(events: AsyncIterator[str]) -> StreamingResponse:
    # no-cache and X-Accel-Buffering stop proxies from holding tokens back.
    return StreamingResponse(
        events,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
