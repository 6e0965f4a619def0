"""Stores: where indexes live. One factory picks the backend by `store.kind`.

catalog = make_catalog(settings)         # list, create, lock, delete named indexes
store = open_store(settings, "docs")      # one index: search, replace documents, commit
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rag.store.abilities import FileLeases, SharedIngest, SharedLocks, Taken, Wanted
from rag.store.base import Catalog, FileRecord, Filters, Store, StoreReader, StoreWriter, check_index_name
from rag.store.local import LocalCatalog
from rag.store.manifest import Manifest
from rag.store.readers import StoreReaders

if TYPE_CHECKING:
    from rag.config import Settings


def make_catalog(settings: Settings) -> Catalog:
    """The catalog of the configured backend."""
    kind = settings.store.kind
    if kind == "local":
        return LocalCatalog(settings.indexes_dir, settings.store)
    if kind == "pgvector":
        from rag.store.pgvector import PgCatalog  # psycopg is imported only for this store

        return PgCatalog(settings.store)
    raise AssertionError(f"unknown store kind {kind!r}")  # the settings allow no other


def open_store(settings: Settings, name: str, *, readonly: bool = False) -> Store:
    """One existing index of the configured backend."""
    return make_catalog(settings).open(name, readonly=readonly)


__all__ = [
    "Catalog",
    "FileLeases",
    "FileRecord",
    "Filters",
    "LocalCatalog",
    "Manifest",
    "SharedIngest",
    "SharedLocks",
    "Store",
    "StoreReader",
    "StoreReaders",
    "StoreWriter",
    "Taken",
    "Wanted",
    "check_index_name",
    "make_catalog",
    "open_store",
]
