"""Wire types of the HTTP API, separate from the core's types."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from rag.store import Filters

MAX_QUESTION_CHARS = 2_000_000  # longer bodies are refused before any work


class Turn(BaseModel):
    role: Literal["user", "assistant", "system"]
    content: str = Field(max_length=MAX_QUESTION_CHARS)


class FiltersIn(BaseModel):
    """Which documents may answer; applied inside the search (k results still come back)."""

    model_config = ConfigDict(extra="forbid")

    path: str | None = Field(
        None, max_length=1000, description="Glob on the document's path, e.g. '*.pdf' or 'guide/*'."
    )
    type: list[str] = Field(
        default_factory=list,
        max_length=32,
        description="File types (suffixes without the dot), e.g. ['pdf'].",
    )
    language: list[Literal["en", "fr"]] = Field(default_factory=list, description="Document languages.")
    modified_after: datetime | None = Field(None, description="Modified at or after this time.")
    modified_before: datetime | None = Field(None, description="Modified before this time.")

    def to_core(self) -> Filters:
        return Filters(
            path=self.path,
            types=tuple(self.type),
            languages=tuple(self.language),
            modified_after=self.modified_after.timestamp() if self.modified_after else None,
            modified_before=self.modified_before.timestamp() if self.modified_before else None,
        )


def core_filters(filters: FiltersIn | None) -> Filters | None:
    return filters.to_core() if filters is not None else None


class GenerationFields(BaseModel):
    max_tokens: int | None = Field(None, gt=0, description="Most tokens in the answer.")
    temperature: float | None = Field(
        None,
        ge=0,
        le=2,
        description="Randomness: 0 always picks the likeliest word (same answer every time); "
        "higher values vary the wording more.",
    )
    top_p: float | None = Field(
        None,
        gt=0,
        le=1,
        description="Nucleus sampling: only the likeliest words whose chances add up to top_p "
        "are considered (0.9: the top 90%).",
    )
    repeat_penalty: float | None = Field(
        None,
        gt=0,
        description="Extension: above 1, words already written are made less likely, against "
        "loops; 1 turns it off.",
    )
    seed: int | None = Field(None, description="Same seed, same settings and same question: the same answer.")
    stop: str | list[str] | None = None


class AskRequest(GenerationFields):
    model_config = ConfigDict(extra="forbid")

    question: str = Field(min_length=1, max_length=MAX_QUESTION_CHARS)
    index: str | None = Field(None, description="Index name (default: the configured one).")
    model: str | None = Field(
        None,
        max_length=300,
        description="Model name, as `GET /v1/models` or `rag models list` "
        "shows it (default: setting llm.model).",
    )
    top_k: int | None = Field(None, gt=0, le=200, description="Chunks to retrieve.")
    sample_top_k: int | None = Field(
        None,
        ge=0,
        description="Only the k likeliest words are considered at each step (0: "
        "all); the chat route's `top_k`.",
    )
    min_score: float | None = Field(None, ge=-1, le=1)
    history: list[Turn] = Field(default_factory=list, description="Earlier turns, oldest first.")
    stream: bool = Field(False, description="Send server-sent events.")
    filters: FiltersIn | None = Field(None, description="Only documents that match these.")


class SourceOut(BaseModel):
    number: int
    path: str
    page: int | None
    pages: str
    heading: str
    snippet: str
    score: float
    cited: bool
    text: str = Field(description="The whole passage, as stored.")
    spans: list[tuple[int, int]] = Field(
        description="Character spans of `text` that back the answer, each checked to be in it."
    )


class SentenceOut(BaseModel):
    text: str
    start: int = Field(description="Where the sentence starts in the answer.")
    end: int
    sources: list[int] = Field(description="Numbers of the sources that back it, best first.")
    supported: bool = Field(description="Whether a passage backs it.")
    checked: bool = Field(description='False for pieces too short to judge ("Yes.").')


class UsageOut(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class AskResponse(BaseModel):
    answer: str
    model: str = Field(description="The model that answered.")
    sources: list[SourceOut]
    usage: UsageOut
    timings: dict[str, float]
    finish_reason: str
    found_context: bool
    abstained: bool = Field(
        description="The documents do not say: the sources are the closest passages, to see also."
    )
    language: str = Field(description="The question's language, the answer's too.")
    sentences: list[SentenceOut] = Field(description="Each sentence and what backs it.")
    unsupported: list[str] = Field(description="Sentences no passage backs.")


# -- OpenAI-compatible -----------------------------------------------------------------


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "user", "assistant", "developer", "tool"]
    content: str | list[ContentPart] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(p.text or "" for p in self.content if p.type == "text")
        return self.content or ""


class StreamOptions(BaseModel):
    include_usage: bool = False


class ChatCompletionRequest(GenerationFields):
    model_config = ConfigDict(extra="allow")

    model: str = Field(
        "default",
        max_length=500,
        description="The index to answer from, or INDEX/MODEL: the index and the model that answers.",
    )
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_completion_tokens: int | None = Field(None, gt=0)
    n: int = Field(1, ge=1, le=1, description="Only one choice is generated.")
    top_k: int | None = Field(
        None, ge=0, description="Extension: only the k likeliest words are considered at each step (0: all)."
    )
    filters: FiltersIn | None = Field(None, description="Extension: only documents that match these answer.")


class EmbeddingRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str = "default"
    input: str | list[str] = Field(description="Text or texts to embed.")
    encoding_format: Literal["float", "base64"] = "float"


def openai_usage(prompt: int, completion: int) -> dict[str, Any]:
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


# -- errors and documented responses ---------------------------------------------------


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorDetail


_ERROR = {"model": ErrorResponse}
#: One server-sent event: /ask names its events (token, sources, done); the OpenAI
#: routes send unnamed events whose data is a JSON chunk, then `[DONE]`. An error once
#: the stream has begun ends it with an OpenAI-shaped `{"error": ...}`: an `error` event
#: on /ask, a data event followed by `[DONE]` on the OpenAI routes.
_SSE_EVENT = {
    "type": "object",
    "required": ["data"],
    "properties": {"event": {"type": "string"}, "data": {"type": "string"}},
}
#: The error statuses every secured route can answer with, all in the OpenAI shape.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {**_ERROR, "description": "Invalid request (bad JSON, wrong types, context too long)."},
    401: {**_ERROR, "description": "Missing or wrong API key."},
    403: {
        **_ERROR,
        "description": "A browser request from another site (see server.cors_origins); or a key "
        "whose role does not allow this.",
    },
    413: {**_ERROR, "description": "The request body is larger than server.max_body_kb."},
    415: {**_ERROR, "description": "The body is not sent as application/json."},
    429: {**_ERROR, "description": "Too many wrong API keys from this address; see Retry-After."},
    503: {**_ERROR, "description": "The models are still loading."},
}
#: Routes that answer from an index, or generate.
INDEX_RESPONSES: dict[int | str, dict[str, Any]] = {
    404: {**_ERROR, "description": "Unknown index (model)."},
    409: {**_ERROR, "description": "The index was built with another embedder."},
}
GENERATION_RESPONSES: dict[int | str, dict[str, Any]] = {
    **INDEX_RESPONSES,
    200: {
        "content": {"text/event-stream": {"schema": _SSE_EVENT}},
        "description": "The answer; server-sent events when `stream` is true.",
    },
    429: {**_ERROR, "description": "The generation queue is full; retry later."},
    503: {
        **_ERROR,
        "description": "The models are still loading; or the model asked for is not "
        "loaded and the loaded ones stay in use (models_busy).",
    },
}


# -- ingest jobs -----------------------------------------------------------------------


class IngestPathRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str = Field(min_length=1, description="Absolute path of a folder or file in server.ingest_roots.")
    index: str | None = Field(None, description="Index to ingest into (default: the configured one).")


class FileOutcomeOut(BaseModel):
    path: str
    status: Literal["added", "updated", "unchanged", "removed", "skipped", "failed"]
    chunks: int
    reason: str


class JobProgressOut(BaseModel):
    files_done: int
    files_total: int | None = Field(description="Known once the job has started.")
    chunks: int = Field(description="Chunks written so far.")


class IngestJobOut(BaseModel):
    id: str
    object: Literal["ingest.job"]
    status: Literal["queued", "running", "done", "failed"]
    index: str
    source: dict[str, Any] = Field(description='{"type": "upload", "files": [...]} or {"type": "path", ...}')
    created_at: float
    started_at: float | None
    finished_at: float | None
    progress: JobProgressOut
    files: list[FileOutcomeOut] = Field(description="One outcome per file, as they are done.")
    summary: dict[str, Any] | None = Field(description="Counts per status, as `rag ingest --json`.")
    error: str | None = Field(description="Why the job failed.")


class IngestJobList(BaseModel):
    object: Literal["list"]
    data: list[IngestJobOut]


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: str = Field(min_length=1, max_length=10_000, description="What to search for.")
    index: str | None = Field(None, description="Index name (default: the configured one).")
    top_k: int | None = Field(None, gt=0, le=200, description="Chunks to return.")
    mode: Literal["dense", "lexical", "hybrid"] | None = Field(
        None, description="Retriever (default: setting retrieval.mode)."
    )
    min_score: float | None = Field(None, ge=-1, le=1, description="Leave out chunks below this.")
    filters: FiltersIn | None = Field(None, description="Only documents that match these.")


class SearchHitOut(BaseModel):
    rank: int
    id: int
    path: str
    pages: str
    heading: str
    score: float = Field(description="The score min_score is compared with (0 to 1).")
    scores: dict[str, float] = Field(description="Each method's score: dense, coverage, bm25, fused.")
    text: str


class SearchResponse(BaseModel):
    object: Literal["list"]
    index: str
    mode: str
    data: list[SearchHitOut]
