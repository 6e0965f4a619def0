"""The ingest's two hand-overs between threads: the reader ahead, the writer behind.

The embedding thread keeps both CPU cores busy; what is not embedding runs beside it. A
reader thread hashes, parses and chunks the next files (`ReadAhead`), and a writer
thread analyses and stores what was embedded (`WriteBehind`), so that neither the reading
nor the writing of one group of files waits for the embedding of another.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")


class ReadAhead(Iterator[T], Generic[T]):
    """The items of `factory()`, produced by a reader thread at most `depth` units ahead,
    an item counting for `weight(item)` units.

    The reader's exception is raised here, after the items before it. `close()` stops the
    reader at its next item and waits for it (it may be reading a file: at most the
    sandbox's time limit)."""

    _DONE = object()

    def __init__(self, factory: Callable[[], Iterator[T]], depth: int, weight: Callable[[T], int]) -> None:
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._room = threading.Condition()
        self._ahead = 0  # units queued
        self._depth = depth
        self._weight = weight
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(factory,), name="ingest-reader", daemon=True)
        self._thread.start()

    def _run(self, factory: Callable[[], Iterator[T]]) -> None:
        try:
            for item in factory():
                if not self._put(item, self._weight(item)):
                    return
        except BaseException as exc:  # raised again in the consumer's thread
            self._error = exc
        self._put(self._DONE, 1)

    def _put(self, item: Any, weight: int) -> bool:
        with self._room:
            while self._ahead and self._ahead + weight > self._depth:
                if self._stop.is_set():
                    return False
                self._room.wait(0.1)
            if self._stop.is_set():
                return False
            self._ahead += weight
        self._queue.put((item, weight))
        return True

    def ready(self) -> bool:
        """Whether an item waits (the next one would be had without waiting)."""
        return not self._queue.empty()

    def __next__(self) -> T:
        item, weight = self._queue.get()
        if item is self._DONE:
            self._queue.put((item, weight))  # every later call ends too
            if self._error is not None:
                error, self._error = self._error, None
                raise error
            raise StopIteration
        with self._room:
            self._ahead -= weight
            self._room.notify()
        result: T = item
        return result

    def close(self) -> None:
        self._stop.set()
        with self._room:
            self._room.notify()
        self._thread.join()


class WriteBehind:
    """Runs jobs one at a time, in the order given, on a writer thread; at most `depth`
    wait. A job's exception is raised in the submitting thread, at its next `submit` or
    `drain`, and no later job runs.

    `drain()` waits until every job given so far is done; `close()` waits for the job
    running, drops those waiting (after an error or an interrupt, what was not written
    is simply not recorded: the next ingest does it) and ends the thread."""

    _STOP = object()

    def __init__(self, depth: int = 2, name: str = "ingest-writer") -> None:
        self._jobs: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._failed = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            try:
                if job is self._STOP:
                    return
                if not self._failed.is_set():
                    job()
            except BaseException as exc:  # raised again in the submitting thread
                self._error = exc
                self._failed.set()
            finally:
                self._jobs.task_done()

    def submit(self, job: Callable[[], object]) -> None:
        self._raise()
        self._jobs.put(job)

    def drain(self) -> None:
        self._jobs.join()
        self._raise()

    def close(self) -> None:
        self._failed.set()  # what still waits is dropped
        self._jobs.put(self._STOP)
        self._thread.join()

    def _raise(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error


def take(it: Iterator[T], n: int) -> list[T]:
    """The next `n` items of `it` (fewer at its end)."""
    out: list[T] = []
    for item in it:
        out.append(item)
        if len(out) >= n:
            break
    return out
