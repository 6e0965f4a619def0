"""One generation at a time; the others wait in a bounded, first-come queue."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from rag.errors import BusyError
from rag.threads import iterate_in_thread as iterate_in_thread  # the hand-over to the loop


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
    be called on every path (answer sent, error, client gone, cancellation); what the
    request holds besides (`on_release`) is let go with it."""

    def __init__(self, queue: GenerationQueue) -> None:
        self._queue = queue
        self._holding = False
        self._released = False
        self._then: list[Callable[[], None]] = []
        self._guard = threading.Lock()  # `on_release` may be called from a worker thread

    def on_release(self, callback: Callable[[], None]) -> None:
        """Have `callback` called on release (at once if released already): the model a
        request prepared for is held until the request ends, however it ends."""
        with self._guard:
            if not self._released:
                self._then.append(callback)
                return
        callback()

    async def turn(self) -> None:
        """Wait until the model is this request's."""
        if self._released:
            raise RuntimeError("admission already released")
        if not self._holding:
            await self._queue._lock.acquire()
            self._holding = True

    def release(self) -> None:
        with self._guard:
            if self._released:
                return
            self._released = True
            then, self._then = self._then, []
        self._queue.admitted -= 1
        if self._holding:
            self._holding = False
            self._queue._lock.release()
        for callback in then:
            callback()
