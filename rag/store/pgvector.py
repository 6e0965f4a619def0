"""The pgvector store: one index in PostgreSQL, shared by every machine that connects.

Rows are versioned as in the local store (see `rag.store.chunks`): each records the
generation that added it and the one that retired it; writers see the live rows, readers
the rows of the committed generation C (`added <= C AND (removed IS NULL OR removed > C)`),
read in one REPEATABLE READ transaction, so a search sees one state whole. Generations
come from a sequence, so writers on several machines never wait on each other for one.
Each document is replaced in one transaction, under an advisory lock on its path (two
workers on one file take turns, never both insert it). `commit()` publishes every
generation handed out so far, purges the rows retired at or before it, and readers follow
at their next search; a writer killed at any moment leaves whole documents only, and the
next commit (by any writer) publishes them.

Dense search: pgvector's inner product (`<#>`, the cosine similarity of normalized
vectors) over an HNSW or IVFFlat index, with iterative scans so that filtered searches
still return k. Lexical search: PostgreSQL full-text search (a `tsvector` per chunk, a GIN
index, `@@` matches) over the terms `rag.analysis` makes in the chunk's language, French or
English, and the question's (stop words, elisions, Snowball stems, accents folded; read by
the `simple` configuration, which keeps them as they are), so a term means the same here
as in the local store. PostgreSQL's own `french` configuration was not used: its older
Snowball stemmer keeps "enjeux" and "enjeu" apart. BM25 and the coverage score are
computed as in the local store.
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from rag.analysis import analyze, detect_language
from rag.errors import RagError
from rag.store.base import Batches, FileRecord, Filters, Store
from rag.store.manifest import Manifest
from rag.types import Chunk, Hit

if TYPE_CHECKING:
    import psycopg
    from numpy.typing import NDArray

    from rag.config import StoreSettings
    from rag.store.pg_claims import FileClaims

logger = logging.getLogger(__name__)

# Filtered searches go on in the index until k rows pass (pgvector >= 0.8).
ITERATIVE_SCAN = {"hnsw": "strict_order", "ivfflat": "relaxed_order"}
BM25_K1, BM25_B = 1.2, 0.75  # FTS5's defaults, as in the local store
COMMON_TERM_SHARE, COMMON_TERM_MIN_CHUNKS = 0.25, 2000  # as in the local store

_FILE_COLUMNS = "f.path, f.hash, f.size, f.mtime, f.ingested_at, f.name, f.title, f.type, f.lang"
_CHUNK_COLUMNS = (
    "c.id, c.text, CASE f.name WHEN '' THEN f.path ELSE f.name END, c.ordinal, "
    "c.page_start, c.page_end, c.heading"
)


def _visible(alias: str, view: int | None) -> str:
    """Rows a view sees: the live rows (a writer, None) or those of a committed generation."""
    if view is None:
        return f"{alias}.removed IS NULL"
    return f"({alias}.added <= {int(view)} AND ({alias}.removed IS NULL OR {alias}.removed > {int(view)}))"


def _glob(pattern: str) -> str:
    """A GLOB pattern ('*', '?', '[...]', as the local store reads it) as a POSIX regex."""
    out, i = ["^"], 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "*":
            out.append(".*")
        elif ch == "?":
            out.append(".")
        elif ch == "[" and (end := pattern.find("]", i + 2)) != -1:
            body = pattern[i + 1 : end]
            out.append("[" + ("^" + body[1:] if body.startswith("^") else body).replace("\\", "\\\\") + "]")
            i = end
        else:
            out.append(re.escape(ch))
        i += 1
    return "".join(out) + "$"


def _file_filter(filters: Filters | None) -> tuple[str, list[Any]]:
    """` AND c.file_id IN (...)` for the filters, and its parameters."""
    if not filters:
        return "", []
    parts: list[str] = []
    args: list[Any] = []
    if filters.path:
        parts.append("CASE f.name WHEN '' THEN f.path ELSE f.name END ~ %s")
        args.append(_glob(filters.path))
    if filters.types:
        parts.append("f.type = ANY(%s)")
        args.append([t.lower().lstrip(".") for t in filters.types])
    if filters.languages:
        parts.append("f.lang = ANY(%s)")
        args.append([x.lower() for x in filters.languages])
    if filters.modified_after is not None:
        parts.append("f.mtime >= %s")
        args.append(filters.modified_after)
    if filters.modified_before is not None:
        parts.append("f.mtime < %s")
        args.append(filters.modified_before)
    return f" AND c.file_id IN (SELECT f.id FROM {{s}}.files f WHERE {' AND '.join(parts)})", args


def _tsquery(lexemes: Sequence[str]) -> str:
    """lexemes OR-ed, quoted for PostgreSQL's tsquery input (no further analysis)."""
    return " | ".join("'" + t.replace("\\", "\\\\").replace("'", "''") + "'" for t in lexemes)


def _idf(total: int, frequency: int) -> float:
    return math.log(1 + (total - frequency + 0.5) / (frequency + 0.5))


class PgVectorStore(Store):
    """One index of a PostgreSQL database: a writer (beside other writers) or a reader."""

    def __init__(
        self,
        connect: Callable[[], psycopg.Connection[tuple[Any, ...]]],
        name: str,
        schema: str,
        manifest: Manifest,
        settings: StoreSettings,
        *,
        readonly: bool = False,
    ) -> None:
        self._connect = connect
        self.name = name
        self.schema = schema
        self.manifest = manifest
        self.settings = settings
        self.readonly = readonly
        self._lock = threading.RLock()
        self._stats: tuple[int | None, int, float] | None = None  # (view, chunks, mean length)
        self.conn = self._open()

    def _open(self) -> psycopg.Connection[tuple[Any, ...]]:
        import psycopg
        from pgvector.psycopg import register_vector

        conn = self._connect()
        register_vector(conn)
        if self.readonly:  # every read of one search sees one snapshot
            conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            conn.read_only = True
        return conn

    def _sql(self, sql: str) -> bytes:
        return sql.replace("{s}", self.schema).encode()

    @contextlib.contextmanager
    def _txn(self) -> Iterator[tuple[psycopg.Connection[tuple[Any, ...]], int | None]]:
        """One transaction and the view it reads: the committed generation for a reader,
        None (the live rows) for a writer. A connection lost is made again once."""
        with self._lock:
            if self.conn.broken or self.conn.closed:
                self.conn = self._open()
            with self.conn.transaction():
                view = self._committed() if self.readonly else None
                yield self.conn, view

    def _committed(self) -> int:
        row = self.conn.execute(self._sql("SELECT value FROM {s}.meta WHERE key = 'committed'")).fetchone()
        return int(row[0]) if row else 0

    # -- reading -----------------------------------------------------------------

    @property
    def generation(self) -> int:
        with self._txn():
            return self._committed()

    def search(self, vector: NDArray[np.float32], k: int, filters: Filters | None = None) -> list[Hit]:
        if k <= 0:
            return []
        query = np.asarray(vector, dtype=np.float32).reshape(-1)
        where, args = _file_filter(filters)
        with self._txn() as (conn, view):
            kind = self.settings.vector_index
            if kind == "hnsw":
                conn.execute(f"SET LOCAL hnsw.ef_search = {max(int(self.settings.ef_search), k)}".encode())
            else:
                conn.execute(b"SET LOCAL ivfflat.probes = 10")
            conn.execute(f"SET LOCAL {kind}.iterative_scan = {ITERATIVE_SCAN[kind]}".encode())
            rows = conn.execute(
                self._sql(
                    f"WITH top AS (SELECT c.id, c.vector <#> %s AS d FROM {{s}}.chunks c "
                    f"WHERE {_visible('c', view)}{where} ORDER BY c.vector <#> %s LIMIT %s) "
                    f"SELECT {_CHUNK_COLUMNS}, -top.d FROM top JOIN {{s}}.chunks c ON c.id = top.id "
                    "JOIN {s}.files f ON f.id = c.file_id ORDER BY top.d, c.id"
                ),
                [query, *args, query, k],
            ).fetchall()
        hits = []
        for r in rows:
            score = float(r[7])
            hits.append(Hit(int(r[0]), Chunk(r[1], r[2], r[3], r[4], r[5], r[6]), score, {"dense": score}))
        return hits

    def search_text(self, query: str, k: int, filters: Filters | None = None) -> list[Hit]:
        analyzed = " ".join(analyze(query, detect_language(query)))
        where, args = _file_filter(filters)
        with self._txn() as (conn, view):
            row = conn.execute("SELECT tsvector_to_array(to_tsvector('simple', %s))", (analyzed,)).fetchone()
            terms = sorted(row[0]) if row and row[0] else []
            if not terms or k <= 0:
                return []
            total, mean_length = self._lexical_stats(view)
            frequencies = {t: self._frequency(t, view) for t in terms}
            weights = {t: _idf(total, frequencies[t]) for t in terms}
            searched = self._searched(terms, total, frequencies)
            rows = conn.execute(
                self._sql(
                    "WITH q AS (SELECT * FROM unnest(%s::text[], %s::float8[]) AS q(lexeme, idf)), "
                    "m AS (SELECT c.id, c.length, c.terms FROM {s}.chunks c WHERE c.terms @@ %s::tsquery "
                    f"AND {_visible('c', view)}{where}) "
                    "SELECT m.id, sum(q.idf * u.tf * %s / (u.tf + %s * (1 - %s + %s * m.length / %s))) "
                    "AS bm25 FROM m CROSS JOIN LATERAL "
                    "(SELECT lexeme, cardinality(positions) AS tf FROM unnest(m.terms)) u "
                    "JOIN q ON q.lexeme = u.lexeme GROUP BY m.id ORDER BY bm25 DESC, m.id LIMIT %s"
                ),
                [
                    searched,
                    [weights[t] for t in searched],
                    _tsquery(searched),
                    *args,
                    BM25_K1 + 1,
                    BM25_K1,
                    BM25_B,
                    BM25_B,
                    mean_length,
                    k,
                ],
            ).fetchall()
            ids = [int(r[0]) for r in rows]
            found = self._chunks(conn, view, ids)
            present = self._present(conn, ids, terms)
        whole = sum(weights.values()) or 1.0
        hits = []
        for chunk_id, bm25 in ((int(r[0]), float(r[1])) for r in rows):
            if chunk_id in found:
                coverage = sum(w for t, w in weights.items() if t in present.get(chunk_id, ())) / whole
                hits.append(Hit(chunk_id, found[chunk_id], coverage, {"bm25": bm25, "coverage": coverage}))
        return hits

    def _lexical_stats(self, view: int | None) -> tuple[int, float]:
        """Chunks the view sees and their mean length in terms (once per committed state)."""
        if view is not None and self._stats is not None and self._stats[0] == view:
            return self._stats[1], self._stats[2]
        row = self.conn.execute(
            self._sql(
                f"SELECT count(*), coalesce(avg(c.length), 1) FROM {{s}}.chunks c WHERE {_visible('c', view)}"
            )
        ).fetchone()
        total, mean = (int(row[0]), max(float(row[1]), 1.0)) if row else (0, 1.0)
        self._stats = (view, total, mean) if view is not None else None
        return total, mean

    def _frequency(self, term: str, view: int | None) -> int:
        row = self.conn.execute(
            self._sql(
                f"SELECT count(*) FROM {{s}}.chunks c WHERE c.terms @@ %s::tsquery AND {_visible('c', view)}"
            ),
            (_tsquery([term]),),
        ).fetchone()
        return int(row[0]) if row else 0

    @staticmethod
    def _searched(terms: list[str], total: int, frequencies: dict[str, int]) -> list[str]:
        """All terms but the very common ones of a large index (their low idf adds little to
        a score; their many rows cost most of the time); the two rarest always kept."""
        unique = sorted(terms, key=lambda t: (frequencies.get(t, 0), t))
        if total < COMMON_TERM_MIN_CHUNKS:
            return unique
        kept = [t for t in unique if frequencies.get(t, 0) <= COMMON_TERM_SHARE * total]
        return kept if len(kept) >= 2 else unique[:2]

    def _present(
        self, conn: psycopg.Connection[tuple[Any, ...]], ids: list[int], terms: list[str]
    ) -> dict[int, set[str]]:
        """Which of the query's terms each chunk holds."""
        if not ids:
            return {}
        rows = conn.execute(
            self._sql(
                "SELECT c.id, array_agg(u.lexeme) FROM {s}.chunks c CROSS JOIN LATERAL unnest(c.terms) u "
                "WHERE c.id = ANY(%s) AND u.lexeme = ANY(%s) GROUP BY c.id"
            ),
            (ids, terms),
        ).fetchall()
        return {int(r[0]): set(r[1]) for r in rows}

    def _chunks(
        self, conn: psycopg.Connection[tuple[Any, ...]], view: int | None, ids: Sequence[int]
    ) -> dict[int, Chunk]:
        if not ids:
            return {}
        rows = conn.execute(
            self._sql(
                f"SELECT {_CHUNK_COLUMNS} FROM {{s}}.chunks c JOIN {{s}}.files f ON f.id = c.file_id "
                f"WHERE c.id = ANY(%s) AND {_visible('c', view)}"
            ),
            ([int(i) for i in ids],),
        ).fetchall()
        return {int(r[0]): Chunk(r[1], r[2], r[3], r[4], r[5], r[6]) for r in rows}

    def vector(self, chunk_id: int) -> NDArray[np.float32]:
        with self._txn() as (conn, _):
            row = conn.execute(
                self._sql("SELECT vector FROM {s}.chunks WHERE id = %s"), (int(chunk_id),)
            ).fetchone()
        if row is None:
            raise KeyError(chunk_id)
        value = row[0]
        return np.asarray(value.to_numpy() if hasattr(value, "to_numpy") else value, dtype=np.float32)

    def chunks(self, ids: Sequence[int]) -> dict[int, Chunk]:
        with self._txn() as (conn, view):
            return self._chunks(conn, view, ids)

    def all_chunks(self) -> Iterator[tuple[int, Chunk]]:
        with self._txn() as (conn, view):
            rows = conn.execute(
                self._sql(
                    f"SELECT {_CHUNK_COLUMNS} FROM {{s}}.chunks c JOIN {{s}}.files f ON f.id = c.file_id "
                    f"WHERE {_visible('c', view)} ORDER BY f.path, c.ordinal"
                )
            ).fetchall()
        for r in rows:
            yield int(r[0]), Chunk(r[1], r[2], r[3], r[4], r[5], r[6])

    def files(self) -> dict[str, FileRecord]:
        with self._txn() as (conn, view):
            rows = conn.execute(
                self._sql(f"SELECT {_FILE_COLUMNS} FROM {{s}}.files f WHERE {_visible('f', view)}")
            ).fetchall()
        return {r[0]: FileRecord(*r) for r in rows}

    def chunk_count(self) -> int:
        with self._txn() as (conn, view):
            row = conn.execute(self._sql(f"SELECT count(*) FROM {{s}}.chunks c WHERE {_visible('c', view)}"))
            return int(row.fetchone()[0])  # type: ignore[index]

    def last_ingest(self) -> float | None:
        with self._txn() as (conn, view):
            row = conn.execute(
                self._sql(f"SELECT max(f.ingested_at) FROM {{s}}.files f WHERE {_visible('f', view)}")
            ).fetchone()
        return None if row is None or row[0] is None else float(row[0])

    def size_on_disk(self) -> int:
        with self._txn() as (conn, _):
            row = conn.execute(
                "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relkind = 'r'",
                (self.schema,),
            ).fetchone()
        return int(row[0]) if row else 0

    # -- writing -----------------------------------------------------------------

    def replace_file(self, record: FileRecord, batches: Batches) -> int:
        self._check_writable()
        written = 0
        with self._txn() as (conn, _):
            generation = self._begin_change(conn, record.path)
            self._retire(conn, record.path, generation)
            row = conn.execute(
                self._sql(
                    "INSERT INTO {s}.files "
                    "(path, name, hash, size, mtime, ingested_at, title, type, lang, added) "
                    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id"
                ),
                (
                    record.path,
                    record.name,
                    record.hash,
                    record.size,
                    record.mtime,
                    record.ingested_at,
                    record.title,
                    record.type,
                    record.language,
                    generation,
                ),
            ).fetchone()
            file_id = int(row[0]) if row else 0
            for chunks, vectors in batches:
                matrix = np.asarray(vectors, dtype=np.float32).reshape(-1, self.manifest.dimension)
                written += self._insert_chunks(conn, file_id, chunks, matrix, generation)
        return written

    def _insert_chunks(
        self,
        conn: psycopg.Connection[tuple[Any, ...]],
        file_id: int,
        chunks: Sequence[Chunk],
        vectors: NDArray[np.float32],
        generation: int,
    ) -> int:
        rows = []
        for chunk, vector in zip(chunks, vectors, strict=True):
            lang = detect_language(chunk.text)
            searched = chunk.context if self.manifest.chunk_context else chunk.text
            rows.append(
                (
                    file_id,
                    chunk.ordinal,
                    chunk.text,
                    chunk.page_start,
                    chunk.page_end,
                    chunk.heading,
                    lang,
                    vector,
                    " ".join(analyze(searched, lang)),
                    generation,
                )
            )
        with conn.cursor() as cur:
            cur.executemany(
                self._sql(
                    "INSERT INTO {s}.chunks "
                    "(file_id, ordinal, text, page_start, page_end, heading, lang, vector,"
                    " terms, length, added) SELECT %s, %s, %s, %s, %s, %s, %s, %s, t.v, "
                    "(SELECT coalesce(sum(cardinality(u.positions)), 0) FROM unnest(t.v) u), %s "
                    "FROM (SELECT to_tsvector('simple', %s) AS v) t"
                ),
                [(*r[:8], r[9], r[8]) for r in rows],
            )
        return len(rows)

    def remove_file(self, path: str) -> int:
        self._check_writable()
        with self._txn() as (conn, _):
            return self._retire(conn, path, self._begin_change(conn, path))

    def touch_file(self, record: FileRecord) -> None:
        self._check_writable()
        with self._txn() as (conn, _):
            conn.execute(
                self._sql("UPDATE {s}.files SET mtime = %s, name = %s WHERE path = %s AND removed IS NULL"),
                (record.mtime, record.name, record.path),
            )

    def commit(self) -> None:
        self._check_writable()
        with self._txn() as (conn, _):
            row = conn.execute(
                self._sql("SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM {s}.generation")
            ).fetchone()
            handed_out = int(row[0]) if row else 0
            row = conn.execute(
                self._sql(
                    "UPDATE {s}.meta SET value = greatest(value, %s) WHERE key = 'committed' RETURNING value"
                ),
                (handed_out,),
            ).fetchone()
            committed = int(row[0]) if row else handed_out
            purged = conn.execute(
                self._sql("DELETE FROM {s}.files WHERE removed IS NOT NULL AND removed <= %s"), (committed,)
            ).rowcount
        logger.info("index committed name=%s generation=%d purged_files=%d", self.name, committed, purged)

    def close(self) -> None:
        with self._lock:
            self.conn.close()

    def claims(self, owner: str, lease: float) -> FileClaims:
        """One ingest worker's claims on this index's files (see `rag.store.pg_claims`)."""
        from rag.store.pg_claims import FileClaims

        return FileClaims(self, owner, lease)

    # -- internals ---------------------------------------------------------------

    def _begin_change(self, conn: psycopg.Connection[tuple[Any, ...]], path: str) -> int:
        """(In a write transaction) wait for any other writer of this path; a new generation."""
        conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"{self.schema}:{path}",))
        row = conn.execute(self._sql("SELECT nextval('{s}.generation')")).fetchone()
        return int(row[0]) if row else 0

    def _retire(self, conn: psycopg.Connection[tuple[Any, ...]], path: str, generation: int) -> int:
        """Retire a document's live rows at `generation`; how many chunks it had. Rows no
        reader can see yet (added after the last commit) are deleted outright."""
        row = conn.execute(
            self._sql("SELECT id, added FROM {s}.files WHERE path = %s AND removed IS NULL"), (path,)
        ).fetchone()
        if row is None:
            return 0
        file_id, added = int(row[0]), int(row[1])
        count = conn.execute(
            self._sql("SELECT count(*) FROM {s}.chunks WHERE file_id = %s"), (file_id,)
        ).fetchone()
        if added > self._committed():
            conn.execute(self._sql("DELETE FROM {s}.files WHERE id = %s"), (file_id,))  # chunks cascade
        else:
            conn.execute(
                self._sql("UPDATE {s}.chunks SET removed = %s WHERE file_id = %s"), (generation, file_id)
            )
            conn.execute(self._sql("UPDATE {s}.files SET removed = %s WHERE id = %s"), (generation, file_id))
        return int(count[0]) if count else 0

    def _check_writable(self) -> None:
        if self.readonly:
            raise RagError(f"index {self.name!r} is open read-only")
