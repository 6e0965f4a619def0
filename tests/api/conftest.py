"""The API tests' pipeline on each backend combination, and a real uvicorn server on
127.0.0.1 around it.

Tests marked `@pytest.mark.backends` (the answering ones: ask, chat, streaming,
grounding, the openai client) run once per combination of `store.kind` x `llm.kind` in
BACKENDS: the local store or pgvector (a throwaway PostgreSQL, tests/pgserver.py), the
model in process or behind a real llama_cpp.server (tests/llmserver.py). Every other API
test runs on the first combination only.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from api.app import create_app
from ingest.worker import IngestWorker
from rag.config import Settings
from rag.embedders.sentence_transformers import SentenceTransformerEmbedder
from rag.generators.base import Generator
from rag.pipeline import Pipeline
from tests.llmserver import llm_server, openai_generator  # noqa: F401  (fixtures)
from tests.pgserver import pg_server, pg_url  # noqa: F401  (fixtures)

#: (store.kind, llm.kind): the combinations the answering tests run on; the first is the
#: default of every other test.
BACKENDS = [("local", "llama-cpp"), ("local", "openai"), ("pgvector", "llama-cpp"), ("pgvector", "openai")]
#: One combination of each store kind, for the tests of what each store must do alike.
STORES = [b for b in BACKENDS if b[1] == "llama-cpp"]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "backends(stores=...): run on every store.kind x llm.kind of BACKENDS (of those stores)",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    marker = metafunc.definition.get_closest_marker("backends")
    if marker and "backend" in metafunc.fixturenames:
        # `backends(stores=[...])`: a test of what one role does runs on that role's kinds only.
        stores = marker.kwargs.get("stores", {store for store, _ in BACKENDS})
        chosen = [b for b in BACKENDS if b[0] in stores]
        metafunc.parametrize("backend", chosen, indirect=True, ids=["+".join(b) for b in chosen])


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> tuple[str, str]:
    """The (store.kind, llm.kind) of this test."""
    return tuple(getattr(request, "param", BACKENDS[0]))  # type: ignore[return-value]


@pytest.fixture
def settings(settings: Settings, backend: tuple[str, str], request: pytest.FixtureRequest) -> Settings:
    """tests/conftest.py's settings, on this test's store and generator."""
    store, llm = backend
    overrides: dict[str, Any] = {}
    if store == "pgvector":
        overrides |= {"store.kind": "pgvector", "store.url": request.getfixturevalue("pg_url")}
    if llm == "openai":
        overrides |= request.getfixturevalue("llm_server").overrides()
    for dotted, value in overrides.items():  # validated, as the groups validate assignments
        group, name = dotted.split(".")
        setattr(getattr(settings, group), name, value)
    return settings


@pytest.fixture
def pipeline(
    settings: Settings,
    embedder: SentenceTransformerEmbedder,
    backend: tuple[str, str],
    worker: IngestWorker,
    corpus: Path,
    request: pytest.FixtureRequest,
) -> Iterator[Pipeline]:
    """The corpus ingested into this test's store, answered by this test's generator."""
    generator: Generator = request.getfixturevalue(
        "openai_generator" if backend[1] == "openai" else "generator"
    )
    worker.run(corpus)
    yield Pipeline(settings, embedder, generator)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running_server(settings: Settings, pipeline: Pipeline) -> Iterator[str]:
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings, pipeline), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not server.started and time.time() < deadline:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture
def base_url(pipeline: Pipeline) -> Iterator[str]:
    with running_server(pipeline.settings, pipeline) as url:
        yield url
