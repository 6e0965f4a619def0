"""Every error becomes one JSON shape, OpenAI's: {"error": {message, type, param, code}}.

Core errors (rag.errors) are mapped to HTTP status here and nowhere else.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from rag.errors import (
    BusyError,
    ContextLengthError,
    ForbiddenPathError,
    IndexLockedError,
    IndexMismatchError,
    IndexNotFoundError,
    InferenceAuthError,
    InferenceServerError,
    InferenceTimeoutError,
    InferenceUnavailableError,
    InvalidRequestError,
    ModelsBusyError,
    NotReadyError,
    PayloadTooLargeError,
    RagError,
)
from rag.util import redact_paths

logger = logging.getLogger(__name__)

_STATUS: list[tuple[type[RagError], int, str, str | None]] = [
    (ContextLengthError, 400, "invalid_request_error", "context_length_exceeded"),
    (InvalidRequestError, 400, "invalid_request_error", None),
    (IndexNotFoundError, 404, "invalid_request_error", "model_not_found"),
    (ForbiddenPathError, 403, "permission_error", "path_not_allowed"),
    (IndexMismatchError, 409, "invalid_request_error", "index_mismatch"),
    (IndexLockedError, 409, "invalid_request_error", "index_locked"),
    (PayloadTooLargeError, 413, "invalid_request_error", "payload_too_large"),
    (ModelsBusyError, 503, "service_unavailable", "models_busy"),
    (BusyError, 429, "rate_limit_error", "queue_full"),
    (NotReadyError, 503, "service_unavailable", "loading"),
    # The inference server's failures are ours to the client: never its 401 passed on.
    (InferenceTimeoutError, 504, "server_error", "inference_timeout"),
    (InferenceUnavailableError, 503, "service_unavailable", "inference_unavailable"),
    (InferenceAuthError, 502, "server_error", "inference_auth"),
    (InferenceServerError, 502, "server_error", "inference_error"),
]


class ApiError(Exception):
    """An error raised by the API layer itself (authentication, routing)."""

    def __init__(
        self,
        status: int,
        message: str,
        type_: str,
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.code, self.param = (
            status,
            message,
            type_,
            code,
            param,
        )
        self.headers = headers


def error_body(
    message: str, type_: str, code: str | None = None, param: str | None = None
) -> dict[str, dict[str, str | None]]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def error_response(
    status: int,
    message: str,
    type_: str,
    code: str | None = None,
    param: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    if status == 401:
        headers = {**(headers or {}), "WWW-Authenticate": "Bearer"}
    return JSONResponse(error_body(message, type_, code, param), status_code=status, headers=headers)


def describe(exc: Exception) -> tuple[int, dict[str, dict[str, str | None]]]:
    """The status and OpenAI-shaped body of any error: what a response would say, for
    errors that happen once a streamed response has begun."""
    if isinstance(exc, ApiError):
        return exc.status, error_body(exc.message, exc.type, exc.code, exc.param)
    if isinstance(exc, RagError):
        message = redact_paths(str(exc))  # never a folder of the server, whoever wrote it
        for cls, status, type_, code in _STATUS:
            if isinstance(exc, cls):
                return status, error_body(message, type_, code)
        return 500, error_body(message, "server_error")
    logger.error("unhandled error", exc_info=exc)
    return 500, error_body("internal server error", "server_error")


def rag_error_response(exc: RagError) -> JSONResponse:
    status, body = describe(exc)
    return JSONResponse(body, status_code=status)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RagError)
    async def _rag(_: Request, exc: RagError) -> JSONResponse:
        return rag_error_response(exc)

    @app.exception_handler(ApiError)
    async def _api(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.message, exc.type, exc.code, exc.param, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        loc = [str(p) for p in first.get("loc", ()) if p != "body"]
        param = ".".join(loc) or None
        message = str(first.get("msg", "invalid request"))
        if first.get("type") == "json_invalid":
            message = "request body is not valid JSON"
        elif param:
            message = f"{param}: {message}"
        return error_response(400, message, "invalid_request_error", None, param)

    @app.exception_handler(HTTPException)
    async def _http(_: Request, exc: HTTPException) -> JSONResponse:
        type_ = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
        return error_response(exc.status_code, str(exc.detail), type_)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        logger.exception("unhandled error")
        return error_response(500, "internal server error", "server_error")
