"""SQL pieces the pgvector store's modules share: which rows a view sees, filters."""

from __future__ import annotations

from typing import Any

from rag.store.base import Filters
from rag.store.globs import glob_regex

FILE_COLUMNS = "f.path, f.hash, f.size, f.mtime, f.ingested_at, f.name, f.title, f.type, f.lang"
CHUNK_COLUMNS = (
    "c.id, c.text, CASE f.name WHEN '' THEN f.path ELSE f.name END, c.ordinal, "
    "c.page_start, c.page_end, c.heading"
)


# The committed generation, read by the statement itself (one statement sees one snapshot).
COMMITTED = "(SELECT value FROM {s}.meta WHERE key = 'committed')"


def visible(alias: str, view: int | str | None) -> str:
    """Rows a view sees: the live rows (a writer, None) or those of a committed generation
    (a number, or COMMITTED)."""
    if view is None:
        return f"{alias}.removed IS NULL"
    at = view if isinstance(view, str) else str(int(view))
    return f"({alias}.added <= {at} AND ({alias}.removed IS NULL OR {alias}.removed > {at}))"


def file_filter(filters: Filters | None) -> tuple[str, list[Any]]:
    """` AND c.file_id IN (...)` for the filters, and its parameters."""
    if not filters:
        return "", []
    parts: list[str] = []
    args: list[Any] = []
    if filters.path:
        parts.append("CASE f.name WHEN '' THEN f.path ELSE f.name END ~ %s")
        args.append(glob_regex(filters.path))
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
