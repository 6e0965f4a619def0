"""A persistent index: one folder per index under the indexes directory.

    indexes/<name>/manifest.json          embedder, dimension, chunking, format version
    indexes/<name>/store.sqlite           files, chunks (text, metadata, vector)
    indexes/<name>/vectors-<gen>.faiss    FAISS inner-product index of generation <gen>

SQLite is the source of truth. Each document is replaced in one transaction, which
bumps the store's generation; the FAISS file is a cache of one generation, written to a
temporary file and renamed into place. A process killed at any moment leaves SQLite
at a consistent state between documents; a FAISS file that does not match the store's
generation is rebuilt from the stored vectors when the index is next opened.

Removing a document costs time in proportion to that document: its vectors are only marked
dead (the store no longer has their ids) and left out of every search. They are dropped in
one pass once they make up a good part of the index, so that pass is paid for by the
removals that made it necessary. A FAISS file may therefore hold dead vectors; whoever
opens it finds them by comparing its ids with the store's.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import sqlite3
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel

from rag.errors import IndexMismatchError, IndexNotFoundError, RagError
from rag.types import Chunk, Hit

if TYPE_CHECKING:
    from numpy.typing import NDArray

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
STORE = "store.sqlite"
COMPACT_DEAD_FRACTION = 0.2  # dead vectors are dropped once they are this much of the index

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,
    hash TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime REAL NOT NULL,
    ingested_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    file_id INTEGER NOT NULL REFERENCES files(id) ON DELETE CASCADE,
    ordinal INTEGER NOT NULL,
    text TEXT NOT NULL,
    page_start INTEGER,
    page_end INTEGER,
    heading TEXT NOT NULL,
    vector BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_file ON chunks(file_id);
INSERT OR IGNORE INTO meta (key, value) VALUES ('generation', '0');
"""


class Manifest(BaseModel):
    """What an index was built with; opening it with something else is refused."""

    format_version: int = FORMAT_VERSION
    embedder: str
    dimension: int
    chunk_size: int
    chunk_overlap: int
    encoding: str
    created_at: float


@dataclass(frozen=True)
class FileRecord:
    path: str
    hash: str
    size: int
    mtime: float
    ingested_at: float


class VectorIndex(ABC):
    """Vectors by integer id, searched by inner product."""

    @abstractmethod
    def search(self, vector: NDArray[np.float32], k: int) -> list[tuple[int, float]]:
        """The k best (id, score) pairs, best first."""


class FaissIndex(VectorIndex):
    """FAISS flat inner-product index with explicit ids (exact search).

    `remove` only marks ids dead: FAISS removes from a flat index by rewriting all of it,
    so dead vectors stay, never searched, until `compact` drops them all in one pass.
    """

    def __init__(self, dimension: int, index: Any = None) -> None:
        import faiss

        self._faiss = faiss
        self.dimension = dimension
        self.index = index if index is not None else faiss.IndexIDMap2(faiss.IndexFlatIP(dimension))
        self.dead: set[int] = set()
        self._params: tuple[Any, ...] | None = None  # search parameters leaving out `dead`

    @classmethod
    def load(cls, path: Path, dimension: int) -> FaissIndex:
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

    def compact(self) -> int:
        """Drop the dead vectors (one pass over the whole index); returns how many."""
        if not self.dead:
            return 0
        dropped = len(self.dead)
        self.index.remove_ids(np.fromiter(self.dead, dtype=np.int64, count=dropped))  # type: ignore[arg-type]
        self.dead.clear()
        self._params = None
        return dropped

    def search(self, vector: NDArray[np.float32], k: int) -> list[tuple[int, float]]:
        k = min(k, len(self))
        if k <= 0:
            return []
        scores, ids = self.index.search(vector.reshape(1, -1), k, params=self._search_params())
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]

    def save(self, path: Path) -> None:
        tmp = path.with_suffix(".tmp")
        self._faiss.write_index(self.index, str(tmp))
        _fsync(tmp)
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


class Index:
    """One named index: its manifest, its SQLite store and its FAISS vectors."""

    def __init__(self, folder: Path, manifest: Manifest, *, readonly: bool = False) -> None:
        self.folder = folder
        self.name = folder.name
        self.manifest = manifest
        self.readonly = readonly
        self._lock = threading.RLock()
        self._db = _connect(folder / STORE, readonly)
        self.compact_dead_fraction = COMPACT_DEAD_FRACTION
        self.vectors = self._load_vectors()

    # -- opening -----------------------------------------------------------------

    @classmethod
    def create(cls, folder: Path, manifest: Manifest) -> Index:
        folder.mkdir(parents=True, exist_ok=True)
        _write_json(folder / MANIFEST, manifest.model_dump())
        return cls(folder, manifest)

    @classmethod
    def open(
        cls,
        folder: Path,
        *,
        embedder: str | None = None,
        dimension: int | None = None,
        readonly: bool = False,
    ) -> Index:
        manifest = read_manifest(folder)
        if embedder is not None and (manifest.embedder, manifest.dimension) != (
            embedder,
            dimension,
        ):
            raise IndexMismatchError(
                f"index {folder.name!r} was built with embedder {manifest.embedder!r} "
                f"({manifest.dimension} dimensions), not {embedder!r} ({dimension}); "
                "re-ingest into a new index or set embedder.model back"
            )
        return cls(folder, manifest, readonly=readonly)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- reading -----------------------------------------------------------------

    @property
    def generation(self) -> int:
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key='generation'").fetchone()
        return int(row[0])

    def files(self) -> dict[str, FileRecord]:
        with self._lock:
            rows = self._db.execute(
                "SELECT path, hash, size, mtime, ingested_at FROM files"
            ).fetchall()
        return {r[0]: FileRecord(*r) for r in rows}

    def chunk_count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0])

    def chunks(self, ids: Sequence[int]) -> dict[int, Chunk]:
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        with self._lock:
            rows = self._db.execute(
                "SELECT c.id, c.text, f.path, c.ordinal, c.page_start, c.page_end, c.heading "
                f"FROM chunks c JOIN files f ON f.id = c.file_id WHERE c.id IN ({marks})",
                list(ids),
            ).fetchall()
        return {r[0]: Chunk(r[1], r[2], r[3], r[4], r[5], r[6]) for r in rows}

    def all_chunks(self) -> Iterator[tuple[int, Chunk]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT c.id, c.text, f.path, c.ordinal, c.page_start, c.page_end, c.heading "
                "FROM chunks c JOIN files f ON f.id = c.file_id ORDER BY f.path, c.ordinal"
            ).fetchall()
        for r in rows:
            yield r[0], Chunk(r[1], r[2], r[3], r[4], r[5], r[6])

    def search(self, vector: NDArray[np.float32], k: int) -> list[Hit]:
        """The k chunks most similar to `vector`, best first."""
        with self._lock:
            pairs = self.vectors.search(vector, k)
            found = self.chunks([i for i, _ in pairs])
        return [Hit(i, found[i], s) for i, s in pairs if i in found]

    def vector(self, chunk_id: int) -> NDArray[np.float32]:
        with self._lock:
            return np.asarray(self.vectors.index.reconstruct(int(chunk_id)), dtype=np.float32)

    def size_on_disk(self) -> int:
        return sum(p.stat().st_size for p in self.folder.iterdir() if p.is_file())

    def last_ingest(self) -> float | None:
        with self._lock:
            row = self._db.execute("SELECT MAX(ingested_at) FROM files").fetchone()
        return row[0]

    # -- writing -----------------------------------------------------------------

    def replace_file(
        self,
        record: FileRecord,
        batches: Iterable[tuple[Sequence[Chunk], NDArray[np.float32]]],
    ) -> int:
        """Put one document's chunks in place of its old ones, atomically.

        `batches` may be a generator (a huge document is embedded while it is written);
        if it raises, nothing of the document changes. Returns the number of chunks.
        Each batch goes to the vectors as it is written, so a document's vectors are never
        all held twice.
        """
        self._check_writable()
        added: list[NDArray[np.int64]] = []
        with self._lock:
            try:
                with self._transaction() as db:
                    old = self._delete_file(db, record.path)
                    file_id = self._insert_file(db, record)
                    for chunks, vectors in batches:
                        added.append(self._insert_chunks(db, file_id, chunks, vectors))
                    self._bump(db)
            except BaseException:
                # The store rolled back and will hand out these ids again: really remove them.
                self._drop(added)
                raise
            self.vectors.remove(old)
        return sum(len(a) for a in added)

    def remove_file(self, path: str) -> int:
        """Forget one document; returns how many chunks it had."""
        self._check_writable()
        with self._lock:
            with self._transaction() as db:
                old = self._delete_file(db, path)
                self._bump(db)
            self.vectors.remove(old)
        return len(old)

    def touch_file(self, record: FileRecord) -> None:
        """Record a new mtime for a file whose content did not change."""
        self._check_writable()
        with self._lock, self._transaction() as db:
            db.execute("UPDATE files SET mtime=? WHERE path=?", (record.mtime, record.path))

    def commit(self) -> None:
        """Write the FAISS file of the current generation and drop older ones."""
        self._check_writable()
        with self._lock:
            gen = self.generation
            target = self.folder / _vectors_name(gen)
            if not target.exists():
                if len(self.vectors.dead) > self.compact_dead_fraction * self.vectors.total:
                    dropped = self.vectors.compact()
                    logger.info("vectors compacted index=%s dropped=%d", self.name, dropped)
                self.vectors.save(target)
            for old in self.folder.glob("vectors-*.faiss"):
                if old != target:
                    old.unlink(missing_ok=True)

    # -- internals ---------------------------------------------------------------

    def _load_vectors(self) -> FaissIndex:
        gen = self.generation
        path = self.folder / _vectors_name(gen)
        if self.readonly and not path.exists():
            # A reader takes the last committed vectors while an ingest is under way;
            # chunk ids are never reused, so every id it finds still means one chunk.
            committed = latest_vectors(self.folder)
            path = committed if committed is not None else path
        if path.exists():
            try:
                loaded = FaissIndex.load(path, self.manifest.dimension)
            except RuntimeError:
                logger.warning("unreadable vectors file, rebuilding path=%s", path)
            else:
                loaded.remove(np.setdiff1d(loaded.ids(), self._chunk_ids(), assume_unique=True))
                return loaded
        vectors = FaissIndex(self.manifest.dimension)
        with self._lock:
            cur = self._db.execute("SELECT id, vector FROM chunks ORDER BY id")
            while rows := cur.fetchmany(4096):
                ids = [r[0] for r in rows]
                mat = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32)
                vectors.add(ids, mat.reshape(len(rows), self.manifest.dimension))
        logger.info("vectors rebuilt from store index=%s chunks=%d", self.name, len(vectors))
        if not self.readonly:
            vectors.save(path)
        return vectors

    def _insert_file(self, db: sqlite3.Connection, record: FileRecord) -> int:
        cur = db.execute(
            "INSERT INTO files (path, hash, size, mtime, ingested_at) VALUES (?,?,?,?,?)",
            (record.path, record.hash, record.size, record.mtime, record.ingested_at),
        )
        return int(cur.lastrowid or 0)

    def _insert_chunks(
        self, db: sqlite3.Connection, file_id: int, chunks: Sequence[Chunk], vectors: NDArray[np.float32]
    ) -> NDArray[np.int64]:
        """Store one batch of a document's chunks and add their vectors; returns their ids."""
        vectors = np.asarray(vectors, dtype=np.float32).reshape(-1, self.manifest.dimension)
        ids = np.empty(len(chunks), dtype=np.int64)
        for n, (chunk, vector) in enumerate(zip(chunks, vectors, strict=True)):
            cur = db.execute(
                "INSERT INTO chunks (file_id, ordinal, text, page_start, page_end,"
                " heading, vector) VALUES (?,?,?,?,?,?,?)",
                (file_id, chunk.ordinal, chunk.text, chunk.page_start, chunk.page_end,
                 chunk.heading, vector.tobytes()),
            )  # fmt: skip
            ids[n] = int(cur.lastrowid or 0)
        self.vectors.add(ids, vectors)
        return ids

    def _drop(self, added: list[NDArray[np.int64]]) -> None:
        if added:
            self.vectors.remove(np.concatenate(added).tolist())
            self.vectors.compact()

    def _chunk_ids(self) -> NDArray[np.int64]:
        with self._lock:
            rows = self._db.execute("SELECT id FROM chunks").fetchall()
        return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))

    def _delete_file(self, db: sqlite3.Connection, path: str) -> list[int]:
        row = db.execute("SELECT id FROM files WHERE path=?", (path,)).fetchone()
        if row is None:
            return []
        ids = [r[0] for r in db.execute("SELECT id FROM chunks WHERE file_id=?", (row[0],))]
        db.execute("DELETE FROM chunks WHERE file_id=?", (row[0],))
        db.execute("DELETE FROM files WHERE id=?", (row[0],))
        return ids

    @staticmethod
    def _bump(db: sqlite3.Connection) -> None:
        db.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key='generation'")

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _check_writable(self) -> None:
        if self.readonly:
            raise RagError(f"index {self.name!r} is open read-only")


class IndexCatalog:
    """The indexes directory: list, create, open and delete named indexes."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def folder(self, name: str) -> Path:
        if not name or "/" in name or name.startswith(".") or "\0" in name:
            raise IndexNotFoundError(f"invalid index name {name!r}")
        return self.root / name

    def names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if (p / MANIFEST).is_file())

    def exists(self, name: str) -> bool:
        return (self.folder(name) / MANIFEST).is_file()

    def open(self, name: str, **kwargs: Any) -> Index:
        if not self.exists(name):
            known = ", ".join(self.names()) or "none yet"
            raise IndexNotFoundError(
                f"no index named {name!r} in {self.root} (indexes: {known}); "
                "create it with `rag ingest PATH --index NAME`"
            )
        return Index.open(self.folder(name), **kwargs)

    def delete(self, name: str) -> None:
        if not self.exists(name):
            raise IndexNotFoundError(f"no index named {name!r} in {self.root}")
        shutil.rmtree(self.folder(name))


def read_manifest(folder: Path) -> Manifest:
    path = folder / MANIFEST
    if not path.is_file():
        raise IndexNotFoundError(f"no index at {folder}")
    data = json.loads(path.read_text())
    version = data.get("format_version")
    if version != FORMAT_VERSION:
        raise IndexMismatchError(
            f"index {folder.name!r} has format version {version}, this version reads "
            f"{FORMAT_VERSION}; re-ingest it"
        )
    return Manifest.model_validate(data)


def latest_vectors(folder: Path) -> Path | None:
    """The most recently committed vectors file of an index folder."""
    found = [(int(p.stem.split("-", 1)[1]), p) for p in folder.glob("vectors-*.faiss")
             if p.stem.split("-", 1)[1].isdigit()]
    return max(found)[1] if found else None


def _vectors_name(generation: int) -> str:
    return f"vectors-{generation}.faiss"


def _connect(path: Path, readonly: bool) -> sqlite3.Connection:
    if readonly:
        db = sqlite3.connect(
            f"file:{path}?mode=ro", uri=True, isolation_level=None, check_same_thread=False
        )
    else:
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(_SCHEMA)
    db.execute("PRAGMA foreign_keys=ON")
    db.execute("PRAGMA busy_timeout=10000")
    return db


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    _fsync(tmp)
    os.replace(tmp, path)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def now() -> float:
    return time.time()
