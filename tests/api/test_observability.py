"""One log line per request, and the Prometheus metrics."""

from __future__ import annotations

import logging
import re
import shlex
import threading
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from ingest.worker import IngestWorker
from rag.pipeline import Pipeline
from tests.api.conftest import running_server


def metric(text: str, name: str, **labels: str) -> float:
    """The sum of the samples of `name` that carry these labels (among others)."""
    total, found = 0.0, False
    for line in text.splitlines():
        sample, _, value = line.rpartition(" ")
        if sample.split("{")[0] != name:
            continue
        if all(f'{k}="{v}"' in sample for k, v in labels.items()):
            total, found = total + float(value), True
    assert found, f"{name} {labels} not in metrics:\n{text}"
    return total


def test_requests_are_logged_and_counted(pipeline: Pipeline, caplog: pytest.LogCaptureFixture) -> None:
    client = TestClient(create_app(pipeline.settings, pipeline))
    caplog.set_level(logging.INFO, logger="rag.access")
    body = {"question": "Where is Mount Etna?", "max_tokens": 8}
    assert client.post("/ask", json=body).status_code == 200
    with client.stream("POST", "/ask", json={**body, "stream": True}) as r:
        assert "event: done" in r.read().decode()
    assert client.post("/ask", json={"question": ""}).status_code == 400
    assert client.post("/v1/embeddings", json={"input": ["a", "b"], "model": "default"}).status_code == 200

    lines = [r.getMessage() for r in caplog.records if r.name == "rag.access"]
    assert len(lines) == 4
    assert re.search(
        r"method=POST route=/ask status=200 duration=\S+ index=default prompt_tokens=\d+ "
        r"completion_tokens=\d+ finish=\w+ ",
        lines[0],
    )
    assert "completion_tokens=" in lines[1]  # the streamed answer, logged once it ended
    assert "status=400" in lines[2]
    assert "route=/v1/embeddings" in lines[3] and "inputs=2" in lines[3]

    text = client.get("/metrics").text
    assert metric(text, "rag_http_requests_total", method="POST", route="/ask", status="200") == 2
    assert metric(text, "rag_http_requests_total", method="POST", route="/ask", status="400") == 1
    assert metric(text, "rag_completion_tokens_total") > 0
    assert metric(text, "rag_answers_total", index="default") == 2
    assert metric(text, "rag_queue_depth") == 0
    assert metric(text, "rag_index_chunks", index="default") == len(pipeline.index().vectors)
    assert metric(text, "rag_http_request_duration_seconds_count", route="/ask") == 3


def test_unknown_routes_share_one_label(pipeline: Pipeline) -> None:
    client = TestClient(create_app(pipeline.settings, pipeline))
    for path in ("/nope", "/nope/1", "/x"):
        assert client.get(path).status_code == 404
    text = client.get("/metrics").text
    assert metric(text, "rag_http_requests_total", method="GET", route="unmatched", status="404") == 3


def test_scrape_opens_no_index(
    pipeline: Pipeline, worker: IngestWorker, corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sizes of the indexes the server has open; another index on disk is not opened."""
    worker.run(corpus, "other")
    client = TestClient(create_app(pipeline.settings, pipeline))
    assert client.post("/ask", json={"question": "Where is Etna?", "max_tokens": 2}).status_code == 200
    chunks = pipeline.index().chunk_count()

    def no_opening(*args: object, **kwargs: object) -> None:
        raise AssertionError("a scrape opened an index")

    monkeypatch.setattr(pipeline, "index", no_opening)
    text = client.get("/metrics").text
    assert metric(text, "rag_index_chunks", index="default") == chunks
    assert 'index="other"' not in text


def test_scrape_does_not_block_the_event_loop(pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
    """While collecting waits (an index being reopened holds its lock), /health answers."""
    real_index, real_sizes = pipeline.index, getattr(pipeline, "loaded_index_sizes", None)

    def slow_index(*args: object, **kwargs: object) -> object:
        time.sleep(2)
        return real_index(*args, **kwargs)  # type: ignore[arg-type]

    def slow_sizes() -> object:
        time.sleep(2)
        return real_sizes() if real_sizes else {}

    monkeypatch.setattr(pipeline, "index", slow_index)
    monkeypatch.setattr(pipeline, "loaded_index_sizes", slow_sizes, raising=False)
    with running_server(pipeline.settings, pipeline) as url:
        scrape = threading.Thread(target=lambda: httpx.get(url + "/metrics", timeout=30))
        scrape.start()
        time.sleep(0.3)
        start = time.perf_counter()
        assert httpx.get(url + "/health", timeout=30).status_code == 200
        took = time.perf_counter() - start
        scrape.join(30)
    assert took < 0.5, took


def test_a_logged_value_cannot_start_a_field_or_a_line() -> None:
    from api.observability import _value

    fields = {"index": 'x" status=200', "error": "a\nstatus=500", "path": "back\\slash", "n": 3}
    line = " ".join(f"{k}={_value(v)}" for k, v in fields.items())
    assert "\n" not in line
    assert shlex.split(line) == ['index=x" status=200', "error=a\\nstatus=500", "path=back\\slash", "n=3"]
