"""Watching a folder for the changes that call for a new ingest run.

    for changed in change_batches(path, settings, debounce_ms=1000):
        worker.run(path)

The first batch is empty and comes as soon as the watch is set up: the first run goes
there, and whatever changes while it runs makes the next batch. Changes are grouped until
none has come for `debounce_ms` (at most ten times that while they keep coming). Hidden
files and folders and everything under `indexes_dir` are ignored, as the worker ignores
them: an index inside the watched folder would otherwise trigger itself.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path

from watchfiles import Change, watch

from rag.config import Settings

logger = logging.getLogger(__name__)


class IngestFilter:
    """Keeps the changes the worker would see: not hidden, not in the indexes."""

    def __init__(self, root: Path, indexes_dir: Path) -> None:
        self.root = root.resolve()
        self.single_file = self.root.is_file()
        self.indexes = indexes_dir.resolve()

    def __call__(self, change: Change, raw: str) -> bool:
        path = Path(raw)
        if path.is_relative_to(self.indexes):
            return False
        if self.single_file:
            return path == self.root
        if not path.is_relative_to(self.root):
            return True  # reached through a symbolic link: the worker follows them too
        return not any(part.startswith(".") for part in path.relative_to(self.root).parts)


def change_batches(
    path: Path, settings: Settings, *, debounce_ms: int, stop: threading.Event | None = None
) -> Iterator[set[Path]]:
    """An empty batch once the watch is set up, then each batch of changed paths."""
    root = path.resolve()
    # A single file is watched through its folder: editors save by replacing the file.
    target = root.parent if root.is_file() else root
    changes = watch(
        target,
        watch_filter=IngestFilter(root, settings.indexes_dir),
        debounce=debounce_ms * 10,
        step=debounce_ms,
        rust_timeout=debounce_ms,
        yield_on_timeout=True,  # for the first, empty batch; the later empty ones are dropped
        stop_event=stop,
        recursive=not root.is_file(),
    )
    first = True
    for batch in changes:
        if batch or first:
            first = False
            logger.info("changes path=%s count=%d", root, len(batch))
            yield {Path(p) for _, p in batch}
