"""The path globs of search filters: one grammar, read alike by every store.

    *        any run of characters, '/' included
    ?        any one character
    [abc]    one of a set: characters and ranges ('a-z'); '^' first negates it, ']' first
             and '-' first or last are themselves

This is SQLite's GLOB, which the local store runs; `glob_regex` writes the same pattern as a
regular expression that PostgreSQL and Python both read, for the pgvector store and for
matching paths in Python. A pattern outside the grammar (an unclosed '[', a range whose
end comes before its start, a control character) is refused as the client's error, in
`parse_glob`, before any store sees it: SQLite would match nothing and PostgreSQL fail.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rag.errors import InvalidRequestError


@dataclass(frozen=True)
class CharSet:
    """`[...]`: one character in (or, negated, out of) these inclusive ranges."""

    negated: bool
    ranges: tuple[tuple[str, str], ...]


#: "*" and "?" are the wildcards; any other string is that one character.
GlobToken = str | CharSet


def parse_glob(pattern: str) -> list[GlobToken]:
    """The pattern's tokens, or InvalidRequestError saying what is wrong with it."""

    def refuse(reason: str) -> InvalidRequestError:
        return InvalidRequestError(f"path filter {pattern!r} is not a valid glob: {reason}")

    if not is_text(pattern):
        raise refuse("it contains a control character or one that is not text")
    tokens: list[GlobToken] = []
    i = 0
    while i < len(pattern):
        if pattern[i] != "[":
            tokens.append(pattern[i])
            i += 1
            continue
        start = i
        i += 1
        negated = pattern.startswith("^", i)
        i += negated
        ranges: list[tuple[str, str]] = []
        if pattern.startswith("]", i):  # a ']' first is itself, never a range's start
            ranges.append(("]", "]"))
            i += 1
        while i < len(pattern) and pattern[i] != "]":
            low = pattern[i]
            if pattern.startswith("-", i + 1) and i + 2 < len(pattern) and pattern[i + 2] != "]":
                high = pattern[i + 2]
                if high < low:
                    raise refuse(f"the range {low}-{high} runs backwards")
                ranges.append((low, high))
                i += 3
            else:
                ranges.append((low, low))
                i += 1
        if i >= len(pattern):
            raise refuse(f"the '[' at character {start + 1} is not closed by ']'")
        i += 1  # the closing ']'
        tokens.append(CharSet(negated, tuple(ranges)))
    return tokens


def is_text(value: str) -> bool:
    """Whether a filter's value holds text only: no control character (NUL included) and
    no lone surrogate, which neither SQLite nor PostgreSQL can be sent."""
    return not any(ord(c) < 32 or ord(c) == 127 or 0xD800 <= ord(c) <= 0xDFFF for c in value)


def glob_regex(pattern: str) -> str:
    """The glob as a regular expression of the whole path, for PostgreSQL's `~` and for
    Python's `re`: every character is written as a `\\u` escape, which both read as that
    character alone, in a set or out of it."""
    out = ["(?s)^"]
    for token in parse_glob(pattern):
        if token == "*":
            out.append(".*")
        elif token == "?":
            out.append(".")
        elif isinstance(token, str):
            out.append(_escape(token))
        else:
            members = "".join(
                _escape(lo) if lo == hi else f"{_escape(lo)}-{_escape(hi)}" for lo, hi in token.ranges
            )
            out.append(f"[{'^' if token.negated else ''}{members}]")
    return "".join(out) + "$"


def glob_matcher(pattern: str) -> re.Pattern[str]:
    """The compiled glob: `.match(path)` tells whether a path matches it."""
    return re.compile(glob_regex(pattern))


def _escape(ch: str) -> str:
    code = ord(ch)
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"
