"""POST /search: the ranked chunks a question retrieves, without calling the model."""

from __future__ import annotations

from functools import partial
from typing import Any

from anyio import to_thread
from fastapi import APIRouter, Request

from api.deps import PipelineDep
from api.observability import note
from api.schemas import INDEX_RESPONSES, SearchRequest, SearchResponse, core_filters

router = APIRouter(tags=["search"])


@router.post("/search", response_model=SearchResponse, responses=INDEX_RESPONSES)
async def search(body: SearchRequest, request: Request, pipeline: PipelineDep) -> dict[str, Any]:
    """Retrieval only: what answering would read for this question, best first, with each
    method's score."""
    index = body.index or pipeline.settings.index
    note(request, index=index)
    call = partial(
        pipeline.search,
        body.query,
        index=index,
        top_k=body.top_k,
        mode=body.mode,
        min_score=body.min_score,
        filters=core_filters(body.filters),
    )
    hits = await to_thread.run_sync(call)
    mode = body.mode or pipeline.settings.retrieval.mode
    data = [h.row(n) for n, h in enumerate(hits, start=1)]
    return {"object": "list", "index": index, "mode": mode, "data": data}
