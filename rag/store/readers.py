"""Read-only stores by name, as a server keeps them: one open store per index, followed
from commit to commit, never taken for another index of the same name."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from rag.store.base import Catalog, StoreReader

logger = logging.getLogger(__name__)


class StoreReaders:
    """Read-only stores by name, opened once, reopened when the name stands for another
    index (deleted, or deleted and created again) and dropped when it is gone."""

    def __init__(self, catalog: Catalog, check: Callable[[StoreReader], object] | None = None) -> None:
        """`check(store)` is called on each newly opened store (e.g. the embedder check)."""
        self.catalog = catalog
        self.check = check
        self._open: dict[str, StoreReader] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> StoreReader:
        with self._lock:
            current = self.catalog.identity(name)
            cached = self._open.get(name)
            if cached is not None and cached.identity == current:
                return cached
            if cached is not None:
                self._open.pop(name)
                cached.close()
            store = self.catalog.open(name, readonly=True)
            try:
                if self.check is not None:
                    self.check(store)
            except BaseException:
                store.close()
                raise
            self._open[name] = store
            logger.info("index opened name=%s id=%s", name, store.identity)
            return store

    def loaded(self) -> dict[str, StoreReader]:
        """The stores open now (none is opened to answer)."""
        with self._lock:
            return dict(self._open)

    def close(self) -> None:
        with self._lock:
            for store in self._open.values():
                store.close()
            self._open.clear()
