"""CSRF protection for the web app's cookie session: the double-submit cookie.

Log-in and sign-up set `tandem_csrf`, a random token readable by the page's JavaScript (not
HttpOnly). Every state-changing request (POST/PUT/PATCH/DELETE) that the session cookie
authenticates must echo it in the `X-CSRF-Token` header. Another site can make a browser send
the cookies, but it cannot read them, so it cannot set the header. Requests with an
`Authorization: Bearer` API key carry no ambient authority and are exempt; so are sign-up and
log-in, which have no session yet.

    GET /api/auth/csrf  ->  {"token": "..."}   (sets the cookie when it is missing)
"""

from __future__ import annotations

import hmac
import secrets

from fastapi import Request, Response

from tandem.api.errors import ApiError

CSRF_COOKIE = "tandem_csrf"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)


def set_csrf_cookie(request: Request, response: Response, token: str) -> None:
    response.set_cookie(
        CSRF_COOKIE,
        token,
        httponly=False,  # the page's JavaScript reads it to send the header
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )


def check_csrf(request: Request) -> None:
    """403 `csrf_failed` unless a state-changing request echoes the CSRF cookie in the header.
    Call it only for requests that the session cookie authenticates."""
    if request.method.upper() in SAFE_METHODS:
        return
    cookie = request.cookies.get(CSRF_COOKIE, "")
    header = request.headers.get(CSRF_HEADER, "")
    if not cookie or not header or not hmac.compare_digest(cookie, header):
        raise ApiError(
            403,
            f"missing or wrong {CSRF_HEADER} header: send the value of the {CSRF_COOKIE} cookie "
            "(GET /api/auth/csrf returns it)",
            "csrf_failed",
        )
