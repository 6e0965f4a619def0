"""A persistent index: one folder per index under the indexes directory.

    indexes/<name>/manifest.json          embedder, dimension, chunking, format version
    indexes/<name>/store.sqlite           files, chunks (text, metadata, vector)
    indexes/<name>/vectors-<gen>.faiss    FAISS inner-product index of generation <gen>

SQLite is the source of truth. Each document is replaced in one transaction, which
bumps the store's generation; the FAISS file is a cache of one generation, written to a
temporary file and renamed into place. A process killed at any moment leaves SQLite
at a consistent state between documents; a FAISS file that does not match the store's
generation is rebuilt from the stored vectors when the index is next opened.
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
    """FAISS flat inner-product index with explicit ids (exact search)."""

    def __init__(self, dimension: int, index: Any = None) -> None:
        import faiss

        self._faiss = faiss
        self.dimension = dimension
        self.index = index if index is not None else faiss.IndexIDMap2(faiss.IndexFlatIP(dimension))

    @classmethod
    def load(cls, path: Path, dimension: int) -> FaissIndex:
        import faiss

        return cls(dimension, faiss.read_index(str(path)))

    def __len__(self) -> int:
        return int(self.index.ntotal)

    def add(self, ids: Sequence[int], vectors: NDArray[np.float32]) -> None:
        if len(ids):
            self.index.add_with_ids(vectors, np.asarray(ids, dtype=np.int64))

    def remove(self, ids: Sequence[int]) -> None:
        if len(ids):
            self.index.remove_ids(np.asarray(ids, dtype=np.int64))  # type: ignore[arg-type]

    def search(self, vector: NDArray[np.float32], k: int) -> list[tuple[int, float]]:
        if len(self) == 0 or k <= 0:
            return []
        scores, ids = self.index.search(vector.reshape(1, -1), min(k, len(self)))
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]

    def save(self, path: Path) -> None:
        tmp = path.with_suffix(".tmp")
        self._faiss.write_index(self.index, str(tmp))
        _fsync(tmp)
        os.replace(tmp, path)


class Index:
    """One named index: its manifest, its SQLite store and its FAISS vectors."""

    def __init__(self, folder: Path, manifest: Manifest, *, readonly: bool = False) -> None:
        self.folder = folder
        self.name = folder.name
        self.manifest = manifest
        self.readonly = readonly
        self._lock = threading.RLock()
        self._db = _connect(folder / STORE, readonly)
        self._pending_removals: list[int] = []
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
        """
        self._check_writable()
        ids: list[int] = []
        added: list[NDArray[np.float32]] = []
        with self._lock, self._transaction() as db:
            old = self._delete_file(db, record.path)
            cur = db.execute(
                "INSERT INTO files (path, hash, size, mtime, ingested_at) VALUES (?,?,?,?,?)",
                (record.path, record.hash, record.size, record.mtime, record.ingested_at),
            )
            file_id = cur.lastrowid
            for chunks, vectors in batches:
                vectors = np.asarray(vectors, dtype=np.float32).reshape(-1, self.manifest.dimension)
                for chunk, vector in zip(chunks, vectors, strict=True):
                    cur = db.execute(
                        "INSERT INTO chunks (file_id, ordinal, text, page_start, page_end,"
                        " heading, vector) VALUES (?,?,?,?,?,?,?)",
                        (file_id, chunk.ordinal, chunk.text, chunk.page_start, chunk.page_end,
                         chunk.heading, vector.tobytes()),
                    )
                    ids.append(int(cur.lastrowid or 0))
                added.append(vectors)
            self._bump(db)
        self._pending_removals.extend(old)
        if ids:
            self.vectors.add(ids, np.concatenate(added))
        return len(ids)

    def remove_file(self, path: str) -> int:
        """Forget one document; returns how many chunks it had."""
        self._check_writable()
        with self._lock, self._transaction() as db:
            old = self._delete_file(db, path)
            self._bump(db)
        self._pending_removals.extend(old)
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
            if self._pending_removals:
                self.vectors.remove(self._pending_removals)
                self._pending_removals = []
            gen = self.generation
            target = self.folder / _vectors_name(gen)
            if not target.exists():
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
                return FaissIndex.load(path, self.manifest.dimension)
            except RuntimeError:
                logger.warning("unreadable vectors file, rebuilding path=%s", path)
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
