"""Which indexes the current request may open: a neutral scope the core enforces.

The API sets the scope of each request (`scoped`) from its key; `Pipeline.index` and
`Pipeline.index_names` honour it, so a route cannot open or list an index outside it. An
index out of scope is refused exactly as a missing one. Outside a request (the CLI, the
library, ingest jobs) there is no scope: every index is visible.

A ContextVar follows the request into `asyncio.to_thread` and anyio's worker threads,
which copy the context; a bare `run_in_executor` does not (see `rag.threads`).
"""

from __future__ import annotations

from collections.abc import Iterable
from contextvars import ContextVar, Token

from rag.store.base import not_found

#: The index names the current request may see; None: every one.
_scope: ContextVar[frozenset[str] | None] = ContextVar("rag_index_scope", default=None)


def scoped(names: Iterable[str] | None) -> Token[frozenset[str] | None]:
    """Limit this context to `names` (None: no limit)."""
    return _scope.set(None if names is None else frozenset(names))


def check_visible(name: str) -> str:
    """`name`, or the IndexNotFoundError a missing index raises when it is out of scope."""
    scope = _scope.get()
    if scope is not None and name not in scope:
        raise not_found(name)
    return name


def visible(names: Iterable[str]) -> list[str]:
    """The names this context may see, in their order."""
    scope = _scope.get()
    return list(names) if scope is None else [n for n in names if n in scope]


__all__ = ["check_visible", "scoped", "visible"]
