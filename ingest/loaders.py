"""Loaders, registered by file suffix, turn a file into pages of text.

Every loader raises LoaderError with a one-line reason when a file cannot be read;
the worker reports it and goes on with the next file.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import logging
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag.errors import LoaderError

logger = logging.getLogger(__name__)

SNIFF_BYTES = 256 * 1024
BLOCK_BYTES = 1024 * 1024
_COMMON = ["cp1252", "latin_1", "iso8859_15", "utf_16", "cp1251", "shift_jis", "gb18030"]


@dataclass(frozen=True)
class Page:
    """Text of one page (PDF) or one block of a document (number None)."""

    text: str
    number: int | None = None


class Loader(ABC):
    """Reads one kind of document."""

    suffixes: tuple[str, ...] = ()

    @abstractmethod
    def pages(self, path: Path) -> Iterator[Page]:
        """The document's text, page by page or block by block."""


class TextLoader(Loader):
    """Plain text and source code, in any encoding, streamed block by block."""

    suffixes: tuple[str, ...] = (
        ".txt", ".text", ".rst", ".log", ".tex", ".org", ".adoc",
        ".py", ".js", ".ts", ".tsx", ".jsx", ".java", ".kt", ".c", ".h", ".cc", ".cpp",
        ".hpp", ".cs", ".go", ".rs", ".rb", ".php", ".swift", ".scala", ".sh", ".bash",
        ".sql", ".r", ".m", ".lua", ".pl", ".yaml", ".yml", ".toml", ".ini", ".cfg",
        ".conf", ".xml", ".css", ".scss",
    )  # fmt: skip

    def pages(self, path: Path) -> Iterator[Page]:
        for text in _whole_paragraphs(read_text_blocks(path)):
            yield Page(text)


class MarkdownLoader(TextLoader):
    """Markdown: kept as text; the chunker follows its headings."""

    suffixes: tuple[str, ...] = (".md", ".markdown", ".mdx")


class PdfLoader(Loader):
    """PDF through pypdf: text per page, page numbers from 1."""

    suffixes = (".pdf",)

    def pages(self, path: Path) -> Iterator[Page]:
        from pypdf import PdfReader
        from pypdf.errors import PdfReadError

        try:
            reader = PdfReader(str(path))
            if reader.is_encrypted and not _decrypt_empty(reader):
                raise LoaderError("password-protected PDF")
            count = len(reader.pages)
        except LoaderError:
            raise
        except (PdfReadError, ValueError, KeyError, TypeError, OSError, AttributeError) as exc:
            raise LoaderError(f"corrupt PDF: {exc}") from exc
        found = False
        for number in range(count):
            try:
                text = reader.pages[number].extract_text() or ""
            except Exception as exc:  # pypdf raises many kinds on damaged pages
                logger.warning("unreadable pdf page path=%s page=%d error=%s", path, number + 1, exc)
                continue
            if text.strip():
                found = True
                yield Page(text, number + 1)
        if not found:
            raise LoaderError("PDF has no extractable text (scanned images?): it needs OCR")


class HtmlLoader(Loader):
    """HTML: visible text only."""

    suffixes = (".html", ".htm", ".xhtml")

    def pages(self, path: Path) -> Iterator[Page]:
        from bs4 import BeautifulSoup

        soup = BeautifulSoup("".join(read_text_blocks(path)), "html.parser")
        for tag in soup(["script", "style", "noscript", "template", "head"]):
            tag.decompose()
        for level in range(1, 7):
            for heading in soup.find_all(f"h{level}"):
                heading.insert_before("\n\n" + "#" * level + " ")
                heading.insert_after("\n\n")
        for tag in soup.find_all(["p", "div", "li", "br", "tr", "section", "article"]):
            tag.insert_after("\n")
        text = soup.get_text()
        yield Page(_tidy(text))


class DocxLoader(Loader):
    """Word documents: paragraphs, headings as Markdown headings, tables as rows."""

    suffixes = (".docx",)

    def pages(self, path: Path) -> Iterator[Page]:
        import docx

        try:
            document = docx.Document(str(path))
        except Exception as exc:  # zipfile, lxml and docx errors alike
            raise LoaderError(f"corrupt DOCX: {exc}") from exc
        lines = []
        for paragraph in document.paragraphs:
            style = (paragraph.style.name if paragraph.style is not None else "") or ""
            text = paragraph.text.strip()
            if not text:
                continue
            if style.startswith("Heading") and style[-1:].isdigit():
                lines.append("#" * int(style[-1]) + " " + text)
            else:
                lines.append(text)
        for table in document.tables:
            for row in table.rows:
                lines.append(" | ".join(cell.text.strip() for cell in row.cells))
        yield Page("\n\n".join(lines))


class CsvLoader(Loader):
    """CSV and TSV: one line per row, each value named by its column."""

    suffixes = (".csv", ".tsv")

    def pages(self, path: Path) -> Iterator[Page]:
        text = "".join(read_text_blocks(path))
        dialect: Any = csv.excel_tab if path.suffix.lower() == ".tsv" else csv.excel
        rows = csv.reader(io.StringIO(text), dialect)
        header = next(rows, None)
        if header is None:
            raise LoaderError("empty CSV")
        lines = []
        for row in rows:
            pairs = [f"{h}: {v}" for h, v in zip(header, row, strict=False) if v.strip()]
            if pairs:
                lines.append("; ".join(pairs))
        yield Page("\n".join(lines) if lines else ", ".join(header))


class JsonLoader(Loader):
    """JSON and JSON Lines, as indented text."""

    suffixes = (".json", ".jsonl", ".ndjson")

    def pages(self, path: Path) -> Iterator[Page]:
        text = "".join(read_text_blocks(path))
        if path.suffix.lower() == ".json":
            yield Page(_json_text(text, path.name))
            return
        lines = [_json_text(line, path.name) for line in text.splitlines() if line.strip()]
        yield Page("\n\n".join(lines))


LOADERS: list[Loader] = [
    TextLoader(), MarkdownLoader(), PdfLoader(), HtmlLoader(), DocxLoader(), CsvLoader(),
    JsonLoader(),
]  # fmt: skip


def loader_for(path: Path) -> Loader | None:
    """The loader registered for the file's suffix, or None for an unknown type."""
    suffix = path.suffix.lower()
    for loader in LOADERS:
        if suffix in loader.suffixes:
            return loader
    return None


def read_text_blocks(path: Path) -> Iterator[str]:
    """Decode a text file of any encoding in blocks of about 1 MB (memory stays bounded)."""
    with open(path, "rb") as fh:
        head = fh.read(SNIFF_BYTES)
        if not head.strip():
            raise LoaderError("empty file")
        encoding = _detect_encoding(head)
        decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
        data = head
        while data:
            text = decoder.decode(data)
            if text:
                yield text
            data = fh.read(BLOCK_BYTES)
        tail = decoder.decode(b"", final=True)
        if tail:
            yield tail


def _whole_paragraphs(blocks: Iterable[str]) -> Iterator[str]:
    """The blocks, each but the last ending where a paragraph does (else a line, else a word).

    A big file is then chunked as if it were read whole, with no word cut in two at a block's
    end. What is carried to the next block comes from one block, so memory stays bounded.
    """
    carry = ""
    previous: str | None = None
    for block in blocks:
        if previous is not None:
            text = carry + previous
            cut = _last_break(text, len(carry))
            if cut:
                yield text[:cut]
            carry = text[cut:]
        previous = block
    if previous is not None:
        yield carry + previous


def _last_break(text: str, start: int) -> int:
    """After the last paragraph break, line break or space at or after `start`, else the end."""
    for sep in ("\n\n", "\n", " "):
        at = text.rfind(sep, start)
        if at >= 0:
            return at + len(sep)
    return len(text)


def _detect_encoding(sample: bytes) -> str:
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if b"\0" in sample:
        raise LoaderError("binary file (contains NUL bytes), not text")
    try:
        sample.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError as exc:
        if exc.start >= len(sample) - 4:  # a character cut by the sample's end
            return "utf-8"
    from charset_normalizer import from_bytes

    matches = list(from_bytes(sample))
    if not matches:
        raise LoaderError("binary file or unknown text encoding")
    # Short samples often tie; then the most widely used Western encoding wins,
    # so "très" stays "très" rather than becoming "trčs" in cp1250.
    top = min((m.chaos, -m.coherence) for m in matches)
    tied = [m for m in matches if (m.chaos, -m.coherence) == top]
    tied.sort(key=lambda m: _COMMON.index(m.encoding) if m.encoding in _COMMON else len(_COMMON))
    return str(tied[0].encoding)


def _decrypt_empty(reader: Any) -> bool:
    try:
        return bool(reader.decrypt(""))
    except Exception:  # wrong password or unsupported algorithm
        return False


def _json_text(text: str, name: str) -> str:
    try:
        return json.dumps(json.loads(text), indent=1, ensure_ascii=False)
    except json.JSONDecodeError as exc:
        raise LoaderError(f"invalid JSON in {name}: {exc}") from exc


def _tidy(text: str) -> str:
    lines = [" ".join(line.split()) for line in text.splitlines()]
    out: list[str] = []
    for line in lines:
        if line or (out and out[-1]):
            out.append(line)
    return "\n".join(out).strip()
