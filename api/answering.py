"""The service behind /ask and /v1/chat/completions: admit into the queue first (a request
the queue cannot take is refused before any work), prepare off the event loop, then
generate in the model's thread once the request's turn has come."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from contextlib import aclosing, asynccontextmanager

from anyio import to_thread
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from api.concurrency import Admission, GenerationQueue, iterate_in_thread
from api.errors import describe
from api.observability import note, note_answer
from api.schemas import GenerationFields, SentenceOut, SourceOut
from rag.generators.base import GenerationParams, Message
from rag.pipeline import DoneEvent, Event, Pipeline, Prepared, TokenEvent
from rag.store import Filters
from rag.types import Answer, Source


def params_from(
    pipeline: Pipeline, fields: GenerationFields, max_tokens: int | None = None, top_k: int | None = None
) -> GenerationParams:
    """The request's sampling parameters over the configured ones; an answer is never
    longer than `llm.max_tokens`, whatever the client asks for."""
    base = GenerationParams.from_settings(pipeline.settings.llm)
    asked = max_tokens or fields.max_tokens
    return base.with_overrides(
        max_tokens=min(asked, base.max_tokens) if asked else None,
        temperature=fields.temperature,
        top_p=fields.top_p,
        top_k=top_k,
        repeat_penalty=fields.repeat_penalty,
        seed=fields.seed,
        stop=fields.stop,
    )


@asynccontextmanager
async def admitted(queue: GenerationQueue) -> AsyncIterator[Admission]:
    """A place in the queue (BusyError at once if there is none), given back if the block
    fails; on success whoever generates (`events`, `AdmittedStream`) gives it back."""
    admission = queue.admit()
    try:
        yield admission
    except BaseException:
        admission.release()
        raise


class AdmittedStream(StreamingResponse):
    """Server-sent events that give the request's queue place back however they end:
    finished, failed, or cut by a client that went away or a server shutting down."""

    def __init__(self, content: AsyncIterator[str], admission: Admission) -> None:
        super().__init__(content, media_type="text/event-stream")
        self.admission = admission

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            # Closed now rather than when collected: the generation stops at its next token
            # before the next request in the queue gets the model.
            close = getattr(self.body_iterator, "aclose", None)
            if close is not None:
                await close()
            self.admission.release()


def stream_error(request: Request, exc: Exception) -> dict[str, dict[str, str | None]]:
    """The OpenAI-shaped error that ends a stream which failed after its 200 had gone."""
    status, body = describe(exc)
    note(request, error_status=status, error=body["error"]["code"] or body["error"]["type"])
    return body


async def prepare(
    pipeline: Pipeline,
    admission: Admission,
    question: str,
    history: Sequence[Message],
    *,
    index: str | None,
    params: GenerationParams,
    top_k: int | None = None,
    min_score: float | None = None,
    filters: Filters | None = None,
    model: str | None = None,
) -> Prepared:
    """Embedding, search and prompt building, in a thread (they block; a model named for
    the first time loads there too, or waits there for room). The model is held until
    the admission is released."""

    def call() -> Prepared:
        prepared = pipeline.prepare(
            question,
            history=history,
            index=index,
            top_k=top_k,
            min_score=min_score,
            params=params,
            filters=filters,
            model=model,
        )
        admission.on_release(prepared.release)  # in the thread: never lost to a cancellation
        return prepared

    return await to_thread.run_sync(call)


async def events(
    pipeline: Pipeline, admission: Admission, prepared: Prepared, request: Request, index: str
) -> AsyncGenerator[Event, None]:
    """Generation events, once this request's turn has come; the answer is logged and
    counted in the metrics. The queue place is given back when they end, however."""
    interval = pipeline.settings.server.stream_interval
    try:
        await admission.turn()
        # On the generator's own thread when it has one: a hop per token to another
        # thread would take CPU time from llama.cpp's threads.
        executor = prepared.generator.executor if prepared.generator is not None else None
        async for batch in iterate_in_thread(lambda: pipeline.generate(prepared), interval, executor):
            for event in merge_tokens(batch):
                if isinstance(event, DoneEvent):
                    note_answer(request, index, event.answer)
                yield event
    finally:
        admission.release()


def merge_tokens(batch: list[Event]) -> list[Event]:
    """Consecutive token events as one: a client gets one message per hand-over."""
    merged: list[Event] = []
    for event in batch:
        last = merged[-1] if merged else None
        if isinstance(event, TokenEvent) and isinstance(last, TokenEvent):
            merged[-1] = TokenEvent(last.text + event.text)
        else:
            merged.append(event)
    return merged


async def answer(
    pipeline: Pipeline, admission: Admission, prepared: Prepared, request: Request, index: str
) -> Answer:
    result: Answer | None = None
    async with aclosing(events(pipeline, admission, prepared, request, index)) as stream:
        async for event in stream:
            if isinstance(event, DoneEvent):
                result = event.answer
    assert result is not None
    return result


def sources_out(sources: list[Source]) -> list[dict[str, object]]:
    return [SourceOut(**{k: getattr(s, k) for k in SourceOut.model_fields}).model_dump() for s in sources]


def attribution_out(answer: Answer) -> dict[str, object]:
    """What backs each sentence of an answer (an extension field on the OpenAI routes)."""
    return {
        "abstained": answer.abstained,
        "sentences": [
            SentenceOut(**{k: getattr(s, k) for k in SentenceOut.model_fields}).model_dump()
            for s in answer.sentences
        ],
        "unsupported": answer.unsupported,
    }
