"""GET /health: 503 while the models load, 200 when ready."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

router = APIRouter(tags=["health"])


@router.get("/health")
async def health(request: Request) -> JSONResponse:
    """Readiness: the models are loaded."""
    state = request.app.state
    if state.load_error is not None:
        return JSONResponse({"status": "error", "detail": state.load_error}, status_code=503)
    if state.pipeline is None:
        return JSONResponse({"status": "loading"}, status_code=503)
    return JSONResponse({"status": "ok"})
