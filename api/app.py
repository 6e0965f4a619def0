"""The app factory: `create_app(settings)`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, Security
from fastapi.middleware.cors import CORSMiddleware
from fastapi.security import HTTPBearer

from api import (
    ask_router,
    docs_router,
    health_router,
    indexes_router,
    ingest_router,
    metrics_router,
    openai_router,
    search_router,
    web_router,
)
from api.auth import Authenticator, require_key, role
from api.concurrency import GenerationQueue
from api.errors import install_error_handlers
from api.jobs import JobRunner
from api.limits import BodyLimit
from api.observability import Metrics, RequestLog
from api.origin import OriginGuard, exposure_warnings
from api.schemas import ERROR_RESPONSES
from rag.config import Settings
from rag.pipeline import Pipeline
from rag.util import redact_paths

logger = logging.getLogger(__name__)


def create_app(settings: Settings, pipeline: Pipeline | None = None) -> FastAPI:
    """Build the API. Without a ready `pipeline`, the models load in the background at
    start-up; `/health` answers 503 until they are ready."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.queue = GenerationQueue(settings.server.queue_size)
        for warning in exposure_warnings(settings.server):
            logger.warning(warning)
        task = None
        if app.state.pipeline is None:
            task = asyncio.create_task(_load(app, settings))
        yield
        if task is not None and not task.done():
            task.cancel()
        await asyncio.to_thread(app.state.jobs.close)  # the running job ends after its file
        app.state.auth.store.close()

    app = FastAPI(
        title="rag",
        summary="Questions answered from your own documents, on a local model.",
        version="0.1.0",
        lifespan=lifespan,
        # Served by docs_router instead, behind the key like the rest of the API.
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.pipeline = pipeline
    app.state.load_error = None
    app.state.queue = GenerationQueue(settings.server.queue_size)
    app.state.jobs = JobRunner(settings)
    app.state.auth = Authenticator(settings)
    # Innermost of the middleware, so that a refused body is still logged, counted and
    # given CORS headers. Uploads to /ingest have their own, larger limit (max_upload_mb).
    app.add_middleware(BodyLimit, limit=settings.server.max_body_kb * 1024, exempt=["/ingest"])
    # Before any body is read; inside CORS, which answers the preflights of cors_origins.
    app.add_middleware(OriginGuard, settings=settings, uploads=["/ingest"])
    if settings.server.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.server.cors_origins,
            allow_methods=["*"],
            allow_headers=["*"],
        )
    install_error_handlers(app)
    app.state.metrics = Metrics(lambda: app.state.queue.depth, lambda: _index_chunks(app))
    app.add_middleware(RequestLog, metrics=app.state.metrics)
    secured = [Depends(require_key)]
    if (
        settings.server.api_keys or app.state.auth.store.in_use()
    ):  # documented in the schema, so that clients know to send it
        secured.append(Security(HTTPBearer(auto_error=False, description="An API key.")))
    app.include_router(health_router.router)
    app.include_router(web_router.router)  # the page itself: it is where the key is entered
    app.include_router(docs_router.router, dependencies=[] if settings.server.public_docs else secured)
    app.include_router(
        metrics_router.router, dependencies=[*secured, role("admin")], responses=ERROR_RESPONSES
    )
    app.include_router(ask_router.router, dependencies=secured, responses=ERROR_RESPONSES)
    app.include_router(openai_router.router, dependencies=secured, responses=ERROR_RESPONSES)
    app.include_router(ingest_router.router, dependencies=secured, responses=ERROR_RESPONSES)
    app.include_router(search_router.router, dependencies=secured, responses=ERROR_RESPONSES)
    app.include_router(indexes_router.router, dependencies=secured, responses=ERROR_RESPONSES)
    return app


def _index_chunks(app: FastAPI) -> dict[str, int]:
    """Chunks of the indexes the server has open; a scrape opens none (it runs in a
    thread: see metrics_router)."""
    pipeline: Pipeline | None = app.state.pipeline
    return {} if pipeline is None else pipeline.loaded_index_sizes()


async def _load(app: FastAPI, settings: Settings) -> None:
    try:
        app.state.pipeline = await asyncio.to_thread(Pipeline.from_settings, settings)
        logger.info("models ready")
    except Exception as exc:  # reported by /health; the server stays up to say so
        logger.exception("loading models failed")
        app.state.load_error = redact_paths(str(exc))  # the log has the whole of it
