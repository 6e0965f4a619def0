"""FAISS vectors by chunk id, in memory: exact search for small indexes, IVF for large ones.

The float vectors are stored once, in SQLite (`rag.store.local.chunks`); this is the search
structure built from them. Small indexes are an `IndexIDMap(IndexFlatIP)` built from
SQLite when opened, never written to disk. Large ones are an `IndexIVFScalarQuantizer`
(inverted lists over k-means centroids, each vector kept as 8 bits per dimension, 384
bytes at 384 dimensions plus its 8-byte id), searched in `nprobe` lists only; the store
writes its trained lists to a file so that opening does not encode every vector again.

FAISS removes a vector by rewriting its list (flat: the whole index), so `remove` only
marks ids dead (left out inside FAISS by an id selector, so a search still returns k hits)
and `compact` drops them all in one pass, once they are a good part of the index.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from numpy.typing import NDArray

DEFAULT_NPROBE = 32


def ivf_lists(count: int) -> int:
    """How many inverted lists an IVF index of `count` vectors gets: about sqrt(count),
    so a list holds about as many vectors as there are lists."""
    return max(16, min(65536, int(math.sqrt(max(count, 1)))))


class FaissVectors:
    """Vectors by integer id: `IndexIDMap(IndexFlatIP)` (exact) or an IVF index with 8-bit
    scalar quantization (approximate, scores and order to be refined by the caller)."""

    def __init__(self, dimension: int, index: Any = None, nprobe: int = DEFAULT_NPROBE) -> None:
        import faiss

        self._faiss = faiss
        self.dimension = dimension
        self.index = index if index is not None else faiss.IndexIDMap(faiss.IndexFlatIP(dimension))
        self.ivf: Any = faiss.try_extract_index_ivf(self.index)
        self.nprobe = nprobe
        self.dead: set[int] = set()
        self._exclude: tuple[Any, ...] | None = None  # selector leaving out `dead`, and what it holds

    @classmethod
    def trained(
        cls, dimension: int, sample: NDArray[np.float32], lists: int, nprobe: int = DEFAULT_NPROBE
    ) -> FaissVectors:
        """An empty IVF index whose centroids and quantizer ranges are learnt from `sample`."""
        import faiss

        index = faiss.index_factory(dimension, f"IVF{lists},SQ8", faiss.METRIC_INNER_PRODUCT)
        index.train(np.ascontiguousarray(sample, dtype=np.float32))
        return cls(dimension, index, nprobe)

    @classmethod
    def load(cls, path: Path, dimension: int, nprobe: int = DEFAULT_NPROBE) -> FaissVectors:
        import faiss

        return cls(dimension, faiss.read_index(str(path)), nprobe)

    @property
    def is_ivf(self) -> bool:
        return self.ivf is not None

    @property
    def lists(self) -> int:
        """Inverted lists (0 for an exact index)."""
        return int(self.ivf.nlist) if self.ivf is not None else 0

    def __len__(self) -> int:
        """Live vectors: the ones a search can return."""
        return self.total - len(self.dead)

    @property
    def total(self) -> int:
        """Vectors held, dead ones included."""
        return int(self.index.ntotal)

    def ids(self) -> NDArray[np.int64]:
        """Every id held, dead ones included."""
        faiss = self._faiss
        if self.ivf is None:
            return np.asarray(faiss.vector_to_array(self.index.id_map), dtype=np.int64)
        lists = self.ivf.invlists
        parts = [
            faiss.rev_swig_ptr(lists.get_ids(n), lists.list_size(n)).copy()
            for n in range(self.ivf.nlist)
            if lists.list_size(n)
        ]
        return np.concatenate(parts).astype(np.int64) if parts else np.empty(0, dtype=np.int64)

    def add(self, ids: Sequence[int] | NDArray[np.int64], vectors: NDArray[np.float32]) -> None:
        if len(ids):
            self.index.add_with_ids(
                np.ascontiguousarray(vectors, dtype=np.float32), np.asarray(ids, dtype=np.int64)
            )

    def remove(self, ids: Iterable[int]) -> None:
        """Mark ids dead; their vectors are no longer searched."""
        before = len(self.dead)
        self.dead.update(int(i) for i in ids)
        if len(self.dead) != before:
            self._exclude = None

    def keep_only(self, live: NDArray[np.int64]) -> None:
        """Mark dead every id not in `live`."""
        self.remove(np.setdiff1d(self.ids(), live).tolist())

    def compact(self) -> int:
        """Drop the dead vectors (one pass over the whole index); returns how many."""
        if not self.dead:
            return 0
        dropped = len(self.dead)
        selector = self._faiss.IDSelectorBatch(np.fromiter(self.dead, dtype=np.int64, count=dropped))
        self.index.remove_ids(selector)
        self.dead.clear()
        self._exclude = None
        return dropped

    def search(
        self, vector: NDArray[np.float32], k: int, allowed: NDArray[np.int64] | None = None
    ) -> list[tuple[int, float]]:
        """The k best (id, score) among the live vectors, or among `allowed` ids only (live
        ones, chosen by the caller): the selection is applied inside FAISS. An IVF index
        searches `nprobe` lists, and all of them when those hold fewer than k candidates."""
        faiss: Any = self._faiss
        if allowed is not None:
            k = min(k, len(allowed))
            keep: tuple[Any, ...] = (faiss.IDSelectorBatch(np.ascontiguousarray(allowed, dtype=np.int64)),)
        else:
            k = min(k, len(self))
            keep = self._dead_selector()
        if k <= 0:
            return []
        query = np.ascontiguousarray(vector, dtype=np.float32).reshape(1, -1)
        probes = min(self.nprobe, self.lists)
        while True:
            params = self._params(keep[0] if keep else None, probes)
            scores, ids = self.index.search(query, k, params=params)
            found = [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]
            if len(found) >= k or probes >= self.lists:
                return found
            probes = min(self.lists, probes * 4)

    def save(self, path: Path) -> None:
        """Write to a temporary file, flush it to disk, rename it into place."""
        tmp = path.with_suffix(".tmp")
        self._faiss.write_index(self.index, str(tmp))
        fsync(tmp)
        os.replace(tmp, path)

    def _params(self, selector: Any, probes: int) -> Any:
        faiss = self._faiss
        if self.ivf is not None:
            params = faiss.SearchParametersIVF(nprobe=max(1, probes))
            if selector is not None:
                params.sel = selector
            return params
        return None if selector is None else faiss.SearchParameters(sel=selector)

    def _dead_selector(self) -> tuple[Any, ...]:
        """(selector, what it points at) leaving out the dead ids, or () when none are."""
        if not self.dead:
            return ()
        if self._exclude is None:
            faiss = self._faiss
            batch = faiss.IDSelectorBatch(np.fromiter(self.dead, dtype=np.int64, count=len(self.dead)))
            # SWIG objects that point at each other do not own each other: keep both.
            self._exclude = (faiss.IDSelectorNot(batch), batch)
        return self._exclude


def fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
