"""One generation at a time; the others wait in a bounded, first-come queue."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import Executor
from contextlib import asynccontextmanager
from typing import TypeVar

from rag.errors import BusyError

T = TypeVar("T")


class GenerationQueue:
    """A FIFO lock with at most `size` waiters; one more is refused with BusyError.

    A request is admitted (`admit`) before any work is done for it, so that a request the
    queue cannot take is refused before retrieval and prompt building, and before a
    streamed response has sent its status. The admission holds its place while the
    request prepares, waits for its turn and generates, until it is released.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.admitted = 0
        self._lock = asyncio.Lock()  # asyncio.Lock wakes waiters in arrival order

    @property
    def depth(self) -> int:
        """Requests admitted: generating, waiting for the model, or preparing."""
        return self.admitted

    def admit(self) -> Admission:
        """A place in the queue, or BusyError when the model and every place are taken."""
        if self.admitted > self.size:
            raise BusyError(f"the model is busy and {self.admitted - 1} requests wait; retry later")
        self.admitted += 1
        return Admission(self)

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Admission and turn in one: the model is this caller's inside the block."""
        admission = self.admit()
        try:
            await admission.turn()
            yield
        finally:
            admission.release()


class Admission:
    """One admitted request's place in a GenerationQueue. `release` is idempotent and must
    be called on every path (answer sent, error, client gone, cancellation)."""

    def __init__(self, queue: GenerationQueue) -> None:
        self._queue = queue
        self._holding = False
        self._released = False

    async def turn(self) -> None:
        """Wait until the model is this request's."""
        if self._released:
            raise RuntimeError("admission already released")
        if not self._holding:
            await self._queue._lock.acquire()
            self._holding = True

    def release(self) -> None:
        if self._released:
            return
        self._released = True
        self._queue.admitted -= 1
        if self._holding:
            self._holding = False
            self._queue._lock.release()


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
    guard = threading.Lock()
    buffer: list[T] = []
    outcome: list[BaseException | None] = []  # set once the iterator is done
    stop = threading.Event()
    state = {"signalled": False, "last": 0.0}

    def signal(final: bool) -> None:
        with guard:
            now = time.monotonic()
            if state["signalled"] or (not final and now - state["last"] < interval):
                return
            state["signalled"], state["last"] = True, now
        loop.call_soon_threadsafe(ready.set)

    def work() -> None:
        iterator = factory()
        error: BaseException | None = None
        try:
            for item in iterator:
                if stop.is_set():
                    break
                with guard:
                    buffer.append(item)
                signal(final=False)
        except BaseException as exc:  # handed to the consumer, raised there
            error = exc
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()
        with guard:
            outcome.append(error)
        signal(final=True)

    future = loop.run_in_executor(executor, work)
    try:
        while True:
            await ready.wait()
            ready.clear()
            with guard:
                batch, buffer[:] = buffer[:], []
                done = bool(outcome)
                state["signalled"] = False
            if batch:
                yield batch
            if done:
                if outcome[0] is not None:
                    raise outcome[0]
                break
    finally:
        stop.set()
        if not future.done():
            # The thread lets go of the iterator at its next item: wait for that, so that
            # whoever comes next finds the model free. Shielded: a second cancellation
            # leaves the thread to finish on its own.
            await asyncio.shield(future)
        future.result()
