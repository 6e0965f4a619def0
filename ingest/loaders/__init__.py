"""Loaders, registered by file suffix, turn a file into pages of text.

Every loader raises LoaderError with a one-line reason when a file cannot be read;
the worker reports it and goes on with the next file. `loader_for(path, options)` picks
the loader; `options` (the `ingest` settings) turns OCR and PDF tables on or off.

A file may hold other documents (an e-mail's attachments): their pages come after the
file's own, with `Page.document` set to their name; `documents(pages)` cuts the stream
into (name, pages) pairs, to be stored as `<file>/<name>`.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from ingest.loaders.base import Loader, Page, documents
from ingest.loaders.ebook import EpubLoader
from ingest.loaders.mail import EmlLoader
from ingest.loaders.office import DocxLoader, OdfLoader, PptxLoader, XlsxLoader
from ingest.loaders.pdf import PdfLoader
from ingest.loaders.text import (
    CsvLoader,
    JsonLoader,
    MarkdownLoader,
    TextLoader,
    read_text_blocks,
)
from ingest.loaders.web import HtmlLoader
from rag.config import IngestSettings

LOADERS: list[type[Loader]] = [
    TextLoader,
    MarkdownLoader,
    PdfLoader,
    HtmlLoader,
    DocxLoader,
    PptxLoader,
    XlsxLoader,
    OdfLoader,
    EpubLoader,
    EmlLoader,
    CsvLoader,
    JsonLoader,
]
_BY_SUFFIX = {suffix: cls for cls in LOADERS for suffix in cls.suffixes}


def loader_for(path: Path, options: IngestSettings | None = None) -> Loader | None:
    """The loader registered for the file's suffix, or None for an unknown type."""
    cls = _BY_SUFFIX.get(path.suffix.lower())
    if cls is None:
        return None
    loader = cls(options)
    loader.nested = partial(loader_for, options=options)  # a loader crosses processes pickled
    return loader


__all__ = [
    "LOADERS",
    "CsvLoader",
    "DocxLoader",
    "EmlLoader",
    "EpubLoader",
    "HtmlLoader",
    "JsonLoader",
    "Loader",
    "MarkdownLoader",
    "OdfLoader",
    "Page",
    "PdfLoader",
    "PptxLoader",
    "TextLoader",
    "XlsxLoader",
    "documents",
    "loader_for",
    "read_text_blocks",
]
