"""The OpenAI-compatible routes: chat completions, models and embeddings.

The request's `model` names the index, or an index and a model as INDEX/MODEL (index
names never hold a '/'): `default` answers from index `default` with the default model,
`default/SmolLM2-135M-Instruct.Q8_0` with that model. Sources travel in an extra `sources`
field that OpenAI clients ignore.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from anyio import to_thread
from fastapi import APIRouter, Request

from api import answering, limits
from api.concurrency import Admission
from api.deps import PipelineDep, QueueDep, SettingsDep
from api.observability import note
from api.schemas import (
    GENERATION_RESPONSES,
    INDEX_RESPONSES,
    ChatCompletionRequest,
    EmbeddingRequest,
    core_filters,
    openai_usage,
)
from rag.embedders.base import Embedder
from rag.errors import IndexNotFoundError, InvalidRequestError
from rag.generators.base import Message
from rag.pipeline import DoneEvent, Pipeline, Prepared, TokenEvent

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

router = APIRouter(prefix="/v1", tags=["openai"])


@router.get("/models")
async def list_models(pipeline: PipelineDep) -> dict[str, Any]:
    """Every index (answered by the default model), each followed by INDEX/MODEL for every
    other model a request can pick."""
    data = await to_thread.run_sync(_listed, pipeline)  # headers and manifests: the disk
    return {"object": "list", "data": data}


def _listed(pipeline: Pipeline) -> list[dict[str, Any]]:
    models = _models(pipeline)
    data = []
    for name in pipeline.index_names():  # those the request's key may see
        created = _created(pipeline, name)
        data.append(
            {
                "id": name,
                "object": "model",
                "created": created,
                "owned_by": "rag",
                "index": name,
                "llm": pipeline.default_model,
            }
        )
        data.extend(
            {
                "id": f"{name}/{model}",
                "object": "model",
                "created": created,
                "owned_by": "rag",
                "index": name,
                "llm": model,
            }
            for model in models
        )
    return data


def _models(pipeline: Pipeline) -> list[str]:
    """The models a request can name besides the default: the catalog's valid GGUF files."""
    return [
        i.name
        for i in pipeline.models.list()
        if not isinstance(i, Exception) and i.name != pipeline.default_model
    ]


def split_model(model: str) -> tuple[str, str | None]:
    """`INDEX` or `INDEX/MODEL` as (index, model or None)."""
    index, sep, llm = model.partition("/")
    if sep and not llm:
        raise InvalidRequestError(f"model {model!r}: give INDEX or INDEX/MODEL")
    return index, llm or None


@router.post("/chat/completions", responses=GENERATION_RESPONSES)
async def chat_completions(
    body: ChatCompletionRequest,
    request: Request,
    settings: SettingsDep,
    pipeline: PipelineDep,
    queue: QueueDep,
) -> Any:
    """Answer the last user message from the index named by `model`."""
    limits.check_messages(settings.server, [m.text() for m in body.messages], "messages")
    limits.check_stop(settings.server, body.stop)
    question, history = _split(body.messages)
    params = answering.params_from(pipeline, body, body.max_completion_tokens, top_k=body.top_k)
    index, model = split_model(body.model)
    note(request, index=index)  # in the log line of a refused request too
    completion_id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
    async with answering.admitted(queue) as admission:
        prepared = await answering.prepare(
            pipeline,
            admission,
            question,
            history,
            index=index,
            model=model,
            params=params,
            filters=core_filters(body.filters),
        )
        if body.stream:
            include_usage = bool(body.stream_options and body.stream_options.include_usage)
            stream = _chunks(
                pipeline, admission, prepared, request, completion_id, body.model, include_usage, index
            )
            return answering.AdmittedStream(stream, admission)
        answer = await answering.answer(pipeline, admission, prepared, request, index)
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": answer.text},
                "logprobs": None,
                "finish_reason": answer.finish_reason,
            }
        ],
        "usage": openai_usage(answer.usage.prompt_tokens, answer.usage.completion_tokens),
        "sources": answering.sources_out(answer.sources),
        "attribution": answering.attribution_out(answer),
    }


@router.post("/embeddings", responses=INDEX_RESPONSES)
async def embeddings(
    body: EmbeddingRequest, request: Request, settings: SettingsDep, pipeline: PipelineDep
) -> dict[str, Any]:
    """Embed texts with the embedder of the index named by `model`: the runtime the index
    was built with."""
    texts = [body.input] if isinstance(body.input, str) else body.input
    if not texts or any(not t for t in texts):
        raise InvalidRequestError("input must be a non-empty string or list of strings")
    limits.check_embedding_inputs(settings.server, texts)
    # In a thread: the index may be opened and its embedder loaded for it, and embedding
    # and counting run the model and its tokenizer.
    vectors, tokens = await to_thread.run_sync(_embed, pipeline, body.model, texts)
    note(request, index=body.model, inputs=len(texts), prompt_tokens=tokens)
    return {
        "object": "list",
        "data": [
            {"object": "embedding", "index": i, "embedding": _encode(v, body.encoding_format)}
            for i, v in enumerate(vectors)
        ],
        "model": body.model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def _embed(pipeline: Pipeline, model: str, texts: list[str]) -> tuple[NDArray[np.float32], int]:
    embedder = _embedder_of(pipeline, model)
    return embedder.embed(texts), sum(embedder.count_tokens_batch(texts))


def _embedder_of(pipeline: Pipeline, model: str) -> Embedder:
    """The embedder of index `model` (an unknown index: 404; one built by another model:
    409); the configured one for its own name, or for `default` when no index has it."""
    if model == pipeline.embedder.name:
        return pipeline.embedder
    try:
        store = pipeline.index(model)
    except IndexNotFoundError:
        if model == "default":
            return pipeline.embedder
        raise
    return pipeline.embedder_for(store)


def _encode(vector: Any, encoding_format: str) -> Any:
    if encoding_format == "base64":  # what the openai client asks for by default
        return base64.b64encode(vector.astype("<f4").tobytes()).decode("ascii")
    return vector.tolist()


def _split(messages: list[Any]) -> tuple[str, list[Message]]:
    """The last user message is the question; earlier user/assistant turns, its history."""
    turns = [m for m in messages if m.role in ("user", "assistant")]
    if not turns or turns[-1].role != "user" or not turns[-1].text().strip():
        raise InvalidRequestError("messages must end with a non-empty user message")
    history = [{"role": m.role, "content": m.text()} for m in turns[:-1] if m.text()]
    return turns[-1].text(), history


async def _chunks(
    pipeline: Pipeline,
    admission: Admission,
    prepared: Prepared,
    request: Request,
    completion_id: str,
    model: str,
    include_usage: bool,
    index: str,
) -> AsyncIterator[str]:
    created = int(time.time())

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        data = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
            **extra,
        }
        return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"

    yield chunk({"role": "assistant", "content": ""})
    try:
        async for event in answering.events(pipeline, admission, prepared, request, index):
            if isinstance(event, TokenEvent):
                yield chunk({"content": event.text})
            elif isinstance(event, DoneEvent):
                answer = event.answer
                yield chunk(
                    {},
                    answer.finish_reason,
                    sources=answering.sources_out(answer.sources),
                    attribution=answering.attribution_out(answer),
                )
                if include_usage:
                    usage = openai_usage(answer.usage.prompt_tokens, answer.usage.completion_tokens)
                    data = {
                        "id": completion_id,
                        "object": "chat.completion.chunk",
                        "created": created,
                        "model": model,
                        "choices": [],
                        "usage": usage,
                    }
                    yield f"data: {json.dumps(data)}\n\n"
    except Exception as exc:  # the 200 has gone: as OpenAI does, an error event ends the stream
        yield f"data: {json.dumps(answering.stream_error(request, exc), ensure_ascii=False)}\n\n"
    yield "data: [DONE]\n\n"


def _created(pipeline: Pipeline, name: str) -> int:
    manifest = pipeline.catalog.manifest(name)
    return int(manifest.created_at) if manifest is not None else 0
