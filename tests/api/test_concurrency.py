"""The generation queue and the thread hand-over, alone and behind a real server."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from api.concurrency import GenerationQueue, iterate_in_thread
from rag.errors import BusyError
from rag.pipeline import Pipeline
from tests.api.conftest import running_server


def test_queue_is_fifo_and_bounded() -> None:
    async def run() -> list[int]:
        queue = GenerationQueue(size=2)
        order: list[int] = []
        release = asyncio.Event()

        async def request(n: int) -> None:
            async with queue.slot():
                order.append(n)
                if n == 0:
                    await release.wait()

        tasks = [asyncio.create_task(request(n)) for n in range(3)]
        await asyncio.sleep(0.01)  # 0 holds the model, 1 and 2 wait
        assert queue.depth == 3
        with pytest.raises(BusyError):
            async with queue.slot():
                pass
        release.set()
        await asyncio.gather(*tasks)
        return order

    assert asyncio.run(run()) == [0, 1, 2]


def test_iterate_in_thread_batches_in_order() -> None:
    def slow() -> Iterator[int]:
        for i in range(40):
            time.sleep(0.005)
            yield i

    async def run() -> list[list[int]]:
        return [batch async for batch in iterate_in_thread(slow, interval=0.05)]

    batches = asyncio.run(run())
    assert [i for b in batches for i in b] == list(range(40))
    assert batches[0] == [0]  # the first item is not held back
    assert len(batches) < 20  # about 0.2 s of items in 50 ms hand-overs


def test_iterate_in_thread_raises_and_stops_early() -> None:
    closed = threading.Event()

    def failing() -> Iterator[int]:
        yield 1
        raise ValueError("boom")

    def endless() -> Iterator[int]:
        try:
            i = 0
            while True:
                i += 1
                time.sleep(0.001)
                yield i
        finally:
            closed.set()

    async def run() -> None:
        with pytest.raises(ValueError, match="boom"):
            async for _ in iterate_in_thread(failing):
                pass
        stream = iterate_in_thread(endless)
        async for _ in stream:
            break
        await stream.aclose()

    asyncio.run(run())
    assert closed.wait(2)


def test_full_queue_answers_429(pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
    """queue_size 0: while one answer streams, another request is refused at once."""
    real_stream = pipeline.generator.stream

    def slow_stream(*args: Any, **kwargs: Any) -> Iterator[Any]:
        for delta in real_stream(*args, **kwargs):
            time.sleep(0.1)  # the real model, slowed so that the answer outlasts the check
            yield delta

    monkeypatch.setattr(pipeline.generator, "stream", slow_stream)
    settings = pipeline.settings.model_copy(deep=True)
    settings.server.queue_size = 0
    body = {"question": "Tell me about cats.", "stream": True, "max_tokens": 40}
    with running_server(settings, pipeline) as url:
        with httpx.stream("POST", url + "/ask", json=body, timeout=60) as r:
            lines = r.iter_lines()
            assert next(line for line in lines if line.startswith("event: token"))
            assert next(lines).startswith("data:")
            refused = httpx.post(
                url + "/v1/chat/completions",
                timeout=10,
                json={"model": "default", "messages": [{"role": "user", "content": "Where is Etna?"}]},
            )
        assert refused.status_code == 429
        assert refused.json()["error"]["code"] == "queue_full"
        assert refused.json()["error"]["message"]
        # Once the model is free, the same request is served.
        served = httpx.post(
            url + "/v1/chat/completions",
            timeout=60,
            json={
                "model": "default",
                "max_tokens": 4,
                "messages": [{"role": "user", "content": "Where is Etna?"}],
            },
        )
        assert served.status_code == 200
