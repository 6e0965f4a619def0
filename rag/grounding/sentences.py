"""Sentences cut out of a text with their character offsets: what attribution, presence
and trimming compare, one sentence at a time."""

from __future__ import annotations

import re
from dataclasses import dataclass

# A sentence ends at . ! ? followed by space; a paragraph ends at a blank line; a line
# that starts a list item, a table row, a heading or a code fence starts a new piece. A
# single line break inside a paragraph (hard-wrapped text) ends nothing.
_SENTENCE_END = re.compile(r"(?<=[.!?…])[\"'»”)\]]*(?=\s)|\n\s*\n\s*|\n(?=[ \t]*(?:[-*+•]\s|\d+[.)]\s|\||#))")
_FENCED = re.compile(r"```.*?(?:```|$)", re.DOTALL)  # a code block is one piece


@dataclass(frozen=True)
class Piece:
    """A sentence: its text and where it lies in the text it was cut from."""

    text: str
    start: int
    end: int


_ABBREVIATION = re.compile(
    r"(?:\b(?:[A-Za-z]|e\.g|i\.e|etc|cf|vs|Mr|Mrs|Dr|Prof|St|No|p|pp|"
    r"fig|Fig|M|Mme|Mlle|art|chap|ex|env|resp|al)|\w\.\w)\.$"
)


def split_sentences(text: str) -> list[Piece]:
    """Sentences with their character offsets in `text` (stripped of surrounding space).
    A period after an abbreviation ("e.g.", "M.", "p.") or an initial ends no sentence;
    a code block is one piece."""
    fences = [(m.start(), m.end()) for m in _FENCED.finditer(text)]
    cuts = {0, len(text)}
    for start, end in fences:
        cuts.update((start, end))
    for match in _SENTENCE_END.finditer(text):
        end = match.end()
        if any(a < end < b for a, b in fences):
            continue
        at_period = not match.group().startswith("\n")
        if at_period and _ABBREVIATION.search(text[max(0, end - 12) : end]):
            continue
        cuts.add(end)
    pieces: list[Piece] = []
    bounds = sorted(cuts)
    for start, end in zip(bounds, bounds[1:], strict=False):
        raw = text[start:end]
        stripped = raw.strip()
        if stripped:
            lead = len(raw) - len(raw.lstrip())
            pieces.append(Piece(stripped, start + lead, start + lead + len(stripped)))
    return pieces
