"""The one error hierarchy of the service.

    RagError
    ├── ConfigError            a setting is wrong (unknown key, bad value, missing file)
    ├── IndexNotFoundError     no index of that name
    ├── IndexMismatchError     the index was built with another embedder or format
    ├── IndexLockedError       another ingest is writing to the index
    ├── ContextLengthError     the question (and what must go with it) does not fit the context
    ├── InvalidRequestError    a request the core cannot serve as asked
    ├── BusyError              the generator queue (or the ingest job queue) is full
    │   └── ModelsBusyError    every loaded model answers: no room for another one
    ├── NotReadyError          models are still loading
    ├── ForbiddenPathError     a path outside the folders the server may ingest
    ├── PayloadTooLargeError   an upload bigger than allowed
    ├── InferenceServerError   the inference server failed or sent what cannot be read
    │   ├── InferenceUnavailableError   it cannot be reached (connection refused, no route)
    │   │   └── InferenceTimeoutError   it did not answer in time
    │   └── InferenceAuthError          it refused our key (401, 403)
    └── LoaderError            one document could not be read (ingestion goes on)

Core errors know nothing of HTTP; `api/errors.py` maps them to status codes in one place.
"""

from __future__ import annotations


class RagError(Exception):
    """Base of every expected error: message is meant for the user, one line."""


class ConfigError(RagError):
    """A setting is wrong."""


class IndexNotFoundError(RagError):
    """No index of that name exists."""


class IndexMismatchError(RagError):
    """The index was built with another embedder or an unknown format."""


class IndexLockedError(RagError):
    """Another ingest holds the index; only one may write to it at a time."""


class ContextLengthError(RagError):
    """The prompt cannot fit the model's context."""

    def __init__(self, message: str, *, tokens: int, limit: int) -> None:
        super().__init__(message)
        self.tokens = tokens
        self.limit = limit


class InvalidRequestError(RagError):
    """The request cannot be served as asked."""


class BusyError(RagError):
    """Too many requests wait for the generator, or too many ingest jobs are queued."""


class ModelsBusyError(BusyError):
    """A request needs a model that is not loaded, and `llm.max_loaded` models are
    loaded and all answering requests: none could be unloaded in time."""


class NotReadyError(RagError):
    """Models are still loading."""


class ForbiddenPathError(RagError):
    """A path outside the folders the server may read or write."""


class PayloadTooLargeError(RagError):
    """An upload is bigger than the configured limit."""


class InferenceServerError(RagError):
    """The inference server (`llm.kind = openai`) failed: a 5xx, or a reply not understood."""


class InferenceUnavailableError(InferenceServerError):
    """The inference server cannot be reached."""


class InferenceTimeoutError(InferenceUnavailableError):
    """The inference server did not answer within `llm.timeout` seconds."""


class InferenceAuthError(InferenceServerError):
    """The inference server refused the key it was given (`llm.api_key`)."""


class LoaderError(RagError):
    """A document could not be read; the reason is the message."""
