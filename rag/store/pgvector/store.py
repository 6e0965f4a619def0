"""The pgvector store: one index in PostgreSQL, shared by every machine that connects.

Rows are versioned as in the local store (see `rag.store.local.chunks`): each records the
generation that added it and the one that retired it; writers see the live rows, readers
the rows of the committed generation C (`added <= C AND (removed IS NULL OR removed > C)`),
read in one REPEATABLE READ transaction, so a search sees one state whole. Generations
come from a sequence, so writers on several machines never wait on each other for one.
Each document is replaced in one transaction, under an advisory lock on its path (two
workers on one file take turns, never both insert it; see `rag.store.pgvector.rows`).
`commit()` publishes every generation handed out so far, purges the rows retired at or
before it, and readers follow at their next search; a writer killed at any moment leaves
whole documents only, and the next commit (by any writer) publishes them.

Dense search: pgvector's inner product (`<#>`, the cosine similarity of normalized
vectors) over an HNSW or IVFFlat index, with iterative scans so that filtered searches
still return k. Lexical search: PostgreSQL full-text search (a `tsvector` per chunk made by
the `french` or `english` configuration of the chunk's language, a GIN index, `@@`
matches; see `rag.store.pgvector.lexical`), with BM25 and the coverage score computed as
in the local store.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from rag.errors import RagError
from rag.store.abilities import SharedIngest
from rag.store.base import Batches, FileRecord, Filters, Store, not_found
from rag.store.manifest import Manifest
from rag.store.pgvector.leases import FileClaims
from rag.store.pgvector.lexical import PgLexical
from rag.store.pgvector.rows import PgRows
from rag.store.pgvector.sql import CHUNK_COLUMNS, COMMITTED, FILE_COLUMNS, file_filter, visible
from rag.types import Chunk, Hit

if TYPE_CHECKING:
    import psycopg
    from numpy.typing import NDArray

    from rag.config import StoreSettings

logger = logging.getLogger(__name__)

ANALYZE_AFTER = 10_000  # chunks one writer adds before its commit gathers statistics again
ITERATIVE_SCAN = {"hnsw": "strict_order", "ivfflat": "relaxed_order"}


class PgVectorStore(Store, SharedIngest):
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
        self.lexical = PgLexical(self._sql, schema)
        self.rows = PgRows(self._sql, schema, manifest.chunk_context)
        self._unanalyzed = 0  # chunks written since the statistics were last gathered
        self.conn = self._open()

    def _open(self) -> psycopg.Connection[tuple[Any, ...]]:
        import psycopg
        from pgvector.psycopg import register_vector

        conn = self._connect()
        register_vector(conn)
        # Filtered searches go on in the vector index until k rows pass (pgvector >= 0.8).
        conn.execute(
            f"SET hnsw.ef_search = {int(self.settings.ef_search)}; SET ivfflat.probes = 10; "
            f"SET hnsw.iterative_scan = {ITERATIVE_SCAN['hnsw']}; "
            f"SET ivfflat.iterative_scan = {ITERATIVE_SCAN['ivfflat']}".encode()
        )
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
        with self._lock, self._gone_as_not_found():
            if self.conn.broken or self.conn.closed:
                self.conn = self._open()
            with self.conn.transaction():
                view = self._committed() if self.readonly else None
                yield self.conn, view

    @contextlib.contextmanager
    def _statement(self) -> Iterator[tuple[psycopg.Connection[tuple[Any, ...]], str | None]]:
        """For a read that is one statement: no transaction around it (one round trip)."""
        with self._lock, self._gone_as_not_found():
            if self.conn.broken or self.conn.closed:
                self.conn = self._open()
            yield self.conn, (COMMITTED if self.readonly else None)

    @contextlib.contextmanager
    def _gone_as_not_found(self) -> Iterator[None]:
        """IndexNotFoundError for a statement that failed because the index was deleted
        (its schema dropped; one created again under the same name has another schema):
        a reader that still held it is told it is gone, whatever PostgreSQL said."""
        import psycopg

        try:
            yield
        except psycopg.Error as exc:
            if self._schema_exists():
                raise
            raise not_found(self.name, deleted=True) from exc

    def _schema_exists(self) -> bool:
        """Whether this index's schema is still there (True when that cannot be told)."""
        import psycopg

        try:
            with self._connect() as conn:
                row = conn.execute("SELECT to_regnamespace(%s) IS NOT NULL", (self.schema,)).fetchone()
        except (psycopg.Error, RagError):
            return True
        return bool(row and row[0])

    def _committed(self) -> int:
        return self.rows.committed(self.conn)

    # -- reading -----------------------------------------------------------------

    @property
    def generation(self) -> int:
        with self._txn():
            return self._committed()

    def search(self, vector: NDArray[np.float32], k: int, filters: Filters | None = None) -> list[Hit]:
        if k <= 0:
            return []
        query = np.asarray(vector, dtype=np.float32).reshape(-1)
        where, args = file_filter(filters)
        with self._statement() as (conn, view):
            rows = conn.execute(
                self._sql(
                    f"WITH top AS (SELECT c.id, c.vector <#> %s AS d FROM {{s}}.chunks c "
                    f"WHERE {visible('c', view)}{where} ORDER BY c.vector <#> %s LIMIT %s) "
                    f"SELECT {CHUNK_COLUMNS}, -top.d FROM top JOIN {{s}}.chunks c ON c.id = top.id "
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
        with self._txn() as (conn, view):
            scored = self.lexical.search(conn, view, query, k, filters)
            found = self._chunks(conn, view, [i for i, _, _ in scored])
        return [
            Hit(i, found[i], cover, {"bm25": bm25, "coverage": cover})
            for i, bm25, cover in scored
            if i in found
        ]

    def _chunks(
        self, conn: psycopg.Connection[tuple[Any, ...]], view: int | None, ids: Sequence[int]
    ) -> dict[int, Chunk]:
        if not ids:
            return {}
        rows = conn.execute(
            self._sql(
                f"SELECT {CHUNK_COLUMNS} FROM {{s}}.chunks c JOIN {{s}}.files f ON f.id = c.file_id "
                f"WHERE c.id = ANY(%s) AND {visible('c', view)}"
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
                    f"SELECT {CHUNK_COLUMNS} FROM {{s}}.chunks c JOIN {{s}}.files f ON f.id = c.file_id "
                    f"WHERE {visible('c', view)} ORDER BY f.path, c.ordinal"
                )
            ).fetchall()
        for r in rows:
            yield int(r[0]), Chunk(r[1], r[2], r[3], r[4], r[5], r[6])

    def files(self) -> dict[str, FileRecord]:
        with self._txn() as (conn, view):
            rows = conn.execute(
                self._sql(f"SELECT {FILE_COLUMNS} FROM {{s}}.files f WHERE {visible('f', view)}")
            ).fetchall()
        return {r[0]: FileRecord(*r) for r in rows}

    def chunk_count(self) -> int:
        with self._txn() as (conn, view):
            row = conn.execute(self._sql(f"SELECT count(*) FROM {{s}}.chunks c WHERE {visible('c', view)}"))
            return int(row.fetchone()[0])  # type: ignore[index]

    def last_ingest(self) -> float | None:
        with self._txn() as (conn, view):
            row = conn.execute(
                self._sql(f"SELECT max(f.ingested_at) FROM {{s}}.files f WHERE {visible('f', view)}")
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
            generation = self.rows.begin_change(conn, record.path)
            self.rows.retire(conn, record.path, generation)
            file_id = self.rows.insert_file(conn, record, generation)
            for chunks, vectors in batches:
                matrix = np.asarray(vectors, dtype=np.float32).reshape(-1, self.manifest.dimension)
                written += self.rows.insert_chunks(conn, file_id, chunks, matrix, generation)
        self._unanalyzed += written
        return written

    def remove_file(self, path: str) -> int:
        self._check_writable()
        with self._txn() as (conn, _):
            return self.rows.retire(conn, path, self.rows.begin_change(conn, path))

    def touch_file(self, record: FileRecord) -> None:
        self._check_writable()
        with self._txn() as (conn, _):
            conn.execute(
                self._sql(
                    "UPDATE {s}.files SET mtime = %s, name = %s, hash = %s"
                    " WHERE path = %s AND removed IS NULL"
                ),
                (record.mtime, record.name, record.hash, record.path),
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
        if self._unanalyzed >= ANALYZE_AFTER:  # the lexical side reads common terms' shares from them
            with self._lock:
                self.conn.execute(self._sql("ANALYZE {s}.chunks"))
            self._unanalyzed = 0
        logger.info("index committed name=%s generation=%d purged_files=%d", self.name, committed, purged)

    def close(self) -> None:
        with self._lock:
            self.conn.close()

    def claims(self, owner: str, lease: float) -> FileClaims:
        """One ingest worker's claims on this index's files (see `rag.store.pgvector.leases`)."""
        return FileClaims(self._sql, self._txn, owner, lease)

    # -- internals ---------------------------------------------------------------

    def _check_writable(self) -> None:
        if self.readonly:
            raise RagError(f"index {self.name!r} is open read-only")
