"""One error shape everywhere, OpenAI's: `{"error": {"message", "type", "code"}}`.

Store and engine exceptions map to statuses here, so routes never catch them. Bad input is a
4xx with a readable message; anything unexpected is logged and still answered as JSON.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from tandem.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from tandem.engines import ContextLengthExceeded, EngineError, ModelNotFound
from tandem.voice import AudioError, AudioTooLong, VoiceBusy, VoiceUnavailable

log = logging.getLogger("tandem.api")

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    409: "conflict_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
    500: "server_error",
    502: "engine_error",
    503: "server_error",
}


class ApiError(Exception):
    """Raise from a route or dependency to answer with this status and message."""

    def __init__(
        self,
        status: int,
        message: str,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.code = status, message, code
        self.headers = headers  # e.g. Retry-After on a 429


def error_body(status: int, message: str, code: str | None = None) -> dict:
    return {"error": {"message": message, "type": ERROR_TYPES.get(status, "error"), "code": code}}


def error_response(
    status: int, message: str, code: str | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    if status == 401:
        headers = {"WWW-Authenticate": "Bearer", **(headers or {})}
    return JSONResponse(error_body(status, message, code), status_code=status, headers=headers)


def _validation_status(request: Request) -> int:
    # OpenAI clients expect 400 for invalid parameters; the native API uses FastAPI's 422.
    return 400 if request.url.path.startswith("/v1/") else 422


def _describe(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path"))
        parts.append(f"{loc}: {err.get('msg')}" if loc else str(err.get("msg")))
    return "; ".join(parts) or "invalid request"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.message, exc.code, exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error_response(exc.status_code, str(exc.detail), None)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(_validation_status(request), _describe(exc), "invalid_value")

    @app.exception_handler(NotFound)
    async def not_found(_: Request, exc: NotFound) -> JSONResponse:
        return error_response(404, f"{exc.what} not found", "not_found")

    @app.exception_handler(ModelNotFound)
    async def model_not_found(_: Request, exc: ModelNotFound) -> JSONResponse:
        return error_response(404, f"The model '{exc.model_id}' does not exist", "model_not_found")

    @app.exception_handler(InvalidInput)
    async def invalid_input(request: Request, exc: InvalidInput) -> JSONResponse:
        return error_response(_validation_status(request), str(exc), "invalid_value")

    @app.exception_handler(Conflict)
    async def conflict(_: Request, exc: Conflict) -> JSONResponse:
        return error_response(409, str(exc), "conflict")

    @app.exception_handler(PermissionDenied)
    async def permission_denied(_: Request, exc: PermissionDenied) -> JSONResponse:
        return error_response(403, str(exc) or "not allowed", "forbidden")

    @app.exception_handler(ContextLengthExceeded)
    async def context_length(_: Request, exc: ContextLengthExceeded) -> JSONResponse:
        return error_response(400, str(exc), "context_length_exceeded")

    @app.exception_handler(EngineError)
    async def engine_error(_: Request, exc: EngineError) -> JSONResponse:
        log.warning("engine error: %s", exc)
        return error_response(502, f"the model backend failed: {exc}", "engine_error")

    @app.exception_handler(AudioError)
    async def audio_error(_: Request, exc: AudioError) -> JSONResponse:
        return error_response(400, str(exc), "invalid_audio")

    @app.exception_handler(AudioTooLong)
    async def audio_too_long(_: Request, exc: AudioTooLong) -> JSONResponse:
        return error_response(413, str(exc), "audio_too_long")

    @app.exception_handler(VoiceUnavailable)
    async def voice_unavailable(_: Request, exc: VoiceUnavailable) -> JSONResponse:
        # The reason names paths on the server: it goes to the log, not to the caller.
        log.warning("voice unavailable: %s", exc)
        return error_response(
            503,
            "speech is not available on this server; its log says why (check TANDEM_TRANSCRIBER, "
            "TANDEM_WHISPER_MODEL, TANDEM_SYNTHESIZER, TANDEM_PIPER_VOICE)",
            "unavailable",
        )

    @app.exception_handler(VoiceBusy)
    async def voice_busy(_: Request, exc: VoiceBusy) -> JSONResponse:
        return error_response(503, str(exc), "busy", {"Retry-After": "2"})

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, "internal server error", "internal_error")
