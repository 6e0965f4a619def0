"""Admission before work: a request the queue cannot take is refused with a real 429
before retrieval or prompt building, streamed or not; its place is given back on every
path; a model error during a stream ends it with an OpenAI-shaped error event."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from api.concurrency import GenerationQueue
from rag.errors import BusyError
from rag.pipeline import Pipeline
from tests.api.conftest import running_server

ASK = {"question": "Tell me about cats.", "stream": True, "max_tokens": 40}
CHAT = {"model": "default", "max_tokens": 40, "messages": [{"role": "user", "content": "Where is Etna?"}]}


def slowed(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch, fail_after: int | None = None
) -> list[threading.Event]:
    """The real model, slowed so that an answer outlasts the checks; optionally failing
    after a few pieces, as a model that runs out of memory would. Returns an event per
    generation, set once it has stopped."""
    real_stream = pipeline.generator.stream
    stopped: list[threading.Event] = []

    def stream(*args: Any, **kwargs: Any) -> Iterator[Any]:
        stopped.append(threading.Event())
        try:
            with contextlib.closing(real_stream(*args, **kwargs)) as deltas:
                for n, delta in enumerate(deltas):
                    if fail_after is not None and n == fail_after:
                        raise RuntimeError("llama_decode returned -3")
                    time.sleep(0.1)
                    yield delta
        finally:
            stopped[-1].set()

    monkeypatch.setattr(pipeline.generator, "stream", stream)
    return stopped


def counted_prepare(pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    real_prepare = pipeline.prepare

    def prepare(question: str, **kwargs: Any) -> Any:
        calls.append(question)
        return real_prepare(question, **kwargs)

    monkeypatch.setattr(pipeline, "prepare", prepare)
    return calls


def queue_depth(url: str) -> float:
    text = httpx.get(url + "/metrics", timeout=10).text
    return float(next(line.split()[-1] for line in text.splitlines() if line.startswith("rag_queue_depth ")))


def test_admission_counts_from_before_the_turn() -> None:
    import asyncio

    async def run() -> None:
        queue = GenerationQueue(size=1)
        first, second = queue.admit(), queue.admit()  # one generates, one may wait
        assert queue.depth == 2
        with pytest.raises(BusyError):
            queue.admit()  # refused while the others have not even reached their turn
        await first.turn()
        waiting = asyncio.create_task(second.turn())
        await asyncio.sleep(0.01)
        assert not waiting.done()
        first.release()
        first.release()  # idempotent
        await asyncio.wait_for(waiting, 1)
        second.release()
        assert queue.depth == 0
        cancelled = queue.admit()
        blocker = queue.admit()
        await blocker.turn()
        task = asyncio.create_task(cancelled.turn())
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        cancelled.release()
        blocker.release()
        assert queue.depth == 0 and not queue._lock.locked()

    asyncio.run(run())


def test_streamed_request_gets_a_real_429_before_any_work(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    slowed(pipeline, monkeypatch)
    settings = pipeline.settings.model_copy(deep=True)
    settings.server.queue_size = 0
    with running_server(settings, pipeline) as url:
        with httpx.stream("POST", url + "/ask", json=ASK, timeout=60) as r:
            lines = r.iter_lines()
            assert next(line for line in lines if line.startswith("event: token"))
            calls = counted_prepare(pipeline, monkeypatch)
            refused = [
                httpx.post(url + "/ask", json=ASK, timeout=10),
                httpx.post(url + "/v1/chat/completions", json={**CHAT, "stream": True}, timeout=10),
                httpx.post(url + "/v1/chat/completions", json=CHAT, timeout=10),
            ]
            assert calls == []  # refused before retrieval and prompt building
            rest = "\n".join(lines)
        assert "event: done" in rest
        for response in refused:
            assert response.status_code == 429, response.text
            assert response.headers["content-type"] == "application/json"
            assert response.json()["error"]["code"] == "queue_full"
        served = httpx.post(url + "/v1/chat/completions", json={**CHAT, "max_tokens": 4}, timeout=60)
        assert served.status_code == 200
        assert queue_depth(url) == 0


def test_place_is_given_back_when_the_client_goes_away(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    stopped = slowed(pipeline, monkeypatch)
    settings = pipeline.settings.model_copy(deep=True)
    settings.server.queue_size = 0
    with running_server(settings, pipeline) as url:
        for route, body in (("/ask", ASK), ("/v1/chat/completions", {**CHAT, "stream": True})):
            with httpx.stream("POST", url + route, json={**body, "max_tokens": 200}, timeout=60) as r:
                next(line for line in r.iter_lines() if "content" in line or "token" in line)
            assert stopped[-1].wait(2), route  # the model stops soon after the client has gone
            deadline = time.time() + 5
            while queue_depth(url) != 0 and time.time() < deadline:
                time.sleep(0.05)
            assert queue_depth(url) == 0, route
        # A request refused by the prompt builder gives its place back too.
        huge = {"model": "default", "messages": [{"role": "user", "content": "word " * 19_000}]}
        assert httpx.post(url + "/v1/chat/completions", json=huge, timeout=60).status_code == 400
        assert queue_depth(url) == 0
        assert (
            httpx.post(url + "/v1/chat/completions", json={**CHAT, "max_tokens": 2}, timeout=60).status_code
            == 200
        )


def test_model_error_ends_the_stream_with_an_error_event(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    slowed(pipeline, monkeypatch, fail_after=3)
    with running_server(pipeline.settings, pipeline) as url:
        with httpx.stream("POST", url + "/ask", json=ASK, timeout=60) as r:
            assert r.status_code == 200
            events = [e for e in r.read().decode().split("\n\n") if e]
        assert events[0].startswith("event: token")
        name, data = events[-1].split("\n")
        assert name == "event: error"
        error = json.loads(data.removeprefix("data: "))["error"]
        assert set(error) == {"message", "type", "param", "code"} and error["type"] == "server_error"

        with httpx.stream(
            "POST", url + "/v1/chat/completions", json={**CHAT, "stream": True}, timeout=60
        ) as r:
            events = [e for e in r.read().decode().split("\n\n") if e]
        assert events[-1] == "data: [DONE]"
        error = json.loads(events[-2].removeprefix("data: "))["error"]
        assert set(error) == {"message", "type", "param", "code"} and error["message"]

        # The openai client reads the error event as an error, not as a broken connection.
        client = openai.OpenAI(base_url=url + "/v1", api_key="none", max_retries=0)
        with pytest.raises(openai.APIError, match="internal server error"):
            for _ in client.chat.completions.create(
                model="default", messages=CHAT["messages"], max_tokens=40, stream=True
            ):
                pass
        monkeypatch.undo()
        assert queue_depth(url) == 0
        served = httpx.post(url + "/v1/chat/completions", json={**CHAT, "max_tokens": 2}, timeout=60)
        assert served.status_code == 200
