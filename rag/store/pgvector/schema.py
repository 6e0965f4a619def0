"""The PostgreSQL schema of the pgvector store, and its numbered migrations.

    rag_schema_version(version)         migrations applied to the database, by number
    rag_indexes(name, number, manifest, schema_version)
                                        the named indexes; index N lives in schema rag_ix_N
    rag_ix_N.meta(key, value)           committed: the generation readers see
    rag_ix_N.generation                 a sequence: one generation per document change
    rag_ix_N.files, rag_ix_N.chunks     versioned rows (added/removed generations), as in the
                                        local store; chunks hold their vector (pgvector) and
                                        their terms (a tsvector made by the `french` or
                                        `english` configuration, see
                                        rag.store.pgvector.lexical)
    rag_ix_N.claims(path, owner, expires)
                                        files ingest workers are working on

Migrations run on first use, in one transaction under an advisory lock, so workers that
start at once neither race nor apply one twice: the database's (`MIGRATIONS`) when a
catalog connects, an index's (`INDEX_MIGRATIONS`, recorded in its `rag_indexes` row)
when it is created or opened for writing. A new migration is one more numbered entry.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rag.store.pgvector.lexical import TERMS_FUNCTIONS, reanalyze

if TYPE_CHECKING:
    import psycopg

logger = logging.getLogger(__name__)

MIGRATION_LOCK = 0x7261_6701  # advisory lock key held while migrating ("rag" 1)

MIGRATIONS: list[tuple[int, str]] = [
    (
        1,
        """
        CREATE EXTENSION IF NOT EXISTS vector;
        CREATE TABLE rag_indexes (
            name text PRIMARY KEY,
            number bigserial UNIQUE,
            manifest jsonb NOT NULL,
            schema_version integer NOT NULL DEFAULT 0,
            created_at timestamptz NOT NULL DEFAULT now()
        );
        """,
    ),
    # The functions that make chunks' and questions' terms (rag.store.pgvector.lexical).
    (2, TERMS_FUNCTIONS),
]


def _reanalyze(conn: psycopg.Connection[tuple[Any, ...]], schema: str, manifest: dict[str, Any]) -> None:
    done = reanalyze(conn, schema, bool(manifest.get("chunk_context", False)))
    logger.info("index terms made again schema=%s chunks=%d", schema, done)


# Per index: SQL, where {s} is its schema, {dim} its vector dimension, {index} the vector
# index DDL; or a function of (connection, schema, manifest) for what SQL alone cannot do.
IndexMigration = str | Callable[["psycopg.Connection[tuple[Any, ...]]", str, dict[str, Any]], None]
INDEX_MIGRATIONS: list[tuple[int, IndexMigration]] = [
    (
        1,
        """
        CREATE SCHEMA {s};
        CREATE TABLE {s}.meta (key text PRIMARY KEY, value bigint NOT NULL);
        INSERT INTO {s}.meta VALUES ('committed', 0);
        CREATE SEQUENCE {s}.generation;
        CREATE TABLE {s}.files (
            id bigserial PRIMARY KEY,
            path text NOT NULL,
            name text NOT NULL DEFAULT '',
            hash text NOT NULL,
            size bigint NOT NULL,
            mtime double precision NOT NULL,
            ingested_at double precision NOT NULL,
            title text NOT NULL DEFAULT '',
            type text NOT NULL DEFAULT '',
            lang text NOT NULL DEFAULT '',
            added bigint NOT NULL,
            removed bigint
        );
        CREATE UNIQUE INDEX ON {s}.files (path) WHERE removed IS NULL;
        CREATE TABLE {s}.chunks (
            id bigserial PRIMARY KEY,
            file_id bigint NOT NULL REFERENCES {s}.files (id) ON DELETE CASCADE,
            ordinal integer NOT NULL,
            text text NOT NULL,
            page_start integer,
            page_end integer,
            heading text NOT NULL,
            lang text NOT NULL,
            vector vector({dim}) NOT NULL,
            terms tsvector NOT NULL,
            length integer NOT NULL,
            added bigint NOT NULL,
            removed bigint
        );
        CREATE INDEX ON {s}.chunks (file_id);
        CREATE INDEX ON {s}.chunks USING gin (terms);
        {index}
        CREATE TABLE {s}.claims (
            path text PRIMARY KEY,
            owner text NOT NULL,
            expires timestamptz NOT NULL
        );
        """,
    ),
    # Terms made by the `french` and `english` configurations, no longer by `simple`.
    (2, _reanalyze),
]

VECTOR_INDEXES = {
    # Inner product: vectors are L2-normalized, so it is their cosine similarity.
    "hnsw": "CREATE INDEX ON {s}.chunks USING hnsw (vector vector_ip_ops);",
    "ivfflat": "CREATE INDEX ON {s}.chunks USING ivfflat (vector vector_ip_ops) WITH (lists = 100);",
}


def schema_name(number: int) -> str:
    """The PostgreSQL schema of index number `number` (names may not fit an identifier)."""
    return f"rag_ix_{int(number)}"


def migrate(conn: psycopg.Connection[tuple[Any, ...]]) -> int:
    """Apply the database's missing migrations; the version it is at."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS rag_schema_version (version integer PRIMARY KEY, "
            "applied_at timestamptz NOT NULL DEFAULT now())"
        )
        row = conn.execute("SELECT coalesce(max(version), 0) FROM rag_schema_version").fetchone()
        current = int(row[0]) if row else 0
        for number, sql in MIGRATIONS:
            if number > current:
                conn.execute(sql.encode())
                conn.execute("INSERT INTO rag_schema_version (version) VALUES (%s)", (number,))
                logger.info("store migrated version=%d", number)
                current = number
    return current


def migrate_index(
    conn: psycopg.Connection[tuple[Any, ...]], name: str, dimension: int, vector_index: str
) -> None:
    """Apply an index's missing migrations (inside the caller's transaction)."""
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
    row = conn.execute(
        "SELECT number, schema_version, manifest FROM rag_indexes WHERE name = %s FOR UPDATE", (name,)
    ).fetchone()
    if row is None:
        return
    number, current, manifest = int(str(row[0])), int(str(row[1])), dict(row[2])
    schema = schema_name(number)
    for version, step in INDEX_MIGRATIONS:
        if version > current:
            if isinstance(step, str):
                ddl = step.format(
                    s=schema, dim=int(dimension), index=VECTOR_INDEXES[vector_index].format(s=schema)
                )
                conn.execute(ddl.encode())
            else:
                step(conn, schema, manifest)
            conn.execute("UPDATE rag_indexes SET schema_version = %s WHERE name = %s", (version, name))
            logger.info("index migrated name=%s version=%d", name, version)


def index_version() -> int:
    """The schema version this code writes indexes at."""
    return INDEX_MIGRATIONS[-1][0]
