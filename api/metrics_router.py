"""GET /metrics: Prometheus metrics of requests, answers, the queue and the indexes."""

from __future__ import annotations

from anyio import to_thread
from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

router = APIRouter(tags=["health"])


@router.get("/metrics", response_class=Response)
async def metrics(request: Request) -> Response:
    """Request counts and latencies, tokens generated, queue depth, sizes of the open indexes."""
    # In a thread: collecting takes the pipeline's index lock, which an index being
    # reopened holds for a while; the event loop must not wait for it.
    text = await to_thread.run_sync(generate_latest, request.app.state.metrics.registry)
    return Response(text, media_type=CONTENT_TYPE_LATEST)
