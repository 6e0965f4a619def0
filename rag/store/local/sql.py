"""SQL pieces the local store's modules share: which rows a view sees, filters."""

from __future__ import annotations

from rag.store.base import Filters

CHUNK_COLUMNS = (
    "c.id, c.text, CASE f.name WHEN '' THEN f.path ELSE f.name END, c.ordinal, "
    "c.page_start, c.page_end, c.heading"
)


def file_filter(filters: Filters | None, first: int) -> tuple[str, list[object]]:
    """SQL conditions on `files f` for the filters, numbered from ?`first`, and their values."""
    if not filters:
        return "", []
    parts: list[str] = []
    args: list[object] = []

    def add(sql: str, *values: object) -> None:
        marks = [f"?{first + len(args) + i}" for i in range(len(values))]
        parts.append(sql.format(*marks))
        args.extend(values)

    if filters.path:
        add("CASE f.name WHEN '' THEN f.path ELSE f.name END GLOB {0}", filters.path)
    if filters.types:
        types = [t.lower().lstrip(".") for t in filters.types]
        add(f"f.type IN ({_marks(len(types))})", *types)
    if filters.languages:
        langs = [x.lower() for x in filters.languages]
        add(f"f.lang IN ({_marks(len(langs))})", *langs)
    if filters.modified_after is not None:
        add("f.mtime >= {0}", filters.modified_after)
    if filters.modified_before is not None:
        add("f.mtime < {0}", filters.modified_before)
    return " AND " + " AND ".join(parts), args


def _marks(n: int) -> str:
    return ",".join(f"{{{i}}}" for i in range(n))


def visible(alias: str) -> str:
    """Rows of the view `?` (a generation), or the writer's live rows when it is NULL."""
    return (
        f"(({alias}.removed IS NULL AND ?1 IS NULL) OR ({alias}.added <= ?1 AND "
        f"({alias}.removed IS NULL OR {alias}.removed > ?1)))"
    )
