"""One generation at a time; the others wait in a bounded, first-come queue."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from typing import TypeVar

from rag.errors import BusyError

T = TypeVar("T")


class GenerationQueue:
    """A FIFO lock with at most `size` waiters; one more is refused with BusyError."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.waiting = 0
        self._lock = asyncio.Lock()  # asyncio.Lock wakes waiters in arrival order

    @property
    def depth(self) -> int:
        return self.waiting + (1 if self._lock.locked() else 0)

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        if self._lock.locked() and self.waiting >= self.size:
            raise BusyError(f"the model is busy and {self.waiting} requests wait; retry later")
        self.waiting += 1
        try:
            await self._lock.acquire()
        finally:
            self.waiting -= 1
        try:
            yield
        finally:
            self._lock.release()


async def iterate_in_thread(factory: Callable[[], Iterator[T]]) -> AsyncIterator[T]:
    """Run a blocking iterator in a worker thread, items handed to the event loop.

    When the consumer stops early (a client disconnected), the thread stops at the
    next item and closes the iterator, which ends the generation.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[str, object]] = asyncio.Queue()
    stop = threading.Event()

    def put(kind: str, value: object) -> None:
        loop.call_soon_threadsafe(queue.put_nowait, (kind, value))

    def work() -> None:
        iterator = factory()
        try:
            for item in iterator:
                if stop.is_set():
                    break
                put("item", item)
        except BaseException as exc:  # handed to the consumer, raised there
            put("error", exc)
            return
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()
        put("end", None)

    future = loop.run_in_executor(None, work)
    try:
        while True:
            kind, value = await queue.get()
            if kind == "item":
                yield value  # type: ignore[misc]
            elif kind == "error":
                raise value  # type: ignore[misc]
            else:
                break
    finally:
        stop.set()
        if future.done():
            future.result()
