"""EPUB books (ebooklib): one page per chapter in reading order, its title as heading."""

from __future__ import annotations

import logging
import posixpath
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ingest.loaders.base import Loader, Page
from ingest.loaders.web import html_to_markdown
from rag.errors import LoaderError

logger = logging.getLogger(__name__)


class EpubLoader(Loader):
    """EPUB: the spine's documents in order; a chapter without a heading of its own gets
    its title from the table of contents."""

    suffixes = (".epub",)

    def pages(self, path: Path) -> Iterator[Page]:
        import ebooklib
        from ebooklib import epub

        try:
            book = epub.read_epub(str(path), options={"ignore_ncx": False})
        except Exception as exc:
            raise LoaderError(f"corrupt EPUB: {exc}") from exc
        titles = _toc_titles(book.toc)
        found = False
        for idref, _linear in book.spine:
            item = book.get_item_with_id(idref)
            if item is None or item.get_type() != ebooklib.ITEM_DOCUMENT:
                continue
            text = html_to_markdown(item.get_content().decode("utf-8", "replace"))
            title = titles.get(posixpath.normpath(item.get_name()))
            if title and not text.lstrip().startswith("#"):
                text = f"# {title}\n\n{text}"
            if text.strip():
                found = True
                yield Page(text, markdown=True)
        if not found:
            raise LoaderError("EPUB has no text")


def _toc_titles(toc: Any) -> dict[str, str]:
    """File name (without #fragment) to the first title the table of contents gives it."""
    titles: dict[str, str] = {}
    for entry in toc:
        if isinstance(entry, tuple):  # (section, children)
            section, children = entry
            _add(titles, section)
            titles.update({k: v for k, v in _toc_titles(children).items() if k not in titles})
        else:
            _add(titles, entry)
    return titles


def _add(titles: dict[str, str], entry: Any) -> None:
    href = getattr(entry, "href", "") or ""
    title = getattr(entry, "title", "") or ""
    if href and title:
        titles.setdefault(posixpath.normpath(href.split("#", 1)[0]), title)
