"""POST /ingest queues an ingest job (uploaded files, or a path on the server);
GET /ingest/{id} follows it; GET /ingest lists the recent jobs."""

from __future__ import annotations

from typing import Any

from anyio import to_thread
from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from api import paths, uploads
from api.auth import role
from api.deps import JobsDep, PipelineDep, SettingsDep
from api.errors import ApiError
from api.keys import Principal
from api.observability import note
from api.schemas import ErrorResponse, IngestJobList, IngestJobOut, IngestPathRequest
from rag.access import check_visible, visible
from rag.config import Settings
from rag.pipeline import Pipeline

router = APIRouter(tags=["ingest"])

_REQUEST_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["files"],
                    "properties": {
                        "files": {
                            "type": "array",
                            "items": {"type": "string", "format": "binary"},
                            "description": "Files to ingest; a name may hold simple subfolders.",
                        },
                        "index": {"type": "string", "description": "Index to ingest into."},
                    },
                }
            },
            "application/json": {"schema": IngestPathRequest.model_json_schema()},
        },
    }
}


_SUBMIT_ERRORS: dict[int | str, dict[str, Any]] = {
    403: {
        "model": ErrorResponse,
        "description": "The path is outside server.ingest_roots; or a browser request from another site.",
    },
    413: {"model": ErrorResponse, "description": "The upload is larger than server.max_upload_mb."},
    415: {
        "model": ErrorResponse,
        "description": "The body is neither multipart/form-data nor application/json.",
    },
    429: {"model": ErrorResponse, "description": "Too many jobs are queued; retry later."},
}
_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorResponse, "description": "No such job (only recent jobs are kept)."},
}


@router.post(
    "/ingest",
    status_code=202,
    response_model=IngestJobOut,
    responses=_SUBMIT_ERRORS,
    openapi_extra=_REQUEST_BODY,
    dependencies=[role("ingest")],
)
async def submit(
    request: Request, settings: SettingsDep, pipeline: PipelineDep, jobs: JobsDep
) -> JSONResponse:
    """Queue an ingest job: uploaded files (multipart `files`, optional `index`), or a folder
    or file on the server (JSON `path`, optional `index`). Follow it at the Location."""
    if request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
        jobs.admit()  # a full queue refuses the upload before it is read
        upload = await uploads.receive(request, settings)
        try:
            note(request, index=upload.index)
            await to_thread.run_sync(_may_write, request, pipeline, upload.index)
            embedder = await to_thread.run_sync(pipeline.embedder_for_index, upload.index)
            job = jobs.submit(upload.folder, upload.index, upload.source, embedder, upload.place)
        finally:
            upload.discard()  # what a refused job left aside
    else:  # JSON: OriginGuard lets no other type through
        body = await _path_request(request, settings)
        index = paths.index_name(body.index or settings.index)
        note(request, index=index)
        await to_thread.run_sync(_may_write, request, pipeline, index)
        # In a thread, as what follows: resolving the path reads the disk.
        root = await to_thread.run_sync(paths.allowed_path, body.path, settings.server.ingest_roots)
        source = {"type": "path", "path": str(root)}
        # The index is opened, and the embedder it was built with loaded, if they are not yet.
        embedder = await to_thread.run_sync(pipeline.embedder_for_index, index)
        job = jobs.submit(root, index, source, embedder)
    return JSONResponse(job, status_code=202, headers={"Location": f"/ingest/{job['id']}"})


@router.get("/ingest", response_model=IngestJobList)
async def recent(jobs: JobsDep) -> dict[str, Any]:
    """The jobs kept in memory, newest first."""
    return {"object": "list", "data": [j for j in jobs.recent() if visible([j["index"]])]}


@router.get("/ingest/{job_id}", response_model=IngestJobOut, responses=_NOT_FOUND)
async def status(job_id: str, jobs: JobsDep) -> dict[str, Any]:
    """One job: its status, progress and, file by file, what it did."""
    job = jobs.get(job_id)
    if job is None or not visible([job["index"]]):  # another key's index: no such job
        raise ApiError(
            404,
            f"no ingest job {job_id!r} (jobs are kept in memory, the last ones only)",
            "not_found_error",
            "job_not_found",
            "job_id",
        )
    return job


def _may_write(request: Request, pipeline: Pipeline, index: str) -> None:
    """An index outside the key's scope is missing (404); creating one takes an admin key."""
    check_visible(index)
    principal: Principal = request.state.principal
    if not principal.may("admin") and index not in pipeline.index_names():
        raise ApiError(
            403,
            f"index {index!r} does not exist; creating an index needs an admin key",
            "permission_error",
            "insufficient_role",
            "index",
        )


async def _path_request(request: Request, settings: Settings) -> IngestPathRequest:
    body = await uploads.limited(request, uploads.limit_bytes(settings)).body()
    try:
        return IngestPathRequest.model_validate_json(body)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from exc
