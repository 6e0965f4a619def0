"""The service behind /ask and /v1/chat/completions: prepare off the event loop,
then generate under the queue, in a worker thread."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from functools import partial

from anyio import to_thread
from starlette.requests import Request

from api.concurrency import GenerationQueue, iterate_in_thread
from api.observability import note_answer
from api.schemas import GenerationFields, SourceOut
from rag.generation import GenerationParams, Message
from rag.pipeline import DoneEvent, Event, Pipeline, Prepared, TokenEvent
from rag.types import Answer, Source


def params_from(pipeline: Pipeline, fields: GenerationFields, max_tokens: int | None = None
                ) -> GenerationParams:  # fmt: skip
    base = GenerationParams.from_settings(pipeline.settings.llm)
    return base.with_overrides(
        max_tokens=max_tokens or fields.max_tokens,
        temperature=fields.temperature,
        top_p=fields.top_p,
        seed=fields.seed,
        stop=fields.stop,
    )


async def prepare(
    pipeline: Pipeline,
    question: str,
    history: Sequence[Message],
    *,
    index: str | None,
    params: GenerationParams,
    top_k: int | None = None,
    min_score: float | None = None,
) -> Prepared:
    """Embedding, search and prompt building, in a thread (they block)."""
    call = partial(pipeline.prepare, question, history=history, index=index, top_k=top_k,
                   min_score=min_score, params=params)  # fmt: skip
    return await to_thread.run_sync(call)


async def events(
    pipeline: Pipeline, queue: GenerationQueue, prepared: Prepared, request: Request, index: str
) -> AsyncIterator[Event]:
    """Generation events, once this request's turn has come; the answer is logged and
    counted in the metrics."""
    interval = pipeline.settings.server.stream_interval
    async with queue.slot():
        # On the generator's own thread when it has one: a hop per token to another
        # thread would take CPU time from llama.cpp's threads.
        async for batch in iterate_in_thread(lambda: pipeline.generate(prepared), interval,
                                             pipeline.generator.executor):  # fmt: skip
            for event in merge_tokens(batch):
                if isinstance(event, DoneEvent):
                    note_answer(request, index, event.answer)
                yield event


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


async def answer(pipeline: Pipeline, queue: GenerationQueue, prepared: Prepared, request: Request,
                 index: str) -> Answer:  # fmt: skip
    result: Answer | None = None
    async for event in events(pipeline, queue, prepared, request, index):
        if isinstance(event, DoneEvent):
            result = event.answer
    assert result is not None
    return result


def sources_out(sources: list[Source]) -> list[dict[str, object]]:
    return [SourceOut(**{k: getattr(s, k) for k in SourceOut.model_fields}).model_dump()
            for s in sources]  # fmt: skip
