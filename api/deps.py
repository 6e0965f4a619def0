"""Dependencies shared by the routers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from api.concurrency import GenerationQueue
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


SettingsDep = Annotated[Settings, Depends(get_settings)]
PipelineDep = Annotated[Pipeline, Depends(get_pipeline)]
QueueDep = Annotated[GenerationQueue, Depends(get_queue)]
JobsDep = Annotated[JobRunner, Depends(get_jobs)]
