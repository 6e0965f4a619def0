"""Handing a blocking iterator's items from the thread that runs it to another thread
or to an event loop: one mechanism for both.

    for delta in relay(factory, executor): ...                    # a thread waits
    async for batch in iterate_in_thread(factory, 0.1, executor): ...  # a loop awaits

The iterator runs on the executor's thread and is closed there. When the consumer stops
early, the iterator is closed at its next item (a generation ends there), and stopping
returns once it is.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import Executor
from typing import Generic, TypeVar

T = TypeVar("T")


class Handoff(Generic[T]):
    """Items of an iterator, buffered by the thread that runs it until the consumer takes
    them. `wake` tells the consumer to take: at most once per `interval` seconds while
    items flow (they wait in the buffer meanwhile), and always at the end."""

    def __init__(self, wake: Callable[[], None], interval: float = 0.0) -> None:
        self._wake = wake
        self._interval = interval
        self._guard = threading.Lock()
        self._buffer: list[T] = []
        self._outcome: list[BaseException | None] = []  # set once the iterator is done
        self._signalled = False
        self._last = 0.0
        self.stop = threading.Event()

    def run(self, factory: Callable[[], Iterator[T]]) -> None:
        """Iterate in this thread; an exception is handed to the consumer, raised there."""
        error: BaseException | None = None
        iterator: Iterator[T] | None = None
        try:
            iterator = factory()
            for item in iterator:
                if self.stop.is_set():
                    break
                with self._guard:
                    self._buffer.append(item)
                self._signal(final=False)
        except BaseException as exc:  # raised again in the consumer's thread
            error = exc
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()
        with self._guard:
            self._outcome.append(error)
        self._signal(final=True)

    def take(self) -> tuple[list[T], bool]:
        """The items buffered so far, and whether the iterator is done (raises its error)."""
        with self._guard:
            batch, self._buffer = self._buffer, []
            done = bool(self._outcome)
            self._signalled = False
        if done and not batch and self._outcome[0] is not None:
            raise self._outcome[0]
        return batch, done

    def _signal(self, final: bool) -> None:
        with self._guard:
            now = time.monotonic()
            if self._signalled or (not final and now - self._last < self._interval):
                return
            self._signalled, self._last = True, now
        self._wake()


def relay(factory: Callable[[], Iterator[T]], executor: Executor) -> Iterator[T]:
    """Iterate `factory()` on the executor's thread, items handed to the caller's thread.

    Returns (or raises) only once the executor's thread has let go of the iterator, so a
    lock held around this call covers the whole iteration. Not to be called from one of
    the executor's own threads: iterate there directly.
    """
    ready = threading.Event()
    handoff: Handoff[T] = Handoff(ready.set)
    future = executor.submit(handoff.run, factory)
    try:
        while True:
            ready.wait()
            ready.clear()
            batch, done = handoff.take()
            yield from batch
            if done:
                handoff.take()  # raises the iterator's error, if any, after its last items
                return
    finally:
        handoff.stop.set()
        future.result()


async def iterate_in_thread(
    factory: Callable[[], Iterator[T]], interval: float = 0.0, executor: Executor | None = None
) -> AsyncIterator[list[T]]:
    """Run a blocking iterator in a worker thread (of `executor` if given); its items reach
    the event loop in batches.

    The loop is woken at most once per `interval` seconds (and at the end), so that a
    fast token stream does not cost a thread switch per token: on a small machine every
    wake-up takes a core away from llama.cpp's threads. When the consumer stops early (a
    client disconnected, a cancelled request), the thread stops at the next item and
    closes the iterator, which ends the generation; closing this iterator waits for that.
    """
    loop = asyncio.get_running_loop()
    ready = asyncio.Event()

    def wake() -> None:
        loop.call_soon_threadsafe(ready.set)

    handoff: Handoff[T] = Handoff(wake, interval)
    # In this context: a request's index scope (rag.access) goes with it into the thread.
    future = loop.run_in_executor(executor, contextvars.copy_context().run, handoff.run, factory)
    try:
        while True:
            await ready.wait()
            ready.clear()
            batch, done = handoff.take()
            if batch:
                yield batch
            if done:
                handoff.take()
                return
    finally:
        handoff.stop.set()
        if not future.done():
            # The thread lets go of the iterator at its next item: wait for that, so that
            # whoever comes next finds the model free. Shielded: a second cancellation
            # leaves the thread to finish on its own.
            await asyncio.shield(future)
        future.result()
