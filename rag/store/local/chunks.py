"""The SQLite chunk store: documents and chunks (text, metadata, vector), versioned.

Every row records the generation that added it and, once replaced or removed, the one
that removed it. Writers see the live rows (`removed IS NULL`); a reader sees the rows of
the last committed generation C (`added <= C AND (removed IS NULL OR removed > C)`), so a
document being replaced keeps its old chunks for readers until the writer commits. Rows
removed at or before C are purged by the commit that makes C visible.

The tables are in `rag.store.local.schema`; a chunk's terms, written and retired with its
row here, are searched by `rag.store.local.lexical`. The chunks' vectors are stored here
only: the FAISS search structure (`rag.store.local.vectors`) is built from them.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from rag.analysis import language_and_terms
from rag.store.base import FileRecord, Filters
from rag.store.local.schema import index_terms, migrate
from rag.store.local.sql import CHUNK_COLUMNS, file_filter, visible
from rag.types import Chunk

if TYPE_CHECKING:
    from numpy.typing import NDArray


def lexical_text(chunk: Chunk, context: bool) -> str:
    """What the lexical (and dense) index reads of a chunk: with `context`, a header of
    its document's title and heading path, then its text."""
    return chunk.context if context else chunk.text


class ChunkDB:
    """One SQLite file. `view` is None for a writer (live rows) or the committed
    generation a reader sees."""

    def __init__(self, path: Path, *, readonly: bool, context: bool = False) -> None:
        self.path = path
        self.context = context
        self.readonly = readonly
        self.view: int | None = None
        if readonly:
            self.db = sqlite3.connect(
                f"file:{path}?mode=ro", uri=True, isolation_level=None, check_same_thread=False
            )
        else:
            self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self._migrate()
        self.db.execute("PRAGMA foreign_keys=ON")
        self.db.execute("PRAGMA busy_timeout=10000")

    def close(self) -> None:
        self.db.close()

    def _migrate(self) -> None:
        if migrate(self.db):  # a store made before the lexical index
            with self.transaction():
                index_terms(self.db)

    # -- meta --------------------------------------------------------------------

    def meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    @property
    def generation(self) -> int:
        return int(self.meta("generation") or 0)

    @property
    def committed(self) -> int:
        return int(self.meta("committed") or 0)

    @property
    def base(self) -> tuple[int, int] | None:
        """(generation of the IVF file the committed vectors start from, vectors it was
        trained on), or None when the index is exact, built from the rows alone."""
        base, trained = self.meta("vectors_base"), self.meta("vectors_trained")
        return None if base is None else (int(base), int(trained or 0))

    @contextlib.contextmanager
    def transaction(self, write: bool = True) -> Iterator[sqlite3.Connection]:
        """A write transaction, or a read one: every read inside it sees one snapshot."""
        self.db.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # -- reading (in the current view) -------------------------------------------------

    def files(self) -> dict[str, FileRecord]:
        rows = self.db.execute(
            "SELECT path, hash, size, mtime, ingested_at, name, title, type, lang FROM files f "
            f"WHERE {visible('f')}",
            (self.view,),
        ).fetchall()
        return {r[0]: FileRecord(*r) for r in rows}

    def chunk_count(self) -> int:
        row = self.db.execute(f"SELECT COUNT(*) FROM chunks c WHERE {visible('c')}", (self.view,))
        return int(row.fetchone()[0])

    def chunk_ids(self) -> NDArray[np.int64]:
        rows = self.db.execute(f"SELECT id FROM chunks c WHERE {visible('c')}", (self.view,))
        return np.fromiter((r[0] for r in rows), dtype=np.int64)

    def chunks(self, ids: Sequence[int]) -> dict[int, Chunk]:
        if not ids:
            return {}
        found: dict[int, Chunk] = {}
        for start in range(0, len(ids), 900):  # SQLite's limit on bound parameters
            part = [int(i) for i in ids[start : start + 900]]
            marks = ",".join("?" * len(part))
            rows = self.db.execute(
                f"SELECT {CHUNK_COLUMNS} FROM chunks c JOIN files f ON f.id = c.file_id "
                f"WHERE c.id IN ({marks}) AND {visible('c').replace('?1', '?')}",
                [*part, self.view, self.view, self.view],
            ).fetchall()
            found.update((r[0], Chunk(r[1], r[2], r[3], r[4], r[5], r[6])) for r in rows)
        return found

    def all_chunks(self) -> Iterator[tuple[int, Chunk]]:
        rows = self.db.execute(
            f"SELECT {CHUNK_COLUMNS} FROM chunks c JOIN files f ON f.id = c.file_id "
            f"WHERE {visible('c')} ORDER BY f.path, c.ordinal",
            (self.view,),
        ).fetchall()
        for r in rows:
            yield r[0], Chunk(r[1], r[2], r[3], r[4], r[5], r[6])

    def vectors(
        self, dimension: int, *, newer_than: int | None = None, batch: int = 4096
    ) -> Iterator[tuple[list[int], NDArray[np.float32]]]:
        """Stored vectors of the view, `batch` rows at a time (only rows added after a
        generation)."""
        sql = f"SELECT id, vector FROM chunks c WHERE {visible('c')}"
        args: list[int | None] = [self.view]
        if newer_than is not None:
            sql += " AND c.added > ?2"
            args.append(newer_than)
        cur = self.db.execute(sql + " ORDER BY id", args)
        while rows := cur.fetchmany(batch):
            mat = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32)
            yield [r[0] for r in rows], mat.reshape(len(rows), dimension)

    def vectors_of(self, ids: Sequence[int], dimension: int) -> NDArray[np.float32]:
        """The stored vectors of these chunks, in the order of `ids` (rows of ids no longer
        stored are NaN)."""
        out = np.full((len(ids), dimension), np.nan, dtype=np.float32)
        where = {int(i): n for n, i in enumerate(ids)}
        for start in range(0, len(ids), 900):  # SQLite's limit on bound parameters
            part = [int(i) for i in ids[start : start + 900]]
            marks = ",".join("?" * len(part))
            for chunk_id, blob in self.db.execute(
                f"SELECT id, vector FROM chunks WHERE id IN ({marks})", part
            ):
                out[where[chunk_id]] = np.frombuffer(blob, dtype=np.float32)
        return out

    def sample_ids(self, n: int, seed: int = 0) -> NDArray[np.int64]:
        """About `n` ids of the view's chunks, picked at random, in increasing order."""
        low, high = self.db.execute("SELECT MIN(id), MAX(id) FROM chunks").fetchone()
        if low is None:
            return np.empty(0, dtype=np.int64)
        span = high - low + 1
        # Drawn with repeats then made unique (sorted): `choice` without repeats would
        # permute the whole span, a copy of every id of a large index.
        picked = np.unique(np.random.default_rng(seed).integers(low, high + 1, size=min(n, span)))
        seen = visible("c").replace("?1", "?")
        kept: list[int] = []
        for start in range(0, len(picked), 900):
            part = [int(i) for i in picked[start : start + 900]]
            marks = ",".join("?" * len(part))
            kept.extend(
                r[0]
                for r in self.db.execute(
                    f"SELECT id FROM chunks c WHERE id IN ({marks}) AND {seen} ORDER BY id",
                    [*part, self.view, self.view, self.view],
                )
            )
        return np.asarray(kept, dtype=np.int64)

    def count_newer(self, generation: int) -> int:
        """Live chunks added after `generation`."""
        row = self.db.execute(
            "SELECT COUNT(*) FROM chunks WHERE added > ? AND removed IS NULL", (generation,)
        ).fetchone()
        return int(row[0])

    def filtered_ids(self, filters: Filters) -> NDArray[np.int64]:
        """Ids of the view's chunks in the documents `filters` allows."""
        where, args = file_filter(filters, first=2)
        rows = self.db.execute(
            f"SELECT c.id FROM chunks c JOIN files f ON f.id = c.file_id WHERE {visible('c')}{where}",
            (self.view, *args),
        )
        return np.fromiter((r[0] for r in rows), dtype=np.int64)

    def last_ingest(self) -> float | None:
        row = self.db.execute(
            f"SELECT MAX(ingested_at) FROM files f WHERE {visible('f')}", (self.view,)
        ).fetchone()
        return None if row[0] is None else float(row[0])

    # -- writing (live rows, inside a transaction) -------------------------------------

    def bump(self) -> int:
        self.db.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key='generation'")
        return self.generation

    def delete_file(self, path: str, generation: int) -> list[int]:
        """Retire a document's live rows at `generation`; the ids of its chunks.

        Rows no reader can see yet (added after the last commit) are deleted outright."""
        row = self.db.execute(
            "SELECT id, added FROM files WHERE path=? AND removed IS NULL", (path,)
        ).fetchone()
        if row is None:
            return []
        file_id, added = row
        ids = [
            r[0]
            for r in self.db.execute("SELECT id FROM chunks WHERE file_id=? AND removed IS NULL", (file_id,))
        ]
        if added > self.committed:
            self.db.execute(
                "DELETE FROM chunk_terms WHERE rowid IN (SELECT id FROM chunks WHERE file_id=?)", (file_id,)
            )
            self.db.execute("DELETE FROM chunks WHERE file_id=?", (file_id,))
            self.db.execute("DELETE FROM files WHERE id=?", (file_id,))
        else:
            self.db.execute(
                "UPDATE chunks SET removed=? WHERE file_id=? AND removed IS NULL", (generation, file_id)
            )
            self.db.execute("UPDATE files SET removed=? WHERE id=?", (generation, file_id))
        return ids

    def insert_file(self, record: FileRecord, generation: int) -> int:
        cur = self.db.execute(
            "INSERT INTO files (path, name, hash, size, mtime, ingested_at, added, title, type, lang)"
            " VALUES (?,?,?,?,?,?,?,?,?,?)",
            (
                record.path,
                record.name,
                record.hash,
                record.size,
                record.mtime,
                record.ingested_at,
                generation,
                record.title,
                record.type,
                record.language,
            ),
        )
        return int(cur.lastrowid or 0)

    def insert_chunks(
        self, file_id: int, chunks: Sequence[Chunk], vectors: NDArray[np.float32], generation: int
    ) -> NDArray[np.int64]:
        ids = np.empty(len(chunks), dtype=np.int64)
        for n, (chunk, vector) in enumerate(zip(chunks, vectors, strict=True)):
            searched = lexical_text(chunk, self.context)  # its context header, then its text
            lang, terms = language_and_terms(chunk.text, searched[: len(searched) - len(chunk.text)])
            cur = self.db.execute(
                "INSERT INTO chunks (file_id, ordinal, text, page_start, page_end, heading,"
                " vector, added, lang) VALUES (?,?,?,?,?,?,?,?,?)",
                (
                    file_id,
                    chunk.ordinal,
                    chunk.text,
                    chunk.page_start,
                    chunk.page_end,
                    chunk.heading,
                    vector.tobytes(),
                    generation,
                    lang,
                ),
            )
            ids[n] = int(cur.lastrowid or 0)
            self.db.execute(
                "INSERT INTO chunk_terms (rowid, terms) VALUES (?, ?)", (ids[n].item(), " ".join(terms))
            )
        return ids

    def touch_file(self, record: FileRecord) -> None:
        self.db.execute(
            "UPDATE files SET mtime=?, name=?, hash=? WHERE path=? AND removed IS NULL",
            (record.mtime, record.name, record.hash, record.path),
        )

    def publish(self, generation: int, base: tuple[int, int] | None = None) -> None:
        """Make `generation` the committed one and purge rows no reader needs any more.
        `base` is (generation of the IVF file readers start from, vectors it was trained
        on), or None for an exact index built from the rows alone."""
        self.set_meta("committed", str(generation))
        if base is None:
            self.db.execute("DELETE FROM meta WHERE key IN ('vectors_base', 'vectors_trained')")
        else:
            self.set_meta("vectors_base", str(base[0]))
            self.set_meta("vectors_trained", str(base[1]))
        self.db.execute(
            "DELETE FROM chunk_terms WHERE rowid IN (SELECT id FROM chunks "
            "WHERE removed IS NOT NULL AND removed <= ?)",
            (generation,),
        )
        self.db.execute("DELETE FROM chunks WHERE removed IS NOT NULL AND removed <= ?", (generation,))
        self.db.execute("DELETE FROM files WHERE removed IS NOT NULL AND removed <= ?", (generation,))
