"""The local store: one folder per index, SQLite for chunks and vectors, FAISS to search."""

from rag.store.local.catalog import LocalCatalog

__all__ = ["LocalCatalog"]
