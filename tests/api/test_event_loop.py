"""The event loop never waits on disk or models: while one request opens an index, loads
an embedder or reads manifests (each made to take two seconds here), `/health` answers
at once over a real server. `/v1/embeddings` embeds with the runtime an index was built
with."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from ingest.worker import IngestWorker
from rag.config import Settings
from rag.embedders import make_embedder
from rag.embedders.base import Embedder
from rag.pipeline import Pipeline
from tests.api.conftest import running_server

SLOW = 2.0  # seconds each slowed operation takes
PROMPT = 0.1  # seconds /health may take meanwhile


class _Slowed:
    """Operations made to take SLOW seconds before doing their work; `started` is set as
    one begins to wait."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.monkeypatch = monkeypatch
        self.started = threading.Event()

    def slow(self, owner: object, name: str) -> None:
        real: Callable[..., Any] = getattr(owner, name)

        def slowed(*args: Any, **kwargs: Any) -> Any:
            self.started.set()
            time.sleep(SLOW)
            return real(*args, **kwargs)

        self.monkeypatch.setattr(owner, name, slowed)


def _health_while(url: str, slowed: _Slowed, request: Callable[[], httpx.Response]) -> httpx.Response:
    """Start `request`; once its slow operation has begun, the slowest of a few /health
    calls must answer within PROMPT seconds. Returns the request's response."""
    slowed.started.clear()
    done: list[httpx.Response] = []
    thread = threading.Thread(target=lambda: done.append(request()), daemon=True)
    with httpx.Client(base_url=url, timeout=30) as client:
        assert client.get("/health").status_code == 200  # connected before the clock runs
        thread.start()
        assert slowed.started.wait(30), "the slow operation never began"
        took = []
        for _ in range(3):
            start = time.perf_counter()
            assert client.get("/health").status_code == 200
            took.append(time.perf_counter() - start)
            time.sleep(0.1)
    thread.join(60)
    assert done, "the request did not end"
    assert max(took) < PROMPT, f"/health took {max(took):.3f} s while another request waited"
    return done[0]


@pytest.fixture
def onnx_embedder(settings: Settings) -> Embedder:
    return make_embedder(settings.embedder.model_copy(update={"kind": "onnx"}), threads=1)


def test_the_loop_is_free_while_an_index_opens_and_its_embedder_loads(
    pipeline: Pipeline,
    settings: Settings,
    corpus: Path,
    onnx_embedder: Embedder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An index built by the other runtime (onnx, while the server embeds with torch):
    opening it and loading its embedder, for /v1/embeddings and for an ingest job."""
    assert IngestWorker(settings, onnx_embedder).run(corpus, "built-by-onnx").ok
    settings.server.ingest_roots = [corpus]
    slowed = _Slowed(monkeypatch)
    slowed.slow(pipeline.catalog, "open")
    slowed.slow(pipeline.catalog, "manifest")
    import rag.pipeline

    slowed.slow(rag.pipeline, "make_embedder")
    texts = ["What does a cat eat?", "Etna is a volcano."]
    with running_server(settings, pipeline) as url:
        r = _health_while(
            url,
            slowed,
            lambda: httpx.post(
                f"{url}/v1/embeddings", json={"model": "built-by-onnx", "input": texts}, timeout=60
            ),
        )
        assert r.status_code == 200, r.text
        vectors = np.array([d["embedding"] for d in r.json()["data"]], dtype=np.float32)
        # The index's runtime (int8 onnx), not the server's own (torch, fp32).
        assert np.allclose(vectors, onnx_embedder.embed(texts), atol=1e-5)
        assert not np.allclose(vectors, pipeline.embedder.embed(texts), atol=1e-5)
        assert r.json()["usage"]["prompt_tokens"] == sum(onnx_embedder.count_tokens(t) for t in texts)

        r = _health_while(url, slowed, lambda: httpx.get(f"{url}/v1/models", timeout=60))
        assert r.status_code == 200 and {m["id"] for m in r.json()["data"]} == {"default", "built-by-onnx"}

        pipeline.readers.close()  # opened again by the job's submission
        r = _health_while(
            url,
            slowed,
            lambda: httpx.post(
                f"{url}/ingest", json={"path": str(corpus), "index": "built-by-onnx"}, timeout=60
            ),
        )
        assert r.status_code == 202, r.text
        job = r.json()["id"]
        deadline = time.time() + 60
        while (status := httpx.get(f"{url}/ingest/{job}").json())["status"] in ("queued", "running"):
            assert time.time() < deadline
            time.sleep(0.1)
        assert status["status"] == "done", status
