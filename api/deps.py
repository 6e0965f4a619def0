"""Dependencies shared by the routers."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, Request
from pydantic import SecretStr

from api.concurrency import GenerationQueue
from api.errors import ApiError
from api.jobs import JobRunner
from rag.config import Settings
from rag.errors import NotReadyError
from rag.pipeline import Pipeline


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_pipeline(request: Request) -> Pipeline:
    pipeline: Pipeline | None = request.app.state.pipeline
    if pipeline is None:
        raise NotReadyError("models are still loading; retry in a few seconds")
    return pipeline


def get_queue(request: Request) -> GenerationQueue:
    queue: GenerationQueue = request.app.state.queue
    return queue


def get_jobs(request: Request) -> JobRunner:
    jobs: JobRunner = request.app.state.jobs
    return jobs


def require_key(request: Request) -> None:
    """Bearer keys, when any are configured.

    The header is compared as the bytes that were sent: a token that is not ASCII (or not
    text at all) is a wrong key like any other, never an error of the server.
    """
    keys: list[SecretStr] = request.app.state.settings.server.api_keys
    if not keys:
        return
    header = next((v for k, v in request.headers.raw if k == b"authorization"), b"")
    scheme, _, token = header.strip().partition(b" ")
    token = token.strip()
    if scheme.lower() != b"bearer" or not token:
        raise ApiError(
            401, "missing API key: send Authorization: Bearer KEY", "invalid_request_error", "invalid_api_key"
        )
    # Every key is compared, so that the time taken does not tell which one came close.
    matches = [secrets.compare_digest(token, k.get_secret_value().encode()) for k in keys]
    if not any(matches):
        raise ApiError(401, "invalid API key", "invalid_request_error", "invalid_api_key")


SettingsDep = Annotated[Settings, Depends(get_settings)]
PipelineDep = Annotated[Pipeline, Depends(get_pipeline)]
QueueDep = Annotated[GenerationQueue, Depends(get_queue)]
JobsDep = Annotated[JobRunner, Depends(get_jobs)]
