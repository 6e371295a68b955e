"""Security headers on every response: a strict Content-Security-Policy, no sniffing, no framing,
no referrer beyond our own origin.

    app.add_middleware(SecurityHeaders)        # done by tandem.api.app.create_app

The policy allows scripts, styles, fonts and fetches from our own origin only, and no inline
script or style at all: even if some text ever slipped through the Markdown renderer as markup,
the browser would refuse to run it. Images may also be `data:` and `blob:` URLs (attachment
previews). A response that sets its own policy (uploads, file downloads: stricter still) keeps
it. The interactive API docs (/docs, /redoc) are FastAPI's stock pages, which load their bundle
from a CDN and configure it with an inline script; they show no user data, so they get a
policy that allows exactly that, and no other page does.
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
CDN = "https://cdn.jsdelivr.net"
DOCS_POLICY = "; ".join(
    (
        "default-src 'self'",
        f"script-src 'self' 'unsafe-inline' {CDN}",
        f"style-src 'self' 'unsafe-inline' {CDN} https://fonts.googleapis.com",
        "font-src 'self' https://fonts.gstatic.com",
        "img-src 'self' data: https://fastapi.tiangolo.com https://cdn.redoc.ly",
        "worker-src 'self' blob:",
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


def policy_for(path: str) -> str:
    """The Content-Security-Policy a response for `path` gets unless it sets its own."""
    if path == "/docs" or path.startswith(("/docs/", "/redoc")):
        return DOCS_POLICY
    return APP_POLICY


class SecurityHeaders:
    """Pure ASGI (no BaseHTTPMiddleware): streamed answers pass through untouched."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        policy = policy_for(scope["path"]).encode()

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
