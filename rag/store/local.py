"""The local store: one folder per index, SQLite for chunks and FAISS for vectors.

    indexes/<name>/manifest.json          embedder, dimension, chunking, format, identity
    indexes/<name>/store.sqlite           documents and chunks (text, metadata, vector)
    indexes/<name>/vectors-<gen>.faiss    the vectors of committed generation <gen>

SQLite is the source of truth; each document is replaced in one transaction. A commit
writes the FAISS file of the current generation (temporary file, fsync, rename), then
marks that generation committed in SQLite. Readers search the committed generation only:
its FAISS file and the rows it can see (see `rag.store.chunks`), inside one SQLite read
transaction, so a reader never finds a document missing while it is being replaced, and a
process killed at any moment leaves the last committed state intact for readers. The
next writer takes up where the killed one stopped: committed vectors from the file, the
uncommitted rows' vectors from SQLite.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from rag.analysis import analyze, detect_language
from rag.errors import IndexMismatchError, RagError
from rag.store.base import Batches, FileRecord, Filters, Store
from rag.store.chunks import ChunkDB
from rag.store.manifest import Manifest
from rag.store.vectors import FaissVectors
from rag.types import Chunk, Hit

if TYPE_CHECKING:
    from numpy.typing import NDArray

logger = logging.getLogger(__name__)

STORE = "store.sqlite"
COMPACT_DEAD_FRACTION = 0.2  # dead vectors are dropped once they are this much of the index


def _idf(terms: list[str], total: int, frequencies: dict[str, int]) -> dict[str, float]:
    """BM25's idf of each query term (terms no chunk has weigh as much as the rarest)."""
    return {t: math.log(1 + (total - frequencies.get(t, 0) + 0.5) / (frequencies.get(t, 0) + 0.5))
            for t in set(terms)}  # fmt: skip


COMMON_TERM_SHARE = 0.25  # a term in more chunks than this share is left out of the match
COMMON_TERM_MIN_CHUNKS = 2000  # ... in an index this large (smaller ones are quick anyway)


def _searched_terms(terms: list[str], total: int, frequencies: dict[str, int]) -> list[str]:
    """The terms the BM25 match runs on: all but the very common ones, whose low idf adds
    little to a score while their long posting lists cost most of the time, in a large
    index (the two rarest are always kept). Coverage still counts every term."""
    unique = sorted(set(terms), key=lambda t: frequencies.get(t, 0))
    if total < COMMON_TERM_MIN_CHUNKS:
        return unique
    kept = [t for t in unique if frequencies.get(t, 0) <= COMMON_TERM_SHARE * total]
    return kept if len(kept) >= 2 else unique[:2]


def vectors_file(folder: Path, generation: int) -> Path:
    return folder / f"vectors-{generation}.faiss"


class LocalStore(Store):
    """One index folder; a writer (one at a time, under the catalog's lock) or a reader."""

    def __init__(self, folder: Path, manifest: Manifest, *, readonly: bool = False) -> None:
        self.folder = folder
        self.name = folder.name
        self.manifest = manifest
        self.readonly = readonly
        self.compact_dead_fraction = COMPACT_DEAD_FRACTION
        self._lock = threading.RLock()
        self.db = ChunkDB(folder / STORE, readonly=readonly, context=manifest.chunk_context)
        stored_id = self.db.meta("index_id")
        if stored_id is None and not readonly:
            self.db.set_meta("index_id", manifest.id)
        elif stored_id is not None and stored_id != manifest.id:
            self.db.close()
            raise IndexMismatchError(f"index {self.name!r}: store and manifest disagree; re-ingest it")
        self._loaded: int | None = None  # generation the vectors are of (readers)
        if readonly:
            with self.db.transaction(write=False):
                self.vectors = self._reader_vectors(self.db.committed)
        else:
            self.vectors = self._writer_vectors()

    # -- reading -----------------------------------------------------------------

    @property
    def generation(self) -> int:
        with self._lock:
            return self.db.committed

    def search(self, vector: NDArray[np.float32], k: int, filters: Filters | None = None
               ) -> list[Hit]:  # fmt: skip
        with self._lock:
            if self.readonly:
                with self.db.transaction(write=False):  # one snapshot: vectors and rows agree
                    self._follow()
                    pairs, found = self._dense(vector, k, filters)
            else:
                pairs, found = self._dense(vector, k, filters)
        return [Hit(i, found[i], s, {"dense": s}) for i, s in pairs if i in found]

    def _dense(self, vector: NDArray[np.float32], k: int, filters: Filters | None
               ) -> tuple[list[tuple[int, float]], dict[int, Chunk]]:  # fmt: skip
        allowed = self.db.filtered_ids(filters) if filters else None
        pairs = self.vectors.search(vector, k, allowed)
        return pairs, self.db.chunks([i for i, _ in pairs])

    def search_text(self, query: str, k: int, filters: Filters | None = None) -> list[Hit]:
        lang = detect_language(query)
        terms = analyze(query, lang)
        if not terms:
            return []
        with self._lock:
            if self.readonly:
                with self.db.transaction(write=False):
                    self._follow()
                    pairs, found, stats = self._lexical(terms, k, filters)
            else:
                pairs, found, stats = self._lexical(terms, k, filters)
        weights = _idf(terms, *stats[:2])
        whole = sum(weights.values()) or 1.0
        hits = []
        for chunk_id, bm25 in pairs:
            chunk = found.get(chunk_id)
            if chunk is None:
                continue
            present = stats[2].get(chunk_id, set())
            coverage = sum(w for t, w in weights.items() if t in present) / whole
            hits.append(Hit(chunk_id, chunk, coverage, {"bm25": bm25, "coverage": coverage}))
        return hits

    def _lexical(
        self, terms: list[str], k: int, filters: Filters | None
    ) -> tuple[list[tuple[int, float]], dict[int, Chunk], tuple[int, dict[str, int], dict[int, set[str]]]]:
        total, frequencies = self.db.term_frequencies(terms)
        pairs = self.db.search_terms(_searched_terms(terms, total, frequencies), k, filters)
        ids = [i for i, _ in pairs]
        return pairs, self.db.chunks(ids), (total, frequencies, self.db.stored_terms(ids))

    def refresh(self) -> None:
        """Follow the last commit now (searches do it by themselves)."""
        if self.readonly:
            with self._lock, self.db.transaction(write=False):
                self._follow()

    def vector(self, chunk_id: int) -> NDArray[np.float32]:
        with self._lock:
            return self.vectors.reconstruct(chunk_id)

    def chunks(self, ids: Sequence[int]) -> dict[int, Chunk]:
        with self._lock:
            return self.db.chunks(ids)

    def all_chunks(self) -> Iterator[tuple[int, Chunk]]:
        with self._lock:
            rows = list(self.db.all_chunks())
        yield from rows

    def files(self) -> dict[str, FileRecord]:
        with self._lock:
            return self.db.files()

    def chunk_count(self) -> int:
        with self._lock:
            return self.db.chunk_count()

    def last_ingest(self) -> float | None:
        with self._lock:
            return self.db.last_ingest()

    def size_on_disk(self) -> int:
        return sum(p.stat().st_size for p in self.folder.iterdir() if p.is_file())

    def __len__(self) -> int:
        return len(self.vectors)

    # -- writing -----------------------------------------------------------------

    def replace_file(self, record: FileRecord, batches: Batches) -> int:
        self._check_writable()
        added: list[NDArray[np.int64]] = []
        with self._lock:
            try:
                with self.db.transaction():
                    generation = self.db.bump()
                    old = self.db.delete_file(record.path, generation)
                    file_id = self.db.insert_file(record, generation)
                    for chunks, vectors in batches:
                        vectors = np.asarray(vectors, dtype=np.float32).reshape(-1, self.manifest.dimension)
                        ids = self.db.insert_chunks(file_id, chunks, vectors, generation)
                        self.vectors.add(ids, vectors)
                        added.append(ids)
            except BaseException:
                # SQLite rolled back and will hand out these ids again: really remove them.
                if added:
                    self.vectors.remove(np.concatenate(added).tolist())
                    self.vectors.compact()
                raise
            self.vectors.remove(old)
        return sum(len(a) for a in added)

    def remove_file(self, path: str) -> int:
        self._check_writable()
        with self._lock:
            with self.db.transaction():
                old = self.db.delete_file(path, self.db.bump())
            self.vectors.remove(old)
        return len(old)

    def touch_file(self, record: FileRecord) -> None:
        self._check_writable()
        with self._lock, self.db.transaction():
            self.db.touch_file(record)

    def commit(self) -> None:
        self._check_writable()
        with self._lock:
            generation = self.db.generation
            target = vectors_file(self.folder, generation)
            if generation != self.db.committed or not target.exists():
                if len(self.vectors.dead) > self.compact_dead_fraction * self.vectors.total:
                    dropped = self.vectors.compact()
                    logger.info("vectors compacted index=%s dropped=%d", self.name, dropped)
                self.vectors.save(target)
                with self.db.transaction():
                    self.db.publish(generation)
            for old in self.folder.glob("vectors-*.faiss"):
                if old != target:
                    old.unlink(missing_ok=True)

    def close(self) -> None:
        with self._lock:
            self.db.close()

    # -- internals ---------------------------------------------------------------

    def _follow(self) -> None:
        """(Reader, inside a read transaction) load the committed vectors if they changed."""
        committed = self.db.committed
        if committed != self._loaded:
            self.vectors = self._reader_vectors(committed)

    def _reader_vectors(self, committed: int) -> FaissVectors:
        self.db.view = committed
        self._loaded = committed
        path = vectors_file(self.folder, committed)
        try:
            vectors = FaissVectors.load(path, self.manifest.dimension)
        except RuntimeError:  # missing (nothing committed yet) or unreadable: from SQLite
            vectors = FaissVectors(self.manifest.dimension)
            for ids, mat in self.db.vectors(self.manifest.dimension):
                vectors.add(ids, mat)
            return vectors
        vectors.keep_only(self.db.chunk_ids())
        logger.info("vectors loaded index=%s generation=%d chunks=%d", self.name, committed,
                    len(vectors))  # fmt: skip
        return vectors

    def _writer_vectors(self) -> FaissVectors:
        """The committed vectors, then what a killed writer added after them."""
        committed = self.db.committed
        path = vectors_file(self.folder, committed)
        newer: int | None = committed
        try:
            vectors = FaissVectors.load(path, self.manifest.dimension)
        except RuntimeError:
            if path.exists():
                logger.warning("unreadable vectors file, rebuilding path=%s", path)
            vectors, newer = FaissVectors(self.manifest.dimension), None
        for ids, mat in self.db.vectors(self.manifest.dimension, newer_than=newer):
            vectors.add(ids, mat)
        vectors.keep_only(self.db.chunk_ids())
        return vectors

    def _check_writable(self) -> None:
        if self.readonly:
            raise RagError(f"index {self.name!r} is open read-only")
