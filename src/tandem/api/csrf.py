"""CSRF protection for the web app's cookie session: a token bound to the session.

Log-in and sign-up set `tandem_csrf`, the session's CSRF token, readable by the page's
JavaScript (not HttpOnly). Every state-changing request (POST/PUT/PATCH/DELETE) that the
session cookie authenticates must send it in the `X-CSRF-Token` header. Another site can make
a browser send the cookies, but it cannot read them, so it cannot set the header. Requests
with an `Authorization: Bearer` API key carry no ambient authority and are exempt; so are
sign-up and log-in, which have no session yet.

The token is HMAC-SHA256 of a fixed label keyed with the session's own secret (the HttpOnly
cookie's 256 random bits, stored on the server only as a hash): the header is checked against
the token of the session the request came with, never against the `tandem_csrf` cookie, so a
token from another session (or one an attacker planted as a cookie from a sibling subdomain)
is refused, and it ends with its session. Nothing else needs a server secret: tandem signs
nothing, and the token cannot be computed without the session cookie, nor the cookie from it.

    GET /api/auth/csrf  ->  {"token": "..."}   (and sets the cookie to it)
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from fastapi import Request, Response

from tandem.api.errors import ApiError

CSRF_COOKIE = "tandem_csrf"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})


def new_csrf_token() -> str:
    """A random token, for a page without a session (it guards nothing until log-in)."""
    return secrets.token_urlsafe(32)


def csrf_token_for(session_token: str) -> str:
    """The CSRF token of the web session whose cookie holds `session_token`."""
    digest = hmac.new(session_token.encode(), b"tandem csrf token v1", hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def set_csrf_cookie(request: Request, response: Response, token: str) -> None:
    response.set_cookie(
        CSRF_COOKIE,
        token,
        httponly=False,  # the page's JavaScript reads it to send the header
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )


def check_csrf(request: Request, session_token: str) -> None:
    """403 `csrf_failed` unless a state-changing request sends the CSRF token of its session
    (`session_token`: the session cookie it was authenticated with) in the header. Call it only
    for requests that the session cookie authenticates."""
    if request.method.upper() in SAFE_METHODS:
        return
    header = request.headers.get(CSRF_HEADER, "").encode()
    expected = csrf_token_for(session_token).encode()
    if not header or not hmac.compare_digest(header, expected):
        raise ApiError(
            403,
            f"missing or wrong {CSRF_HEADER} header: send the value of the {CSRF_COOKIE} cookie "
            "(GET /api/auth/csrf returns it)",
            "csrf_failed",
        )
