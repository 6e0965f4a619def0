"""Text files: plain text and code, Markdown, CSV and JSON, in any encoding."""

from __future__ import annotations

import codecs
import csv
import io
import json
import logging
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from ingest.loaders.base import Loader, Page
from ingest.loaders.tables import markdown_table
from rag.errors import LoaderError

logger = logging.getLogger(__name__)

SNIFF_BYTES = 256 * 1024
BLOCK_BYTES = 1024 * 1024
_COMMON = ["cp1252", "latin_1", "iso8859_15", "utf_16", "cp1251", "shift_jis", "gb18030"]


class TextLoader(Loader):
    """Plain text and source code, in any encoding, streamed block by block."""

    suffixes: tuple[str, ...] = (
        ".txt",
        ".text",
        ".rst",
        ".log",
        ".tex",
        ".org",
        ".adoc",
        ".py",
        ".js",
        ".ts",
        ".tsx",
        ".jsx",
        ".java",
        ".kt",
        ".c",
        ".h",
        ".cc",
        ".cpp",
        ".hpp",
        ".cs",
        ".go",
        ".rs",
        ".rb",
        ".php",
        ".swift",
        ".scala",
        ".sh",
        ".bash",
        ".sql",
        ".r",
        ".m",
        ".lua",
        ".pl",
        ".yaml",
        ".yml",
        ".toml",
        ".ini",
        ".cfg",
        ".conf",
        ".xml",
        ".css",
        ".scss",
    )

    def pages(self, path: Path) -> Iterator[Page]:
        for text in _whole_paragraphs(read_text_blocks(path)):
            yield Page(text)


class MarkdownLoader(TextLoader):
    """Markdown: kept as text; the chunker follows its headings and tables."""

    suffixes: tuple[str, ...] = (".md", ".markdown", ".mdx")

    def pages(self, path: Path) -> Iterator[Page]:
        for text in _whole_paragraphs(read_text_blocks(path)):
            yield Page(text, markdown=True)


class CsvLoader(Loader):
    """CSV and TSV: a Markdown table, the first row as its header."""

    suffixes = (".csv", ".tsv")

    def pages(self, path: Path) -> Iterator[Page]:
        text = "".join(read_text_blocks(path))
        dialect: Any = csv.excel_tab if path.suffix.lower() == ".tsv" else csv.excel
        try:
            table = markdown_table(csv.reader(io.StringIO(text), dialect))
        except csv.Error as exc:
            raise LoaderError(f"invalid CSV: {exc}") from exc
        if not table:
            raise LoaderError("empty CSV")
        yield Page(table, markdown=True)


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


def _json_text(text: str, name: str) -> str:
    try:
        return json.dumps(json.loads(text), indent=1, ensure_ascii=False)
    except json.JSONDecodeError as exc:
        raise LoaderError(f"invalid JSON in {name}: {exc}") from exc
