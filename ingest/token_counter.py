"""The chunker's token counts: each text counted with tiktoken and with the embedder's
own tokenizer, and whether counts fit a chunk.

A chunk holds at most `size` tiktoken tokens and, on top of that, no more tokens than the
embedder reads (`max_limit`, special tokens included). Counts are remembered for the page
being chunked, and the embedder's are made many texts at a time where it can: with its
token ids (`pieces_many`), else with its batch counter (`limit_many`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rag.util import get_encoding


class TokenCounter:
    """Counts texts for a chunker of `size` tokens; see the module for `limit`, `max_limit`,
    `limit_many` and `pieces_many` (the `Chunker`'s arguments)."""

    def __init__(
        self,
        size: int,
        *,
        encoding: str,
        limit: Callable[[str], int] | None,
        max_limit: int | None,
        limit_many: Callable[[list[str]], list[int]] | None,
        pieces_many: Callable[[list[str]], list[list[int]] | None] | None,
    ) -> None:
        self.size = size
        self.encoding: Any = get_encoding(encoding)
        self._limit = limit if max_limit is not None else None
        self._max_limit = max_limit
        self._specials = limit("") if self._limit is not None and limit is not None else 0
        # Counting many texts in one call is several times faster with a Rust tokenizer; an
        # embedder's `count_tokens_batch` is used when `limit` is its `count_tokens`.
        owner = getattr(limit, "__self__", None)
        self._limit_many = limit_many or getattr(owner, "count_tokens_batch", None)
        self._pieces_many = pieces_many if self._limit is not None else None
        self._counted: dict[str, int] = {}  # embedder counts of the page being chunked
        self._ids: dict[str, list[int]] = {}  # and their ids, from `pieces_many`
        self._token_counts: dict[str, int] = {}  # tiktoken counts of the page's units

    def new_page(self) -> None:
        """Forget the counts of the page before."""
        self._counted.clear()
        self._ids.clear()
        self._token_counts.clear()

    def count(self, text: str) -> int:
        """The tiktoken tokens of `text`."""
        return len(self.encoding.encode(text, disallowed_special=()))

    def tokens(self, text: str) -> int:
        """`count`, remembered for the page being chunked."""
        known = self._token_counts.get(text)
        if known is None:
            known = self._token_counts[text] = self.count(text)
        return known

    def within(self, text: str, tokens: int) -> bool:
        """Whether `text` holds at most `tokens` tiktoken tokens. Each word (a run without
        white space) is at least one token, so a text of more words is not counted."""
        return len(text.split()) <= tokens and self.tokens(text) <= tokens

    def pieces(self, text: str) -> int:
        """The embedder tokens of `text`, special tokens left out (0 without an embedder)."""
        if self._limit is None:
            return 0
        known = self._counted.get(text)
        return known if known is not None else self._limit(text) - self._specials

    def ids(self, text: str) -> list[int] | None:
        """The embedder token ids of `text`, when they were counted with `pieces_many`."""
        return self._ids.get(text)

    def joined(self, texts: list[str]) -> list[int] | None:
        """The ids of texts joined by white space: theirs joined (None if one is unknown)."""
        return join_ids([self._ids.get(t) for t in texts])

    def count_many(self, texts: list[str]) -> None:
        """Count the texts with the embedder's tokenizer in one call, for `pieces`."""
        if self._limit is None or (self._limit_many is None and self._pieces_many is None):
            return
        # A text of more tokens than a chunk holds is cut whatever its embedder count: it
        # is not counted (its parts are, if they fit).
        todo = [t for t in dict.fromkeys(texts) if t not in self._counted and self.within(t, self.size)]
        if not todo:
            return
        found = self._pieces_many(todo) if self._pieces_many is not None else None
        if found is not None:
            self._ids.update(zip(todo, found, strict=True))
            self._counted.update((t, len(ids)) for t, ids in zip(todo, found, strict=True))
            return
        self._pieces_many = None  # a tokenizer that does not join its pieces: counts only
        if self._limit_many is None:
            return
        counts = self._limit_many(todo)
        self._counted.update((t, n - self._specials) for t, n in zip(todo, counts, strict=True))

    def fits(self, tokens: int, pieces: int, room: tuple[int, int] = (0, 0)) -> bool:
        """Whether that many tokens fit a chunk, less `room` (tokens, embedder tokens)."""
        if tokens > self.size - room[0]:
            return False
        if self._max_limit is None or self._limit is None:
            return True
        return pieces + room[1] + self._specials <= self._max_limit


def join_ids(parts: list[list[int] | None]) -> list[int] | None:
    """Token ids of texts joined: theirs, one after the other (None if one is unknown)."""
    if any(p is None for p in parts):
        return None
    return [i for p in parts if p is not None for i in p]
