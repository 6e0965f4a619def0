"""POST /ask: a question in, an answer with its sources out (or server-sent events)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from api import answering
from api.deps import PipelineDep, QueueDep
from api.schemas import GENERATION_RESPONSES, AskRequest, AskResponse
from rag.pipeline import DoneEvent, Prepared, TokenEvent
from rag.types import Answer

router = APIRouter(tags=["ask"])


@router.post("/ask", response_model=AskResponse, responses=GENERATION_RESPONSES)
async def ask(body: AskRequest, request: Request, pipeline: PipelineDep, queue: QueueDep) -> object:
    """Answer a question from an index, citing its sources."""
    index = body.index or pipeline.settings.index
    history = [t.model_dump() for t in body.history if t.role != "system"]
    prepared = await answering.prepare(
        pipeline, body.question, history, index=body.index, top_k=body.top_k,
        min_score=body.min_score, params=answering.params_from(pipeline, body),
    )  # fmt: skip
    if body.stream:
        stream = _sse(pipeline, queue, prepared, request, index)
        return StreamingResponse(stream, media_type="text/event-stream")
    return _response(await answering.answer(pipeline, queue, prepared, request, index))


async def _sse(pipeline: answering.Pipeline, queue: answering.GenerationQueue, prepared: Prepared,
               request: Request, index: str) -> AsyncIterator[str]:  # fmt: skip
    async for event in answering.events(pipeline, queue, prepared, request, index):
        if isinstance(event, TokenEvent):
            yield _event("token", {"text": event.text})
        elif isinstance(event, DoneEvent):
            done = _response(event.answer)
            yield _event("sources", done["sources"])
            yield _event("done", {k: v for k, v in done.items() if k != "sources"})


def _event(name: str, data: object) -> str:
    return f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def _response(answer: Answer) -> dict[str, object]:
    return {
        "answer": answer.text,
        "sources": answering.sources_out(answer.sources),
        "usage": {"prompt_tokens": answer.usage.prompt_tokens,
                  "completion_tokens": answer.usage.completion_tokens,
                  "total_tokens": answer.usage.total_tokens},
        "timings": {k: round(v, 4) for k, v in answer.timings.items()},
        "finish_reason": answer.finish_reason,
        "found_context": answer.found_context,
    }  # fmt: skip
