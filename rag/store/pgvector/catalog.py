"""The pgvector catalog: named indexes in one PostgreSQL database, and their locks.

Several machines share one database: every `rag serve` replica and every ingest worker
connects to it by `store.url`. Locks are PostgreSQL advisory locks, held by a connection
of their own: `lock(name)` is exclusive (deleting an index), `lock_shared(name)` is what
ingest workers take, so any number of them write to one index at once while a deletion
waits for none of them and is refused while one runs. A process that dies loses its
connection, and with it its locks.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from rag.errors import ConfigError, IndexLockedError, InvalidRequestError
from rag.store.abilities import SharedLocks
from rag.store.base import Catalog, check_index_name, not_found
from rag.store.manifest import Manifest
from rag.store.pgvector.schema import index_version, migrate, migrate_index, schema_name
from rag.store.pgvector.store import PgVectorStore

if TYPE_CHECKING:
    import psycopg

    from rag.config import StoreSettings

logger = logging.getLogger(__name__)

LOCK_SPACE = 0x7261_6702  # first key of the index locks ("rag" 2); the second is the name's hash


def connect(url: str, *, autocommit: bool = False) -> psycopg.Connection[tuple[Any, ...]]:
    """A connection to the store's database; one clear error (without the URL, which may
    hold a password) if there is none."""
    import psycopg

    try:
        return psycopg.connect(url, autocommit=autocommit, connect_timeout=10)
    except psycopg.Error as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"cannot connect to the pgvector store (store.url): {reason}") from exc


class PgCatalog(Catalog, SharedLocks):
    """The indexes of one PostgreSQL database (store.kind = pgvector)."""

    def __init__(self, settings: StoreSettings) -> None:
        if settings.url is None or not settings.url.get_secret_value():
            raise ConfigError("store.kind = pgvector needs store.url (postgresql://user:password@host/db)")
        self.settings = settings
        self.url = settings.url.get_secret_value()
        self._conn: psycopg.Connection[tuple[Any, ...]] | None = None
        self._lock = threading.Lock()

    def _db(self) -> psycopg.Connection[tuple[Any, ...]]:
        """The catalog's own connection (autocommit), made and migrated on first use."""
        if self._conn is None or self._conn.closed:
            conn = connect(self.url, autocommit=True)
            migrate(conn)
            self._conn = conn
        return self._conn

    def _row(self, name: str) -> tuple[int, Manifest, int] | None:
        """An index's number, manifest and schema version."""
        with self._lock:
            row = (
                self._db()
                .execute(
                    "SELECT number, manifest, schema_version FROM rag_indexes WHERE name = %s",
                    (check_index_name(name),),
                )
                .fetchone()
            )
        return None if row is None else (int(row[0]), Manifest.model_validate(row[1]), int(row[2]))

    def names(self) -> list[str]:
        with self._lock:
            return [str(r[0]) for r in self._db().execute("SELECT name FROM rag_indexes ORDER BY name")]

    def exists(self, name: str) -> bool:
        return self._row(name) is not None

    def open(self, name: str, *, readonly: bool = False) -> PgVectorStore:
        found = self._row(name)
        if found is None:
            raise not_found(name)
        number, manifest, version = found
        if not readonly or version < index_version():  # a reader too, of an index made by older code
            with self._lock, self._db().transaction():
                migrate_index(self._db(), name, manifest.dimension, self.settings.vector_index)
        return PgVectorStore(
            lambda: connect(self.url, autocommit=True),
            name,
            schema_name(number),
            manifest,
            self.settings,
            readonly=readonly,
        )

    def create(self, name: str, manifest: Manifest) -> PgVectorStore:
        """Create the index; if a worker on another machine created it meanwhile, open theirs."""
        check_index_name(name)
        with self._lock, self._db().transaction():
            self._db().execute(
                "INSERT INTO rag_indexes (name, manifest) VALUES (%s, %s) ON CONFLICT (name) DO NOTHING",
                (name, manifest.model_dump_json()),
            )
            migrate_index(self._db(), name, manifest.dimension, self.settings.vector_index)
        logger.info("index created name=%s version=%d", name, index_version())
        return self.open(name)

    @contextlib.contextmanager
    def lock(self, name: str) -> Iterator[None]:
        with self._advisory(name, shared=False):
            yield

    @contextlib.contextmanager
    def lock_shared(self, name: str) -> Iterator[None]:
        """The right to write to an index beside other workers (not beside a deletion)."""
        with self._advisory(name, shared=True):
            yield

    @contextlib.contextmanager
    def _advisory(self, name: str, *, shared: bool) -> Iterator[None]:
        check_index_name(name)
        conn = connect(self.url, autocommit=True)
        try:
            take = "pg_try_advisory_lock_shared" if shared else "pg_try_advisory_lock"
            row = conn.execute(f"SELECT {take}(%s, hashtext(%s))", (LOCK_SPACE, name)).fetchone()
            if not row or not row[0]:
                raise IndexLockedError(f"index {name!r} is being ingested by another process")
            yield
        finally:
            conn.close()  # releases the lock

    def delete(self, name: str) -> None:
        if not self.exists(name):
            raise not_found(name)
        with self.lock(name), self._lock, self._db().transaction():
            row = (
                self._db()
                .execute("DELETE FROM rag_indexes WHERE name = %s RETURNING number", (name,))
                .fetchone()
            )
            if row is not None:  # one transaction: readers see the index whole or gone
                self._db().execute(f"DROP SCHEMA IF EXISTS {schema_name(int(row[0]))} CASCADE".encode())
        logger.info("index deleted name=%s", name)

    def manifest(self, name: str) -> Manifest | None:
        try:
            found = self._row(name)
        except InvalidRequestError:  # no index can have that name
            return None
        return None if found is None else found[1]

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
