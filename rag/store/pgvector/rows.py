"""Writing one pgvector index's documents: versioned rows, in the caller's transaction.

A change takes the path's advisory lock (two workers on one file take turns, never both
insert it) and a new generation from the index's sequence; the document's live rows are
retired at that generation (deleted outright if no reader can see them yet), then its new
rows are inserted, each chunk with its vector and its terms (`rag.store.pgvector.lexical`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from rag.analysis import detect_language
from rag.store.base import FileRecord
from rag.store.pgvector.lexical import TERM_COUNT, TERMS, terms_input
from rag.types import Chunk

if TYPE_CHECKING:
    import numpy as np
    import psycopg
    from numpy.typing import NDArray


class PgRows:
    """The files and chunks rows of one index (its schema put in by `sql`)."""

    def __init__(self, sql: Callable[[str], bytes], schema: str, chunk_context: bool) -> None:
        self.sql = sql
        self.schema = schema
        self.chunk_context = chunk_context  # whether a chunk's terms include its context header

    def committed(self, conn: psycopg.Connection[tuple[Any, ...]]) -> int:
        """The generation readers see."""
        row = conn.execute(self.sql("SELECT value FROM {s}.meta WHERE key = 'committed'")).fetchone()
        return int(row[0]) if row else 0

    def begin_change(self, conn: psycopg.Connection[tuple[Any, ...]], path: str) -> int:
        """(In a write transaction) wait for any other writer of this path; a new generation."""
        conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"{self.schema}:{path}",))
        row = conn.execute(self.sql("SELECT nextval('{s}.generation')")).fetchone()
        return int(row[0]) if row else 0

    def retire(self, conn: psycopg.Connection[tuple[Any, ...]], path: str, generation: int) -> int:
        """Retire a document's live rows at `generation`; how many chunks it had. Rows no
        reader can see yet (added after the last commit) are deleted outright."""
        sql = self.sql
        row = conn.execute(
            sql("SELECT id, added FROM {s}.files WHERE path = %s AND removed IS NULL"), (path,)
        ).fetchone()
        if row is None:
            return 0
        file_id, added = int(row[0]), int(row[1])
        count = conn.execute(sql("SELECT count(*) FROM {s}.chunks WHERE file_id = %s"), (file_id,)).fetchone()
        if added > self.committed(conn):
            conn.execute(sql("DELETE FROM {s}.files WHERE id = %s"), (file_id,))  # chunks cascade
        else:
            conn.execute(sql("UPDATE {s}.chunks SET removed = %s WHERE file_id = %s"), (generation, file_id))
            conn.execute(sql("UPDATE {s}.files SET removed = %s WHERE id = %s"), (generation, file_id))
        return int(count[0]) if count else 0

    def insert_file(
        self, conn: psycopg.Connection[tuple[Any, ...]], record: FileRecord, generation: int
    ) -> int:
        """A document's new row; its id."""
        row = conn.execute(
            self.sql(
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
        return int(row[0]) if row else 0

    def insert_chunks(
        self,
        conn: psycopg.Connection[tuple[Any, ...]],
        file_id: int,
        chunks: Sequence[Chunk],
        vectors: NDArray[np.float32],
        generation: int,
    ) -> int:
        """A document's chunks, with their vectors and terms; how many."""
        rows = []
        for chunk, vector in zip(chunks, vectors, strict=True):
            lang = detect_language(chunk.text)
            searched = chunk.context if self.chunk_context else chunk.text
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
                    generation,
                    *terms_input(searched, lang),
                )
            )
        with conn.cursor() as cur:
            cur.executemany(
                self.sql(
                    "INSERT INTO {s}.chunks "
                    "(file_id, ordinal, text, page_start, page_end, heading, lang, vector,"
                    " terms, length, added) SELECT %s, %s, %s, %s, %s, %s, %s, %s, t.v, "
                    f"{TERM_COUNT}, %s FROM (SELECT {TERMS} AS v) t"
                ),
                rows,
            )
        return len(rows)
