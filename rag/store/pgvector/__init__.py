"""The pgvector store: named indexes in one PostgreSQL database, shared by many machines."""

from rag.store.pgvector.catalog import PgCatalog

__all__ = ["PgCatalog"]
