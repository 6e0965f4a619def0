"""The loaded models: loaded on first use, at most `max_loaded` at once, lent to the
requests that use them, and unloaded only when none holds them.

    pool = ModelPool(lambda name: make_generator(catalog.settings_for(name)), max_loaded=2)
    with pool.lease("SmolLM2-135M-Instruct.Q4_1") as generator:
        ...  # the model stays loaded until the lease is given back

A model is unloaded to make room for another one only when no lease on it is held: the
least recently used of those. When every loaded model is held, a request for another
model waits until one is given back, at most `wait` seconds, then ModelsBusyError.

The pool knows nothing of the backend: it holds `Generator`s built by the factory it is
given, and calls their `close()` when it lets one go.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable
from types import TracebackType

from rag.errors import ModelsBusyError
from rag.generators.base import Generator

logger = logging.getLogger(__name__)

DEFAULT_WAIT = 120.0  # seconds a request waits for room for its model


class Lease:
    """A loaded model lent to one user: it is not unloaded until `release` (idempotent),
    or the end of a `with` block."""

    def __init__(self, pool: ModelPool, name: str, generator: Generator) -> None:
        self._pool = pool
        self.name = name
        self.generator = generator
        self._released = False
        self._guard = threading.Lock()

    def release(self) -> None:
        with self._guard:
            if self._released:
                return
            self._released = True
        self._pool._give_back(self.name)

    def __enter__(self) -> Generator:
        return self.generator

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


class ModelPool:
    """Generators by model name, least recently used first, each with its count of holders."""

    def __init__(
        self, load: Callable[[str], Generator], max_loaded: int = 1, wait: float = DEFAULT_WAIT
    ) -> None:
        self._load = load
        self.max_loaded = max(1, max_loaded)
        #: Seconds `lease` waits for room when every loaded model is held.
        self.wait = wait
        self._loaded: OrderedDict[str, Generator] = OrderedDict()
        self._holders: Counter[str] = Counter()
        self._loading: set[str] = set()  # being loaded: they take their room already
        self._changed = threading.Condition(threading.Lock())

    def add(self, name: str, generator: Generator) -> None:
        """Hold a generator loaded elsewhere (the one the pipeline started with)."""
        with self._changed:
            self._loaded[name] = generator
            self._loaded.move_to_end(name)
            evicted = self._evict_idle(room=0)
        self._close(evicted)

    def lease(self, name: str, wait: float | None = None) -> Lease:
        """The named model, loaded now if it is not, held until the lease is released.
        Idle models may be unloaded to make room; when every loaded model is held, this
        waits for one to be given back, at most `wait` seconds (default: `self.wait`),
        then raises ModelsBusyError."""
        deadline = time.monotonic() + (self.wait if wait is None else wait)
        with self._changed:
            while True:
                found = self._loaded.get(name)
                if found is not None:
                    self._holders[name] += 1
                    self._loaded.move_to_end(name)
                    return Lease(self, name, found)
                if name not in self._loading:  # else another request loads it: wait for it
                    evicted = self._make_room()
                    if evicted is not None:
                        self._loading.add(name)
                        break
                left = deadline - time.monotonic()
                if left <= 0:
                    raise ModelsBusyError(
                        f"model {name!r} cannot be loaded now: the {self.max_loaded} loaded "
                        f"(llm.max_loaded) are answering; retry later"
                    )
                self._changed.wait(left)
        # Unloaded before the new one loads: with max_loaded in memory it would not fit.
        self._close(evicted)
        try:
            generator = self._load(name)
        except BaseException:
            with self._changed:
                self._loading.discard(name)
                self._changed.notify_all()
            raise
        with self._changed:
            self._loading.discard(name)
            self._loaded[name] = generator
            self._holders[name] += 1
            self._changed.notify_all()
        logger.info("model in use name=%s loaded=%s", name, ",".join(self.loaded()))
        return Lease(self, name, generator)

    def get(self, name: str) -> Generator:
        """The named model, loaded if it is not, and held by no one: for a caller that is
        the pool's only user (the CLI, a benchmark). A request that may meet others holds
        a `lease` while it uses the model."""
        with self.lease(name) as generator:
            return generator

    def holders(self, name: str) -> int:
        """Leases held on the named model now."""
        with self._changed:
            return self._holders[name]

    def loaded(self) -> list[str]:
        """Names of the loaded models, least recently used first."""
        with self._changed:
            return list(self._loaded)

    def close(self) -> None:
        with self._changed:
            evicted = list(self._loaded.values())
            self._loaded.clear()
            self._holders.clear()
            self._changed.notify_all()
        self._close(evicted)

    def _give_back(self, name: str) -> None:
        with self._changed:
            self._holders[name] -= 1
            if self._holders[name] <= 0:
                del self._holders[name]
            evicted = self._evict_idle(room=0)
            self._changed.notify_all()
        self._close(evicted)

    def _make_room(self) -> list[Generator] | None:
        """(Lock held) Room for one more model: the idle models unloaded for it (maybe
        none), or None, and none unloaded, when the models in the way are held."""
        over = len(self._loaded) + len(self._loading) + 1 - self.max_loaded
        if over > len(self._idle()):
            return None
        return self._evict_idle(room=1)

    def _evict_idle(self, room: int) -> list[Generator]:
        """(Lock held) The least recently used models that no one holds, taken out until
        `room` more would fit (as many as can be)."""
        over = len(self._loaded) + len(self._loading) + room - self.max_loaded
        evicted: list[Generator] = []
        for name in self._idle()[: max(0, over)]:
            logger.info("model unloaded (least recently used) name=%s", name)
            evicted.append(self._loaded.pop(name))
        return evicted

    def _idle(self) -> list[str]:
        """(Lock held) The loaded models no one holds, least recently used first."""
        return [name for name in self._loaded if self._holders[name] == 0]

    @staticmethod
    def _close(generators: list[Generator]) -> None:
        for generator in generators:
            generator.close()
