"""What a simulated user can do to a tandem server: its public HTTP API, nothing else.

    async with httpx.AsyncClient(base_url=url) as http:  # one client (cookie jar) per user
        user = await SimulatedAccount.sign_up(http, "sim-0@simulated.invalid", "a long pass")
        conv = await user.open_chat()
        answer = await user.send(conv, "Write a haiku, all lowercase.", {"max_tokens": 64})

Every call goes through `httpx` to the routes documented in docs/api.md; no store, chat or
engine code is imported, so the driver exercises exactly what a real client would. A response
that is not 2xx raises `ApiCallError` carrying its status (or a transport error's name), which
the driver counts instead of crashing.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

import httpx
from httpx_sse import SSEError, aconnect_sse

# A 429's Retry-After is honoured this many times, for at most this long each; beyond that the
# call counts as an error (a simulation must end even when the server is saturated).
MAX_RATE_LIMIT_RETRIES = 3
MAX_RETRY_WAIT_S = 30.0


class ApiCallError(Exception):
    """A request the server refused or could not answer; `status` is the HTTP status as a
    string ("422", "502") or the transport failure's name ("ConnectError", "ReadTimeout")."""

    def __init__(self, status: str, message: str = "") -> None:
        super().__init__(f"{status}: {message}" if message else status)
        self.status = status


@dataclass(frozen=True)
class Answer:
    """One assistant answer as the API returned it."""

    message_id: str
    user_message_id: str | None
    content: str
    generation_id: str | None
    model_version: str | None
    finish_reason: str | None


@dataclass(frozen=True)
class Comparison:
    """A blind comparison: two answers, models hidden until the vote."""

    id: str
    a: str
    b: str
    models: tuple[str | None, str | None] = (None, None)
    # The behavior experiment's variants (after the vote; None outside experiments).
    variants: tuple[str | None, str | None] = (None, None)
    # The two answers' messages (an implicit signal, such as a copy, points at one).
    message_ids: tuple[str | None, str | None] = (None, None)


@dataclass
class SimulatedAccount:
    """One signed-up account acting through its own API key (no cookies, so no CSRF)."""

    http: httpx.AsyncClient
    email: str
    user_id: str
    key: str
    headers: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        self.headers = {"Authorization": f"Bearer {self.key}"}

    @classmethod
    async def sign_up(cls, http: httpx.AsyncClient, email: str, password: str) -> SimulatedAccount:
        """Sign up like the web page does (session cookie + CSRF token), then mint an API key
        for everything after. `http` is this user's own client: its cookies are dropped once
        the key exists, so only the key authenticates from then on."""
        body = {"email": email, "password": password, "display_name": email.split("@")[0]}
        user = await _call(http, "POST", "/api/auth/signup", json=body)
        csrf = {"X-CSRF-Token": http.cookies.get("tandem_csrf") or ""}
        created = await _call(http, "POST", "/api/keys", json={"name": "simulated"}, headers=csrf)
        http.cookies.clear()
        ids = _parsed(lambda rows: (rows[0]["id"], rows[1]["key"]), (user, created))
        return cls(http, email, *ids)

    async def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        return await _call(self.http, method, path, headers=self.headers, **kwargs)

    async def set_training_consent(self, allowed: bool) -> None:
        """The "use my conversations to improve the model" switch of the account settings."""
        me = await self._call("PATCH", "/api/auth/me", json={"use_for_training": allowed})
        if not isinstance(me, dict) or me.get("use_for_training") is not allowed:
            raise ApiCallError("consent_not_applied", f"use_for_training is {me!r}")

    async def open_chat(self, profile_id: str | None = None, title: str = "") -> str:
        body: dict[str, Any] = {"title": title}
        if profile_id is not None:
            body["profile_id"] = profile_id
        row = await self._call("POST", "/api/conversations", json=body)
        return _parsed(lambda r: str(r["id"]), row)

    async def send(
        self, conversation_id: str, content: str, sampling: dict[str, Any], stream: bool = False
    ) -> Answer | Comparison:
        """A new user message; the server answers it, or (on its comparison share of turns)
        answers with a blind comparison instead."""
        body = {"content": content, "sampling": sampling, "stream": stream}
        path = f"/api/conversations/{conversation_id}/messages"
        return await self._turn(path, body, stream)

    async def regenerate(
        self, message_id: str, sampling: dict[str, Any], stream: bool = False
    ) -> Answer:
        body = {"sampling": sampling, "stream": stream}
        answer = await self._turn(f"/api/messages/{message_id}/regenerate", body, stream)
        if not isinstance(answer, Answer):
            raise ApiCallError("unexpected_comparison", "a regeneration answered a comparison")
        return answer

    async def compare(
        self, conversation_id: str, content: str, sampling: dict[str, Any]
    ) -> Comparison:
        """Ask explicitly for two blind answers to a new message."""
        body = {"content": content, "sampling": sampling}
        row = await self._call(
            "POST", f"/api/conversations/{conversation_id}/comparisons", json=body
        )
        return _parsed(_comparison, row)

    async def rate(
        self, message_id: str, rating: str, reasons: list[str], comment: str
    ) -> dict[str, Any]:
        body = {"rating": rating, "reasons": reasons, "comment": comment}
        return await self._call("POST", f"/api/messages/{message_id}/feedback", json=body)

    async def vote(self, comparison_id: str, verdict: str) -> Comparison:
        row = await self._call(
            "POST", f"/api/comparisons/{comparison_id}/vote", json={"verdict": verdict}
        )
        return _parsed(_comparison, row)

    async def _turn(self, path: str, body: dict[str, Any], stream: bool) -> Answer | Comparison:
        if not stream:
            return _parsed(_turn_result, await self._call("POST", path, json=body))
        return await _call_streamed(self.http, path, body, self.headers)


def _parsed(parse: Any, payload: Any) -> Any:
    """A 2xx answer without the fields the API documents is the server's failure, counted
    like any other, not a crash of the simulation."""
    try:
        return parse(payload)
    except (KeyError, TypeError) as exc:
        raise ApiCallError("unexpected_response", f"missing {exc}") from None


def _comparison(row: dict[str, Any]) -> Comparison:
    return Comparison(
        id=row["id"],
        a=row["a"]["content"],
        b=row["b"]["content"],
        models=(row["a"].get("model"), row["b"].get("model")),
        variants=(row["a"].get("variant"), row["b"].get("variant")),
        message_ids=(row["a"].get("message_id"), row["b"].get("message_id")),
    )


def _turn_result(payload: dict[str, Any]) -> Answer | Comparison:
    if "comparison" in payload:
        return _comparison(payload["comparison"])
    message, generation = payload["assistant_message"], payload.get("generation") or {}
    user_message = payload.get("user_message")
    return Answer(
        message_id=message["id"],
        user_message_id=user_message["id"] if user_message else message.get("parent_id"),
        content=message["content"],
        generation_id=message.get("generation_id"),
        model_version=generation.get("model_version"),
        finish_reason=generation.get("finish_reason"),
    )


async def _call(http: httpx.AsyncClient, method: str, path: str, **kwargs: Any) -> Any:
    for attempt in range(MAX_RATE_LIMIT_RETRIES + 1):
        try:
            response = await http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ApiCallError(type(exc).__name__, str(exc)) from None
        if response.status_code == 429 and attempt < MAX_RATE_LIMIT_RETRIES:
            await asyncio.sleep(_retry_after(response))
            continue
        if response.is_success:
            try:
                return response.json() if response.content else None
            except ValueError:  # a proxy's HTML page, a truncated body
                raise ApiCallError("invalid_json", response.text[:200]) from None
        raise ApiCallError(str(response.status_code), _error_message(response))
    raise AssertionError("unreachable")  # the loop returns or raises


async def _call_streamed(
    http: httpx.AsyncClient, path: str, body: dict[str, Any], headers: dict[str, str]
) -> Answer | Comparison:
    """Read a streamed turn to its end: deltas are ignored (the `done` event repeats the whole
    message), a `comparison` event is the whole answer, an `error` event is a failure."""
    try:
        # aconnect_sse adds Accept: text/event-stream to the headers it is given: a copy.
        async with aconnect_sse(http, "POST", path, json=body, headers=dict(headers)) as source:
            response = source.response
            if not response.is_success:
                await response.aread()
                raise ApiCallError(str(response.status_code), _error_message(response))
            user_message_id = None
            async for sse in source.aiter_sse():
                if not sse.data.strip():
                    continue
                try:
                    event = json.loads(sse.data)
                except ValueError:
                    raise ApiCallError("invalid_json", sse.data[:200]) from None
                if not isinstance(event, dict):
                    raise ApiCallError("invalid_json", sse.data[:200])
                kind = event.get("type") or (sse.event if sse.event != "message" else None)
                if kind == "user_message":
                    user_message_id = (event.get("message") or {}).get("id")
                elif kind == "comparison":
                    return _parsed(_comparison, event.get("comparison"))
                elif kind == "error":
                    error = event.get("error") or {}
                    if not isinstance(error, dict):
                        error = {"message": str(error)}
                    # The status is already 200 here: name the failure by the event's code.
                    code = error.get("code") or "error"
                    raise ApiCallError(f"stream:{code}", str(error.get("message", "")))
                elif kind == "done":
                    done = {
                        "assistant_message": event.get("message"),
                        "generation": event.get("generation"),
                        "user_message": {"id": user_message_id} if user_message_id else None,
                    }
                    return _parsed(_turn_result, done)
    except SSEError as exc:  # a 2xx that is not text/event-stream
        raise ApiCallError("not_a_stream", str(exc)) from None
    except httpx.HTTPError as exc:
        raise ApiCallError(type(exc).__name__, str(exc)) from None
    raise ApiCallError("stream_incomplete", "the stream ended without a done event")


def _retry_after(response: httpx.Response) -> float:
    try:
        wait = float(response.headers.get("Retry-After", "1"))
    except ValueError:
        wait = 1.0
    return min(max(wait, 0.0), MAX_RETRY_WAIT_S)


def _error_message(response: httpx.Response) -> str:
    try:
        return str(response.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return response.text[:200]
