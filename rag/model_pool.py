"""The loaded models: loaded on first use, at most `max_loaded` at once, the least recently
used unloaded first.

    pool = ModelPool(lambda name: make_generator(catalog.settings_for(name)), max_loaded=2)
    generator = pool.get("SmolLM2-135M-Instruct.Q4_1")

The pool knows nothing of the backend: it holds `Generator`s built by the factory it is
given, and calls their `close()` when it lets one go.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable

from rag.generation import Generator

logger = logging.getLogger(__name__)


class ModelPool:
    """Generators by model name, least recently used first."""

    def __init__(self, load: Callable[[str], Generator], max_loaded: int = 1) -> None:
        self._load = load
        self.max_loaded = max(1, max_loaded)
        self._loaded: OrderedDict[str, Generator] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[str, threading.Lock] = {}

    def add(self, name: str, generator: Generator) -> None:
        """Hold a generator loaded elsewhere (the one the pipeline started with)."""
        with self._lock:
            self._loaded[name] = generator
            self._loaded.move_to_end(name)
            evicted = self._evict()
        self._close(evicted)

    def get(self, name: str) -> Generator:
        """The named model, loaded now if it is not; others may be unloaded to make room."""
        with self._lock:
            found = self._loaded.get(name)
            if found is not None:
                self._loaded.move_to_end(name)
                return found
            loading = self._loading.setdefault(name, threading.Lock())
        with loading:  # two requests for one model load it once
            with self._lock:
                found = self._loaded.get(name)
                if found is not None:
                    self._loaded.move_to_end(name)
                    return found
                # Room first: with max_loaded models in memory, the next one would not fit.
                evicted = self._evict(room=1)
            self._close(evicted)
            generator = self._load(name)
            with self._lock:
                self._loaded[name] = generator
                evicted = self._evict()
                self._loading.pop(name, None)
        self._close(evicted)
        logger.info("model in use name=%s loaded=%s", name, ",".join(self._loaded))
        return generator

    def loaded(self) -> list[str]:
        """Names of the loaded models, least recently used first."""
        with self._lock:
            return list(self._loaded)

    def close(self) -> None:
        with self._lock:
            evicted = list(self._loaded.values())
            self._loaded.clear()
        self._close(evicted)

    def _evict(self, room: int = 0) -> list[Generator]:
        evicted = []
        while self._loaded and len(self._loaded) + room > self.max_loaded:
            name, generator = self._loaded.popitem(last=False)
            logger.info("model unloaded (least recently used) name=%s", name)
            evicted.append(generator)
        return evicted

    @staticmethod
    def _close(generators: list[Generator]) -> None:
        for generator in generators:
            generator.close()
