"""The IVF files of a local store, `vectors-<gen>.faiss`: trained on a sample of the
vectors SQLite holds and written with all of them, both read a batch at a time
(`rag.store.local.ivf`), so memory does not grow with the index. When a commit writes
one, and what readers load from it, is the store's business (`rag.store.local.store`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rag.store.local import ivf
from rag.store.local.chunks import ChunkDB
from rag.store.local.vectors import ivf_lists

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

logger = logging.getLogger(__name__)

TRAINING_PER_LIST = 64  # vectors sampled per IVF list to train its centroids
BUILD_BATCH = 256  # vectors read from SQLite at a time to train and write the IVF file


def vectors_file(folder: Path, generation: int) -> Path:
    return folder / f"vectors-{generation}.faiss"


class IvfFiles:
    """The IVF files of one index folder, made from the vectors of its `ChunkDB`."""

    def __init__(self, db: ChunkDB, folder: Path, dimension: int, name: str) -> None:
        self.db = db
        self.folder = folder
        self.dimension = dimension
        self.name = name  # the index's, for the logs

    def path(self, generation: int) -> Path:
        return vectors_file(self.folder, generation)

    def trained(self, generation: int) -> Any | None:
        """The trained (empty) index of the file of `generation`; None if it is unreadable,
        or not written by `ivf.write`."""
        return ivf.trained_from(self.path(generation))

    def train(self, live: int) -> Any:
        """An IVF index (its lists empty) trained on a sample of the live vectors."""
        dimension, lists = self.dimension, ivf_lists(live)
        sample = self.db.sample_ids(TRAINING_PER_LIST * lists)

        def batches() -> Iterator[NDArray[np.float32]]:
            for start in range(0, len(sample), BUILD_BATCH):
                yield self.db.vectors_of(sample[start : start + BUILD_BATCH].tolist(), dimension)

        start = time.perf_counter()
        trained = ivf.train(dimension, lists, batches)
        logger.info(
            "vectors trained index=%s lists=%d sample=%d seconds=%.1f",
            self.name,
            lists,
            len(sample),
            time.perf_counter() - start,
        )
        return trained

    def write(self, trained: object, generation: int, what: str) -> None:
        """Write the IVF file of `generation`: the live vectors, encoded with `trained`."""
        start = time.perf_counter()
        batches = self.db.vectors(self.dimension, batch=BUILD_BATCH)
        count = ivf.write(trained, batches, self.path(generation))
        logger.info(
            "vectors file %s index=%s generation=%d chunks=%d seconds=%.1f",
            what,
            self.name,
            generation,
            count,
            time.perf_counter() - start,
        )
