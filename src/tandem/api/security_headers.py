"""Security headers on every response: a strict Content-Security-Policy, no sniffing, no framing,
no referrer beyond our own origin.

    app.add_middleware(SecurityHeaders)        # done by tandem.api.app.create_api

The policy allows scripts, styles, fonts and fetches from our own origin only, and no inline
script or style at all: even if some text ever slipped through the Markdown renderer as markup,
the browser would refuse to run it. Images may also be `data:` and `blob:` URLs (attachment
previews). A response that sets its own policy (uploads, file downloads: stricter still) keeps
it. The interactive API docs (/docs) get the same policy: they load a
vendored, pinned Swagger UI from this origin and start it from a static script (FastAPI's
stock pages needed a CDN and inline script, and had a looser policy of their own).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

APP_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "font-src 'self'",
        "media-src 'self' blob:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
        "form-action 'self'",
    )
)
BASE_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
)


class SecurityHeaders:
    """Pure ASGI (no BaseHTTPMiddleware): streamed answers pass through untouched."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        policy = APP_POLICY.encode()

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                for name, value in BASE_HEADERS:
                    if name not in present:
                        headers.append((name, value))
                if b"content-security-policy" not in present:
                    headers.append((b"content-security-policy", policy))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)
