"""The reader ahead and the writer behind the embedding thread."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from ingest.handover import ReadAhead, WriteBehind, take
from rag.types import Chunk


def test_the_reader_is_ahead_by_at_most_its_budget_of_chunks() -> None:
    """The reader thread runs ahead of the embedder by chunks, not by files: it waits once
    that many are queued, and everything comes out, in order."""
    produced: list[int] = []

    def factory() -> Iterator[list[Chunk]]:
        for n in range(40):
            produced.append(n)
            yield [Chunk(f"text {n} {j}", "a.txt", j) for j in range(10)]

    messages = ReadAhead(factory, 50, len)
    try:
        deadline = time.monotonic() + 5
        while len(produced) < 6 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.2)
        assert len(produced) <= 6  # 5 batches of 10 queued, the 6th made and waiting for room
        assert messages.ready()
        got = [batch[0].text for batch in messages]
    finally:
        messages.close()
    assert got == [f"text {n} 0" for n in range(40)]


def test_the_readers_error_comes_after_what_it_read() -> None:
    def factory() -> Iterator[int]:
        yield 1
        yield 2
        raise OSError("disk gone")

    messages = ReadAhead(factory, 10, lambda _: 1)
    try:
        assert next(messages) == 1 and next(messages) == 2
        with pytest.raises(OSError, match="disk gone"):
            next(messages)
        with pytest.raises(StopIteration):
            next(messages)
    finally:
        messages.close()


def test_jobs_run_in_order_on_another_thread_while_the_caller_goes_on() -> None:
    done: list[int] = []
    threads: set[str] = set()
    release = threading.Event()

    def job(n: int) -> None:
        if n == 0:
            assert release.wait(5)
        threads.add(threading.current_thread().name)
        done.append(n)

    writer = WriteBehind(depth=8)
    try:
        for n in range(5):
            writer.submit(lambda n=n: job(n))
        assert done == []  # the first job waits: submitting did not
        release.set()
        writer.drain()
        assert done == [0, 1, 2, 3, 4]
        assert threads == {"ingest-writer"}
    finally:
        writer.close()


def test_a_jobs_error_reaches_the_caller_and_stops_the_later_jobs() -> None:
    done: list[int] = []

    def fail() -> None:
        raise KeyboardInterrupt  # not an Exception either: it must still end the run

    writer = WriteBehind()
    try:
        writer.submit(lambda: done.append(1))
        writer.submit(fail)
        writer.submit(lambda: done.append(3))  # queued before the error was seen
        with pytest.raises(KeyboardInterrupt):
            writer.drain()
        assert done == [1]
    finally:
        writer.close()


def test_close_waits_for_the_running_job_and_drops_the_waiting_ones() -> None:
    done: list[str] = []
    started = threading.Event()

    def slow() -> None:
        started.set()
        time.sleep(0.3)
        done.append("slow")

    writer = WriteBehind(depth=4)
    writer.submit(slow)
    writer.submit(lambda: done.append("dropped"))
    assert started.wait(5)
    writer.close()
    assert done == ["slow"]


def test_take_stops_at_n_or_at_the_end() -> None:
    it = iter(range(5))
    assert take(it, 3) == [0, 1, 2]
    assert take(it, 3) == [3, 4]
    assert take(it, 3) == []
