"""FAISS vectors by chunk id: exact inner-product search, removal by marking ids dead.

FAISS removes from a flat index by rewriting all of it, so `remove` only marks ids dead
(never searched again, left out inside FAISS by an id selector, so a search still returns
k hits) and `compact` drops them all in one pass, once they are a good part of the index.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from numpy.typing import NDArray


class FaissVectors:
    """Vectors by integer id in a FAISS `IndexIDMap2(IndexFlatIP)`."""

    def __init__(self, dimension: int, index: Any = None) -> None:
        import faiss

        self._faiss = faiss
        self.dimension = dimension
        self.index = index if index is not None else faiss.IndexIDMap2(faiss.IndexFlatIP(dimension))
        self.dead: set[int] = set()
        self._params: tuple[Any, ...] | None = None  # search parameters leaving out `dead`

    @classmethod
    def load(cls, path: Path, dimension: int) -> FaissVectors:
        import faiss

        return cls(dimension, faiss.read_index(str(path)))

    def __len__(self) -> int:
        """Live vectors: the ones a search can return."""
        return self.total - len(self.dead)

    @property
    def total(self) -> int:
        """Vectors held, dead ones included."""
        return int(self.index.ntotal)

    def ids(self) -> NDArray[np.int64]:
        """Every id held, dead ones included."""
        return np.asarray(self._faiss.vector_to_array(self.index.id_map), dtype=np.int64)

    def add(self, ids: Sequence[int] | NDArray[np.int64], vectors: NDArray[np.float32]) -> None:
        if len(ids):
            self.index.add_with_ids(vectors, np.asarray(ids, dtype=np.int64))

    def remove(self, ids: Iterable[int]) -> None:
        """Mark ids dead; their vectors are no longer searched."""
        before = len(self.dead)
        self.dead.update(int(i) for i in ids)
        if len(self.dead) != before:
            self._params = None

    def keep_only(self, live: NDArray[np.int64]) -> None:
        """Mark dead every id not in `live`."""
        self.remove(np.setdiff1d(self.ids(), live, assume_unique=True).tolist())

    def compact(self) -> int:
        """Drop the dead vectors (one pass over the whole index); returns how many."""
        if not self.dead:
            return 0
        dropped = len(self.dead)
        self.index.remove_ids(np.fromiter(self.dead, dtype=np.int64, count=dropped))  # type: ignore[arg-type]
        self.dead.clear()
        self._params = None
        return dropped

    def search(self, vector: NDArray[np.float32], k: int, allowed: NDArray[np.int64] | None = None
               ) -> list[tuple[int, float]]:  # fmt: skip
        """The k best (id, score) among the live vectors, or among `allowed` ids only (live
        ones, chosen by the caller): the selection is applied inside FAISS."""
        if allowed is not None:
            k = min(k, len(allowed))
            if k <= 0:
                return []
            faiss: Any = self._faiss
            selector = faiss.IDSelectorBatch(np.ascontiguousarray(allowed, dtype=np.int64))
            params = faiss.SearchParameters(sel=selector)
            scores, ids = self.index.search(vector.reshape(1, -1), k, params=params)
        else:
            k = min(k, len(self))
            if k <= 0:
                return []
            scores, ids = self.index.search(vector.reshape(1, -1), k, params=self._search_params())
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]

    def reconstruct(self, chunk_id: int) -> NDArray[np.float32]:
        return np.asarray(self.index.reconstruct(int(chunk_id)), dtype=np.float32)

    def save(self, path: Path) -> None:
        """Write to a temporary file, flush it to disk, rename it into place."""
        tmp = path.with_suffix(".tmp")
        self._faiss.write_index(self.index, str(tmp))
        fsync(tmp)
        os.replace(tmp, path)

    def _search_params(self) -> Any:
        if not self.dead:
            return None
        if self._params is None:
            faiss = self._faiss
            batch = faiss.IDSelectorBatch(np.fromiter(self.dead, dtype=np.int64, count=len(self.dead)))
            others = faiss.IDSelectorNot(batch)
            # SWIG objects that point at each other do not own each other: keep all three.
            self._params = (faiss.SearchParameters(sel=others), others, batch)
        return self._params[0]


def fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
