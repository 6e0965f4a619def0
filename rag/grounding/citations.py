"""Citations like [1] or [1, 2]: kept when they point to a source, removed when not."""

from __future__ import annotations

import re
from collections.abc import Iterable

_CITATION = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")
_MAX_OPEN = 16  # longest "[1, 2, 3…" we hold back while streaming


def clean(text: str, valid: Iterable[int]) -> tuple[str, list[int]]:
    """Text without citations to unknown sources, and the sources cited, in order."""
    allowed = set(valid)
    cited: list[int] = []

    def keep(match: re.Match[str]) -> str:
        numbers = [int(n) for n in re.findall(r"\d+", match.group(1))]
        good = [n for n in numbers if n in allowed]
        cited.extend(n for n in good if n not in cited)
        return "[" + ", ".join(str(n) for n in good) + "]" if good else ""

    return _CITATION.sub(keep, text), cited


class CitationFilter:
    """Cleans citations in streamed text: holds back an open '[' until it closes."""

    def __init__(self, valid: Iterable[int]) -> None:
        self.valid = set(valid)
        self.cited: list[int] = []
        self._held = ""

    def feed(self, text: str) -> str:
        out = []
        for ch in text:
            if self._held:
                self._held += ch
                if ch == "]" or not (ch.isdigit() or ch in ", ") or len(self._held) > _MAX_OPEN:
                    out.append(self._release())
            elif ch == "[":
                self._held = ch
            else:
                out.append(ch)
        return "".join(out)

    def flush(self) -> str:
        return self._release()

    def _release(self) -> str:
        held, self._held = self._held, ""
        cleaned, cited = clean(held, self.valid)
        self.cited.extend(n for n in cited if n not in self.cited)
        return cleaned
