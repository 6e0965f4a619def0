"""The local store: one folder per index, SQLite for chunks and vectors, FAISS to search.

    indexes/<name>/manifest.json          embedder, dimension, chunking, format, identity
    indexes/<name>/store.sqlite           documents and chunks (text, metadata, vector)
    indexes/<name>/vectors-<gen>.faiss    large indexes only: the IVF lists as of <gen>

SQLite is the source of truth and holds each vector once; each document is replaced in one
transaction. A commit marks the current generation committed in SQLite. Readers search
the committed generation only (see `rag.store.local.chunks`), inside one SQLite read
transaction, so a reader never finds a document missing while it is being replaced, and a
process killed at any moment leaves the last committed state intact for readers; the next
writer takes up the uncommitted rows.

The FAISS search structure is built in memory from SQLite: exact (flat) while the index
holds fewer than `store.ivf_threshold` vectors, so a commit writes no vectors at all. From
that size on, a commit trains an IVF index with 8-bit scalar quantization (about 400
bytes per vector in memory) and writes its lists to `vectors-<gen>.faiss`; readers load
that file and add the rows committed after it from SQLite. The file is written again only
when those rows (or the dead vectors) reach a share of it (`store.ivf_rewrite_share`), and
the index is trained again when it has grown `store.ivf_retrain_growth` times. A writer
builds the search structure only if it searches: ingesting holds no index in memory.
IVF results are re-scored exactly with the stored vectors. The IVF files are trained and
written by `rag.store.local.ivf_files`; the lexical side, BM25 over SQLite's FTS5, is
`rag.store.local.lexical`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from rag.config import StoreSettings
from rag.errors import IndexMismatchError, RagError
from rag.store.base import Batches, FileRecord, Filters, Store, not_found
from rag.store.local.chunks import ChunkDB
from rag.store.local.ivf_files import IvfFiles
from rag.store.local.lexical import LocalLexical, query_terms
from rag.store.local.vectors import FaissVectors
from rag.store.manifest import Manifest
from rag.types import Chunk, Hit

if TYPE_CHECKING:
    from numpy.typing import NDArray

logger = logging.getLogger(__name__)

STORE = "store.sqlite"
COMPACT_DEAD_FRACTION = 0.2  # dead vectors are dropped once they are this much of the index


class LocalStore(Store):
    """One index folder; a writer (one at a time, under the catalog's lock) or a reader."""

    def __init__(
        self,
        folder: Path,
        manifest: Manifest,
        *,
        readonly: bool = False,
        settings: StoreSettings | None = None,
    ) -> None:
        self.folder = folder
        self.name = folder.name
        self.manifest = manifest
        self.readonly = readonly
        self.settings = settings if settings is not None else StoreSettings.model_validate({})
        self.compact_dead_fraction = COMPACT_DEAD_FRACTION
        self._lock = threading.RLock()
        # The folder this store reads: a deletion renames it away, a new index of the same
        # name is another folder (see `_reading`).
        self._folder_id = _folder_id(folder)
        self.db = ChunkDB(folder / STORE, readonly=readonly, context=manifest.chunk_context)
        self.lexical = LocalLexical(self.db)
        self.ivf_files = IvfFiles(self.db, folder, manifest.dimension, self.name)
        stored_id = self.db.meta("index_id")
        if stored_id is None and not readonly:
            self.db.set_meta("index_id", manifest.id)
        elif stored_id is not None and stored_id != manifest.id:
            self.db.close()
            raise IndexMismatchError(f"index {self.name!r}: store and manifest disagree; re-ingest it")
        self._vectors: FaissVectors | None = None  # built when first searched
        self._loaded: int | None = None  # (readers) the committed generation `_vectors` shows
        self._base: int | None = None  # the IVF file `_vectors` started from
        if readonly:
            with self.db.transaction(write=False):
                self.db.view = self.db.committed

    # -- reading -----------------------------------------------------------------

    @property
    def generation(self) -> int:
        with self._reading():
            return self.db.committed

    @property
    def vectors(self) -> FaissVectors:
        """The search structure of what this store sees, built from SQLite when first asked."""
        with self._reading():
            if self.readonly and self._vectors is None:
                with self.db.transaction(write=False):
                    self._follow(vectors=True)
            elif self._vectors is None:
                base = self.db.base
                self._vectors = self._build(None if base is None else base[0])
            assert self._vectors is not None
            return self._vectors

    def search(self, vector: NDArray[np.float32], k: int, filters: Filters | None = None) -> list[Hit]:
        with self._reading():
            if self.readonly:
                with self.db.transaction(write=False):  # one snapshot: vectors and rows agree
                    self._follow(vectors=True)
                    pairs, found = self._dense(vector, k, filters)
            else:
                pairs, found = self._dense(vector, k, filters)
        return [Hit(i, found[i], s, {"dense": s}) for i, s in pairs if i in found]

    def _dense(
        self, vector: NDArray[np.float32], k: int, filters: Filters | None
    ) -> tuple[list[tuple[int, float]], dict[int, Chunk]]:
        allowed = self.db.filtered_ids(filters) if filters else None
        vectors = self.vectors
        if not vectors.is_ivf:
            pairs = vectors.search(vector, k, allowed)
        else:  # approximate: more candidates than asked, ranked again with the stored vectors
            candidates = [i for i, _ in vectors.search(vector, 2 * k + 10, allowed)]
            exact = self.db.vectors_of(candidates, self.manifest.dimension) @ vector
            order = [n for n in np.argsort(-exact, kind="stable") if not np.isnan(exact[n])]
            pairs = [(candidates[n], float(exact[n])) for n in order[:k]]
        return pairs, self.db.chunks([i for i, _ in pairs])

    def search_text(self, query: str, k: int, filters: Filters | None = None) -> list[Hit]:
        terms = query_terms(query)
        if not terms:
            return []
        with self._reading():
            if self.readonly:
                with self.db.transaction(write=False):
                    self._follow(vectors=False)
                    matches = self.lexical.match(terms, k, filters)
            else:
                matches = self.lexical.match(terms, k, filters)
        return matches.hits()

    def refresh(self) -> None:
        """Follow the last commit now (searches do it by themselves)."""
        if self.readonly:
            with self._reading(), self.db.transaction(write=False):
                self._follow(vectors=True)

    def vector(self, chunk_id: int) -> NDArray[np.float32]:
        with self._reading():
            found = self.db.vectors_of([chunk_id], self.manifest.dimension)[0]
        if np.isnan(found[0]):
            raise KeyError(f"no chunk {chunk_id} in index {self.name!r}")
        return np.asarray(found, dtype=np.float32)

    def chunks(self, ids: Sequence[int]) -> dict[int, Chunk]:
        with self._reading():
            return self.db.chunks(ids)

    def all_chunks(self) -> Iterator[tuple[int, Chunk]]:
        with self._reading():
            rows = list(self.db.all_chunks())
        yield from rows

    def files(self) -> dict[str, FileRecord]:
        with self._reading():
            return self.db.files()

    def chunk_count(self) -> int:
        with self._reading():
            return self.db.chunk_count()

    def last_ingest(self) -> float | None:
        with self._reading():
            return self.db.last_ingest()

    def size_on_disk(self) -> int:
        with self._reading():
            return sum(p.stat().st_size for p in self.folder.iterdir() if p.is_file())

    def __len__(self) -> int:
        return len(self.vectors)

    # -- writing -----------------------------------------------------------------

    def replace_file(self, record: FileRecord, batches: Batches) -> int:
        self._check_writable()
        added: list[NDArray[np.int64]] = []
        with self._lock:
            vectors = self._vectors  # None until searched: then there is nothing to update
            try:
                with self.db.transaction():
                    generation = self.db.bump()
                    old = self.db.delete_file(record.path, generation)
                    file_id = self.db.insert_file(record, generation)
                    for chunks, batch in batches:
                        matrix = np.asarray(batch, dtype=np.float32).reshape(-1, self.manifest.dimension)
                        ids = self.db.insert_chunks(file_id, chunks, matrix, generation)
                        if vectors is not None:
                            vectors.add(ids, matrix)
                        added.append(ids)
            except BaseException:
                # SQLite rolled back and will hand out these ids again: really remove them.
                if added and vectors is not None:
                    vectors.remove(np.concatenate(added).tolist())
                    vectors.compact()
                raise
            if vectors is not None:
                vectors.remove(old)
        return sum(len(a) for a in added)

    def remove_file(self, path: str) -> int:
        self._check_writable()
        with self._lock:
            with self.db.transaction():
                old = self.db.delete_file(path, self.db.bump())
            if self._vectors is not None:
                self._vectors.remove(old)
        return len(old)

    def touch_file(self, record: FileRecord) -> None:
        self._check_writable()
        with self._lock, self.db.transaction():
            self.db.touch_file(record)

    def commit(self) -> None:
        self._check_writable()
        with self._lock:
            generation, base = self.db.generation, self.db.base
            lost = base is not None and not self.ivf_files.path(base[0]).exists()
            if generation != self.db.committed or lost:
                base = self._next_base(generation, None if lost else base)
                with self.db.transaction():
                    self.db.publish(generation, base)
                if self._vectors is not None:
                    self._compact(self._vectors)
            keep = None if base is None else self.ivf_files.path(base[0])
            for old in self.folder.glob("vectors-*.faiss"):
                if old != keep:
                    old.unlink(missing_ok=True)

    def close(self) -> None:
        with self._lock:
            self.db.close()

    # -- internals ---------------------------------------------------------------

    @contextlib.contextmanager
    def _reading(self) -> Iterator[None]:
        """Hold the store to read it; IndexNotFoundError once its index was deleted (or
        deleted and created again), before the read and when the read fails: a reader that
        still held the index, or whose store another reader closed as stale, is told the
        index is gone, never what its vanished files made SQLite or the disk say."""
        with self._lock:
            self.check_present()
            try:
                yield
            except (sqlite3.Error, OSError):
                self.check_present()
                raise

    def check_present(self) -> None:
        """IndexNotFoundError unless this store's folder is still the index of its name."""
        try:
            present = _folder_id(self.folder) == self._folder_id
        except OSError:
            present = False
        if not present:
            raise not_found(self.name, deleted=True)

    def _next_base(self, generation: int, base: tuple[int, int] | None) -> tuple[int, int] | None:
        """(Writer, at commit) the IVF file readers start from once `generation` is
        committed: none (exact search), the current one, or a new one written now."""
        live, s = self.db.chunk_count(), self.settings
        if live < s.ivf_threshold and (base is None or live < s.ivf_threshold // 2):
            if base is not None:
                self._vectors = None  # back to exact search: rebuilt when next searched
            return None
        if base is None or live >= s.ivf_retrain_growth * base[1]:
            return self._train(generation, live)
        held = self._vectors
        dead = len(held.dead) if held is not None and held.is_ivf else 0
        if self.db.count_newer(base[0]) + dead <= s.ivf_rewrite_share * live:
            return base
        trained = self.ivf_files.trained(base[0])
        if trained is None:  # unreadable, or not written by `ivf.write`
            return self._train(generation, live)
        self.ivf_files.write(trained, generation, "rewritten")
        if held is not None and held.is_ivf:  # it holds what the file holds, dead ones apart
            held.compact()
            self._base = generation
        return generation, base[1]

    def _train(self, generation: int, live: int) -> tuple[int, int]:
        """Train an IVF index on a sample of the live vectors, write it with all of them
        (`rag.store.local.ivf_files`)."""
        self.ivf_files.write(self.ivf_files.train(live), generation, "written")
        if self._vectors is not None:  # a writer that searches: it searches the new lists
            self._vectors = FaissVectors.load(
                self.ivf_files.path(generation), self.manifest.dimension, self.settings.ivf_nprobe
            )
            self._vectors.keep_only(self.db.chunk_ids())
            self._base = generation
        return generation, live

    def _follow(self, *, vectors: bool) -> None:
        """(Reader, inside a read transaction) see the last commit; with `vectors`, bring
        the search structure to it too: the rows committed since, or a new IVF file."""
        committed = self.db.committed
        self.db.view = committed
        if not vectors or (self._vectors is not None and self._loaded == committed):
            return
        base = self.db.base
        start = None if base is None else base[0]
        if self._vectors is not None and self._loaded is not None and start == self._base:
            for ids, matrix in self.db.vectors(self.manifest.dimension, newer_than=self._loaded):
                self._vectors.add(ids, matrix)
            self._vectors.keep_only(self.db.chunk_ids())
            self._compact(self._vectors)
        else:
            self._vectors = self._build(start)
        self._loaded = committed
        logger.info(
            "vectors loaded index=%s generation=%d chunks=%d", self.name, committed, len(self._vectors)
        )

    def _build(self, base: int | None) -> FaissVectors:
        """The vectors of the current view: the IVF file of generation `base` and the rows
        added after it, or (exact) all the rows."""
        dimension, vectors, newer = self.manifest.dimension, None, base
        if base is not None:
            path = self.ivf_files.path(base)
            try:
                vectors = FaissVectors.load(path, dimension, self.settings.ivf_nprobe)
            except RuntimeError:  # deleted or damaged: exact search until a writer commits
                logger.warning("unreadable vectors file, searching exactly path=%s", path)
        if vectors is None:
            vectors, newer, base = FaissVectors(dimension), None, None
        for ids, matrix in self.db.vectors(dimension, newer_than=newer):
            vectors.add(ids, matrix)
        vectors.keep_only(self.db.chunk_ids())
        self._base = base
        return vectors

    def _compact(self, vectors: FaissVectors) -> None:
        if len(vectors.dead) > self.compact_dead_fraction * vectors.total:
            dropped = vectors.compact()
            logger.info("vectors compacted index=%s dropped=%d", self.name, dropped)

    def _check_writable(self) -> None:
        if self.readonly:
            raise RagError(f"index {self.name!r} is open read-only")


def _folder_id(folder: Path) -> tuple[int, int]:
    found = os.stat(folder)
    return found.st_dev, found.st_ino
