"""Tables as Markdown: a header row, a separator, then one line per row.

The chunker recognises this form, keeps a table's rows together and repeats the header
row in each piece of a table too long for one chunk.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

_SPACE = re.compile(r"\s+")


def markdown_table(rows: Iterable[Sequence[object]]) -> str:
    """The rows as a Markdown table, the first one as its header; "" when all are empty.

    Cells are flattened to one line and `|` is escaped. Empty trailing columns and empty
    rows are dropped; a missing header cell is named by its column number.
    """
    cleaned = [[_cell(value) for value in row] for row in rows]
    cleaned = [row for row in cleaned if any(row)]
    if not cleaned:
        return ""
    width = max(max((i + 1 for i, c in enumerate(row) if c), default=0) for row in cleaned)
    cleaned = [(row + [""] * width)[:width] for row in cleaned]
    header = [c or f"column {i + 1}" for i, c in enumerate(cleaned[0])]
    lines = [_line(header), _line(["---"] * width)]
    lines.extend(_line(row) for row in cleaned[1:])
    return "\n".join(lines)


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return _SPACE.sub(" ", str(value)).strip().replace("|", "\\|")


def _line(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"
