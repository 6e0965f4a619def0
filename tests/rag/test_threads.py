"""Handing items from a worker thread to a thread (relay) or to an event loop."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from rag.threads import iterate_in_thread, relay


def _numbers(n: int, delay: float = 0.0, log: list[str] | None = None) -> Iterator[int]:
    try:
        for i in range(n):
            if log is not None:
                log.append(threading.current_thread().name)
            time.sleep(delay)
            yield i
    finally:
        if log is not None:
            log.append("closed")


def test_relay_runs_on_the_executor_and_keeps_order() -> None:
    log: list[str] = []
    with ThreadPoolExecutor(1, thread_name_prefix="worker") as pool:
        assert list(relay(lambda: _numbers(50, 0.0005, log), pool)) == list(range(50))
    assert log[-1] == "closed" and all(name.startswith("worker") for name in log[:-1])


def test_relay_raises_after_the_items_before_the_error() -> None:
    def failing() -> Iterator[int]:
        yield 1
        yield 2
        raise ValueError("boom")

    def broken() -> Iterator[int]:
        raise KeyError("never started")

    got: list[int] = []
    with ThreadPoolExecutor(1) as pool:
        with pytest.raises(ValueError, match="boom"):
            for item in relay(failing, pool):
                got.append(item)
        with pytest.raises(KeyError):
            list(relay(broken, pool))
    assert got == [1, 2]


def test_relay_stopped_early_returns_once_the_iterator_is_closed() -> None:
    log: list[str] = []
    lock = threading.Lock()
    with ThreadPoolExecutor(1) as pool:
        with lock:  # as the llama.cpp generator holds its lock around the relay
            stream = relay(lambda: _numbers(10_000, 0.001, log), pool)
            assert next(stream) == 0
            stream.close()
            assert log[-1] == "closed"  # the worker let go before the lock is released
        assert len(log) < 100


def test_iterate_in_thread_batches_in_order() -> None:
    async def run() -> list[list[int]]:
        return [batch async for batch in iterate_in_thread(lambda: _numbers(40, 0.005), 0.05)]

    batches = asyncio.run(run())
    assert [i for b in batches for i in b] == list(range(40))
    assert batches[0] == [0]  # the first item is not held back
    assert len(batches) < 20  # about 0.2 s of items in 50 ms hand-overs


def test_iterate_in_thread_raises_and_stops_early() -> None:
    log: list[str] = []

    def failing() -> Iterator[int]:
        yield 1
        raise ValueError("boom")

    async def run() -> None:
        with pytest.raises(ValueError, match="boom"):
            async for _ in iterate_in_thread(failing):
                pass
        stream = iterate_in_thread(lambda: _numbers(100_000, 0.001, log))
        async for _ in stream:
            break
        await stream.aclose()

        assert log[-1] == "closed"  # closing the stream waited for the worker to let go

    asyncio.run(run())
