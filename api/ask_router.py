"""POST /ask: a question in, an answer with its sources out (or server-sent events)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request

from api import answering, limits
from api.concurrency import Admission
from api.deps import PipelineDep, QueueDep, SettingsDep
from api.observability import note
from api.schemas import GENERATION_RESPONSES, AskRequest, AskResponse, core_filters
from rag.pipeline import DoneEvent, Pipeline, Prepared, TokenEvent
from rag.types import Answer

router = APIRouter(tags=["ask"])


@router.post("/ask", response_model=AskResponse, responses=GENERATION_RESPONSES)
async def ask(
    body: AskRequest, request: Request, settings: SettingsDep, pipeline: PipelineDep, queue: QueueDep
) -> object:
    """Answer a question from an index, citing its sources."""
    limits.check_messages(settings.server, [*(t.content for t in body.history), body.question], "history")
    limits.check_stop(settings.server, body.stop)
    index = body.index or pipeline.settings.index
    note(request, index=index)  # in the log line of a refused request too
    history = [t.model_dump() for t in body.history if t.role != "system"]
    params = answering.params_from(pipeline, body, top_k=body.sample_top_k)
    async with answering.admitted(queue) as admission:
        prepared = await answering.prepare(
            pipeline,
            admission,
            body.question,
            history,
            index=body.index,
            top_k=body.top_k,
            min_score=body.min_score,
            params=params,
            filters=core_filters(body.filters),
            model=body.model,
        )
        model = prepared.generator.name if prepared.generator is not None else pipeline.default_model
        if body.stream:
            stream = _sse(pipeline, admission, prepared, request, index, model)
            return answering.AdmittedStream(stream, admission)
        return _response(await answering.answer(pipeline, admission, prepared, request, index), model)


async def _sse(
    pipeline: Pipeline, admission: Admission, prepared: Prepared, request: Request, index: str, model: str
) -> AsyncIterator[str]:
    try:
        async for event in answering.events(pipeline, admission, prepared, request, index):
            if isinstance(event, TokenEvent):
                yield _event("token", {"text": event.text})
            elif isinstance(event, DoneEvent):
                done = _response(event.answer, model)
                yield _event("sources", done["sources"])
                yield _event("done", {k: v for k, v in done.items() if k != "sources"})
    except Exception as exc:  # the 200 has gone: the stream ends with the error instead
        yield _event("error", answering.stream_error(request, exc))


def _event(name: str, data: object) -> str:
    return f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def _response(answer: Answer, model: str) -> dict[str, object]:
    return {
        "answer": answer.text,
        "model": model,
        "sources": answering.sources_out(answer.sources),
        "usage": {
            "prompt_tokens": answer.usage.prompt_tokens,
            "completion_tokens": answer.usage.completion_tokens,
            "total_tokens": answer.usage.total_tokens,
        },
        "timings": {k: round(v, 4) for k, v in answer.timings.items()},
        "finish_reason": answer.finish_reason,
        "found_context": answer.found_context,
        "language": answer.language,
        **answering.attribution_out(answer),
    }
