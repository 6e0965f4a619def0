"""What every loader yields (`Page`) and the base class they share (`Loader`)."""

from __future__ import annotations

import itertools
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from rag.config import IngestSettings


@dataclass(frozen=True)
class Page:
    """Text of one page (PDF, slide, sheet) or one block of a document (number None).

    `markdown`: the text marks its structure in Markdown (`#` headings, `|` tables), so the
    chunker follows it; plain text and code are not read that way. `document`: "" for the
    file itself, else the name of a document inside it (an e-mail's attachment), which is
    ingested as its own document, `<file>/<document>`. `ocr`: the text was read from an
    image by OCR. `title`: the document's title from its metadata (PDF), on its first page.
    """

    text: str
    number: int | None = None
    markdown: bool = False
    document: str = ""
    ocr: bool = False
    title: str = ""  # the document's title from its metadata, on its first page only


class Loader(ABC):
    """Reads one kind of document. `pages` is a plain function of the path (run in a child
    process by the worker); what it yields is plain data."""

    suffixes: tuple[str, ...] = ()

    def __init__(self, options: IngestSettings | None = None) -> None:
        self.options = options or IngestSettings.model_validate({})
        #: The loader of a file found inside this one (an e-mail's attachment), by its
        #: name; `loader_for` sets it to the registry's, so no loader imports the registry.
        self.nested: Callable[[Path], Loader | None] = _no_loader

    @abstractmethod
    def pages(self, path: Path) -> Iterator[Page]:
        """The document's text, page by page or block by block."""

    def documents(self, path: Path) -> Iterator[tuple[str, Iterator[Page]]]:
        """(name, pages) of the file itself ("") and of each document inside it."""
        return documents(self.pages(path))


def _no_loader(path: Path) -> Loader | None:
    """No file inside another is read (the default, before `loader_for` sets its own)."""
    return None


def documents(pages: Iterator[Page]) -> Iterator[tuple[str, Iterator[Page]]]:
    """A page stream cut into documents: consecutive pages of the same `Page.document`.

    Each inner iterator must be consumed before the next pair is taken.
    """
    yield from itertools.groupby(pages, key=lambda p: p.document)
