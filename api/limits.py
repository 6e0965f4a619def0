"""Bounds on what one request may ask for, checked before any work is done for it.

Each bound is a `server.*` setting: the body size (refused by `BodyLimit` before the body
is read whole), the number and total length of messages, the number and length of texts
to embed, and the number of stop sequences. A request past a bound is refused with a 4xx
in the OpenAI error shape, so that no request, however large, keeps the server busy.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import ApiError, error_response
from rag.config import ServerSettings


class BodyLimit:
    """ASGI middleware: a request body larger than `limit` bytes is answered 413 as soon as
    that is known (from Content-Length, else once that many bytes have arrived).

    The body, at most `limit` bytes, is read here and handed on whole. Multipart bodies sent
    to a path in `exempt` (uploads, which have a larger limit of their own and are spooled
    to disk as they arrive) pass through.
    """

    def __init__(self, app: ASGIApp, limit: int, exempt: Sequence[str] = ()) -> None:
        self.app = app
        self.limit = limit
        self.exempt = set(exempt)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (scope["path"] in self.exempt and _is_multipart(scope)):
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.limit:
            await self._refuse(scope, receive, send)
            return
        parts: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client left before the end of its body
                await self.app(scope, _replay([message], receive), send)
                return
            part = message.get("body", b"")
            size += len(part)
            if size > self.limit:
                await self._refuse(scope, receive, send)
                return
            parts.append(part)
            if not message.get("more_body", False):
                break
        whole = {"type": "http.request", "body": b"".join(parts), "more_body": False}
        await self.app(scope, _replay([whole], receive), send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        kb = self.limit // 1024
        response = error_response(
            413,
            f"the request body is larger than the {kb} KB allowed (server.max_body_kb)",
            "invalid_request_error",
            "payload_too_large",
        )
        response.headers["Connection"] = "close"  # the rest of the body is not read
        await response(scope, receive, send)


def check_messages(settings: ServerSettings, texts: Sequence[str], param: str) -> None:
    """At most `max_messages` messages of at most `max_input_chars` characters in all."""
    if len(texts) > settings.max_messages:
        raise ApiError(
            400,
            f"{param}: {len(texts)} messages, more than the {settings.max_messages} "
            "allowed (server.max_messages)",
            "invalid_request_error",
            "too_many_messages",
            param,
        )
    total = sum(len(t) for t in texts)
    if total > settings.max_input_chars:
        raise ApiError(
            400,
            f"{param}: {total} characters in all, more than the "
            f"{settings.max_input_chars} allowed (server.max_input_chars)",
            "invalid_request_error",
            "context_length_exceeded",
            param,
        )


def check_stop(settings: ServerSettings, stop: str | list[str] | None) -> None:
    count = 0 if stop is None else 1 if isinstance(stop, str) else len(stop)
    if count > settings.max_stop:
        raise ApiError(
            400,
            f"stop: {count} sequences, more than the {settings.max_stop} allowed (server.max_stop)",
            "invalid_request_error",
            None,
            "stop",
        )


def check_embedding_inputs(settings: ServerSettings, texts: Sequence[str]) -> None:
    if len(texts) > settings.max_embedding_inputs:
        raise ApiError(
            400,
            f"input: {len(texts)} texts, more than the {settings.max_embedding_inputs} "
            "allowed (server.max_embedding_inputs)",
            "invalid_request_error",
            None,
            "input",
        )
    longest = max((len(t) for t in texts), default=0)
    if longest > settings.max_embedding_chars:
        raise ApiError(
            400,
            f"input: a text of {longest} characters, more than the "
            f"{settings.max_embedding_chars} allowed (server.max_embedding_chars)",
            "invalid_request_error",
            "context_length_exceeded",
            "input",
        )
    total = sum(len(t) for t in texts)
    if total > settings.max_embedding_total_chars:
        raise ApiError(
            400,
            f"input: {total} characters in all, more than the "
            f"{settings.max_embedding_total_chars} allowed "
            "(server.max_embedding_total_chars); send fewer texts per request",
            "invalid_request_error",
            None,
            "input",
        )


def _content_length(scope: Scope) -> int | None:
    value = _header(scope, b"content-length")
    return int(value) if value is not None and value.isdigit() else None


def _is_multipart(scope: Scope) -> bool:
    return (_header(scope, b"content-type") or b"").lower().startswith(b"multipart/form-data")


def _header(scope: Scope, name: bytes) -> bytes | None:
    return next((v for k, v in scope.get("headers", []) if k == name), None)


def _replay(first: list[Message], receive: Receive) -> Receive:
    """`first` messages, then whatever the client sends next (its disconnect)."""
    pending = list(first)

    async def replayed() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replayed
