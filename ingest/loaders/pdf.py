"""PDF: text through PDFium, ruled tables through pdfplumber, scans through Tesseract.

PDFium (pypdfium2) places the characters of a page by their positions, so words keep their
spaces and lines their order where pypdf, which follows the content stream's text
operators, glues the words of TeX-typeset text (bench/pdf_text.py measures both). pypdf is
kept for the files PDFium refuses to open. On top of the raw text:

- a word hyphenated at a line end is rejoined ("juri-" + "dique": "juridique");
- lines repeated at the top or bottom of most pages (running headers, footers, printed
  page numbers: digits count as the same) are left out; `Page.number` is the page's own;
- a page with ruled tables gets them as Markdown tables, in place of their loose cells;
- a page with no text layer is logged, and read by OCR when `ingest.ocr` is on.
"""

from __future__ import annotations

import logging
import re
import time
import unicodedata
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ingest.loaders.base import Loader, Page
from ingest.loaders.ocr import ocr_image
from ingest.loaders.tables import markdown_table
from rag.errors import LoaderError

logger = logging.getLogger(__name__)

EDGE_LINES = 2  # lines looked at, at the top and at the bottom of a page, for headers/footers
MIN_TABLE_RULES = 3  # rules side by side, each way, before a page is searched for tables
MAX_PATHS = 5000  # a page drawing more paths is a picture: not searched for tables
OCR_DPI = 300

_LIGATURES = {"ﬀ": "ff", "ﬁ": "fi", "ﬂ": "fl", "ﬃ": "ffi", "ﬄ": "ffl", "ﬅ": "st", "ﬆ": "st"}
_LIGATURE = re.compile("[" + "".join(_LIGATURES) + "]")
# PDFium marks a hyphen it found at a line end with U+0002; a soft hyphen is never shown.
_MARKED_BREAK = re.compile(r"\x02[ \t]*(?:\r?\n[ \t]*)?|\u00ad(?:[ \t]*\r?\n[ \t]*)?")
_LINE_END_HYPHEN = re.compile(r"(?<=[^\W\d_])[-\u2010\u2011][ \t]*\r?\n[ \t]*(?=[a-zà-öø-ÿ])")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_DIGITS = re.compile(r"\d+")
_SPACES = re.compile(r"\s+")


@dataclass
class _Table:
    top: float
    bottom: float
    x0: float
    x1: float
    text: str


class PdfLoader(Loader):
    """PDF: text per page through PDFium, page numbers from 1."""

    suffixes = (".pdf",)

    def pages(self, path: Path) -> Iterator[Page]:
        pdf = _open(path)
        if pdf is None:  # PDFium cannot read it; pypdf may
            yield from _pypdf_pages(path)
            return
        try:
            yield from self._pages(pdf, path)
        finally:
            pdf.close()

    def _pages(self, pdf: Any, path: Path) -> Iterator[Page]:
        raw: list[str] = []
        for number in range(len(pdf)):
            try:
                raw.append(_page_text(pdf, number))
            except Exception as exc:  # a damaged page must not lose the others
                logger.warning("unreadable pdf page path=%s page=%d error=%s", path, number + 1, exc)
                raw.append("")
        repeated = repeated_lines([text.splitlines() for text in raw])
        tables = _TableFinder(path, self.options.pdf_table_seconds) if self.options.pdf_tables else None
        blank: list[int] = []
        found = False
        for number, text in enumerate(raw, start=1):
            if not text.strip():
                if not _has_images(pdf, number):
                    continue  # a blank page
                if not self.options.ocr:
                    blank.append(number)
                    continue
                text = self._ocr(pdf, number, path)
                if text.strip():
                    found = True
                    yield Page(text, number, ocr=True)
                continue
            found_tables = tables.find(pdf, number) if tables else []
            if found_tables:
                text = _with_tables(pdf, number, found_tables)
            text = clean_text(drop_repeated(text, repeated))
            if text.strip():
                found = True
                yield Page(text, number)
        if blank:
            logger.warning("pdf pages without text path=%s pages=%s: they need OCR (ingest.ocr)",
                           path, _ranges(blank))  # fmt: skip
        if not found:
            raise LoaderError("PDF has no extractable text (scanned images?): it needs OCR "
                              "(set ingest.ocr = true)")  # fmt: skip

    def _ocr(self, pdf: Any, number: int, path: Path) -> str:
        page = pdf[number - 1]
        try:
            image = page.render(scale=OCR_DPI / 72).to_pil()
        finally:
            page.close()
        text = ocr_image(image, self.options.ocr_languages)
        logger.info("ocr path=%s page=%d languages=%s chars=%d", path, number,
                    "+".join(self.options.ocr_languages), len(text))  # fmt: skip
        return clean_text(text)


def clean_text(text: str) -> str:
    """Line ends normalised, hyphenated line ends rejoined, ligatures spelt out, NFC."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _MARKED_BREAK.sub("", text)
    text = _LINE_END_HYPHEN.sub("", text)
    text = _LIGATURE.sub(lambda m: _LIGATURES[m.group()], text)
    text = _CONTROL.sub("", text)
    return unicodedata.normalize("NFC", text).strip()


def repeated_lines(pages: list[list[str]]) -> set[tuple[int, str]]:
    """(place, key) of the lines found at the same place near the top or bottom of most
    pages (at least 3): place 0 is the first line, 1 the second, -1 the last, -2 the one
    before; the key is the line with its digits as `#`."""
    with_text = [lines for lines in pages if any(line.strip() for line in lines)]
    if len(with_text) < 3:
        return set()
    counts: Counter[tuple[int, str]] = Counter()
    for lines in with_text:
        counts.update(set(_edges(lines)))
    least = max(3, (len(with_text) + 1) // 2)
    return {place for place, n in counts.items() if n >= least}


def drop_repeated(text: str, repeated: set[tuple[int, str]]) -> str:
    """The page's text without its edge lines found in `repeated` (never all of it)."""
    if not repeated:
        return text
    lines = text.splitlines()
    filled = [i for i, line in enumerate(lines) if line.strip()]
    drop = {filled[place] for place, key in _edges(lines) if (place, key) in repeated}
    if len(drop) >= len(filled):
        return text
    return "\n".join(line for i, line in enumerate(lines) if i not in drop)


def _edges(lines: list[str]) -> list[tuple[int, str]]:
    """(place, key) of the first and last EDGE_LINES lines that hold text."""
    filled = [line for line in lines if line.strip()]
    n = min(EDGE_LINES, len(filled) // 2)
    top = [(i, _key(filled[i])) for i in range(n)]
    bottom = [(-1 - i, _key(filled[-1 - i])) for i in range(n)]
    return top + bottom


def _key(line: str) -> str:
    return _DIGITS.sub("#", _SPACES.sub(" ", line).strip().lower())


def _open(path: Path) -> Any:
    import pypdfium2 as pdfium

    try:
        return pdfium.PdfDocument(str(path))
    except pdfium.PdfiumError as exc:
        if "password" in str(exc).lower():
            raise LoaderError("password-protected PDF") from exc
        logger.info("pdfium cannot open path=%s error=%s: trying pypdf", path, exc)
        return None


def _page_text(pdf: Any, index: int) -> str:
    page = pdf[index]
    try:
        textpage = page.get_textpage()
        try:
            return str(textpage.get_text_bounded())
        finally:
            textpage.close()
    finally:
        page.close()


def _pypdf_pages(path: Path) -> Iterator[Page]:
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
            text = clean_text(reader.pages[number].extract_text() or "")
        except Exception as exc:  # pypdf raises many kinds on damaged pages
            logger.warning("unreadable pdf page path=%s page=%d error=%s", path, number + 1, exc)
            continue
        if text:
            found = True
            yield Page(text, number + 1)
    if not found:
        raise LoaderError("PDF has no extractable text (scanned images?): it needs OCR")


def _decrypt_empty(reader: Any) -> bool:
    try:
        return bool(reader.decrypt(""))
    except Exception:  # wrong password or unsupported algorithm
        return False


class _TableFinder:
    """pdfplumber's ruled-table finder, run only on pages drawn with rules, within a time
    budget per document (past it, the rest of the document is read as text only)."""

    def __init__(self, path: Path, budget: float) -> None:
        self.path = path
        self.budget = budget
        self.spent = 0.0
        self._plumber: Any = None

    def find(self, pdf: Any, number: int) -> list[_Table]:
        if self.spent > self.budget or not _has_rules(pdf, number):
            return []
        start = time.perf_counter()
        try:
            return self._find(number)
        except Exception as exc:  # pdfminer fails on some pages PDFium reads
            logger.info("table search failed path=%s page=%d error=%s", self.path, number, exc)
            return []
        finally:
            self.spent += time.perf_counter() - start
            if self.spent > self.budget:
                logger.warning("table search stopped path=%s page=%d seconds=%.1f: "
                               "later pages read as text", self.path, number, self.spent)  # fmt: skip

    def _find(self, number: int) -> list[_Table]:
        if self._plumber is None:
            import pdfplumber

            self._plumber = pdfplumber.open(str(self.path))
        page = self._plumber.pages[number - 1]
        found = []
        for table in page.find_tables():
            rows = table.extract()
            cells = [c for row in rows for c in row]
            if len(rows) < 2 or max(len(r) for r in rows) < 2:
                continue  # a frame around text, not a table
            if sum(1 for c in cells if c and c.strip()) < len(cells) / 2:
                continue
            x0, top, x1, bottom = table.bbox
            found.append(_Table(top, bottom, x0, x1, markdown_table(rows)))
        page.close()
        return sorted(found, key=lambda t: t.top)

    def __del__(self) -> None:
        if self._plumber is not None:
            self._plumber.close()


def _has_images(pdf: Any, number: int) -> bool:
    import pypdfium2.raw as pdfium_c

    page = pdf[number - 1]
    try:
        return any(True for _ in page.get_objects(filter=(pdfium_c.FPDF_PAGEOBJ_IMAGE,), max_depth=3))
    finally:
        page.close()


def _has_rules(pdf: Any, number: int) -> bool:
    """Whether the page draws a grid: somewhere three vertical rules side by side, and
    somewhere three horizontal rules one above the other (a frame around text has two)."""
    import pypdfium2.raw as pdfium_c

    page = pdf[number - 1]
    try:
        vertical: list[tuple[float, float, float]] = []  # x, low, high
        horizontal: list[tuple[float, float, float]] = []  # y, low, high
        for n, obj in enumerate(page.get_objects(filter=(pdfium_c.FPDF_PAGEOBJ_PATH,), max_depth=3)):
            if n > MAX_PATHS:
                return False  # a drawing, not a table
            left, bottom, right, top = obj.get_bounds()
            if top - bottom < 3 and right - left > 10:
                horizontal.append((round(bottom), left, right))
            elif right - left < 3 and top - bottom > 5:
                vertical.append((round(left), bottom, top))
            elif right - left > 10 and top - bottom > 5:  # a box: four rules
                horizontal += [(round(bottom), left, right), (round(top), left, right)]
                vertical += [(round(left), bottom, top), (round(right), bottom, top)]
        return _side_by_side(vertical) and _side_by_side(horizontal)
    finally:
        page.close()


def _side_by_side(rules: list[tuple[float, float, float]]) -> bool:
    """Whether, across the middle of some rule, rules at three different places cross."""
    if len(rules) < MIN_TABLE_RULES:
        return False
    for _, low, high in rules:
        middle = (low + high) / 2
        if len({at for at, lo, hi in rules if lo <= middle <= hi}) >= MIN_TABLE_RULES:
            return True
    return False


def _with_tables(pdf: Any, number: int, tables: list[_Table]) -> str:
    """The page's text with each table's region replaced by the table, in reading order."""
    page = pdf[number - 1]
    try:
        if page.get_rotation():
            return _page_text(pdf, number - 1)
        left, bottom, right, top = page.get_cropbox()
        textpage = page.get_textpage()
        try:

            def text(x0: float, y_top: float, x1: float, y_bottom: float) -> str:
                # pdfplumber measures from the top of the page, PDFium from its bottom
                if x1 <= x0 or y_bottom <= y_top:
                    return ""
                return str(textpage.get_text_bounded(left + x0, top - y_bottom, left + x1, top - y_top))

            width, height = right - left, top - bottom
            parts: list[str] = []
            cursor = 0.0
            for table in tables:
                parts.append(text(0, cursor, width, table.top))
                parts.append("\n\n" + table.text + "\n\n")
                parts.append(text(0, table.top, table.x0, table.bottom))
                parts.append(text(table.x1, table.top, width, table.bottom))
                cursor = max(cursor, table.bottom)
            parts.append(text(0, cursor, width, height))
            return "\n".join(p for p in parts if p.strip())
        finally:
            textpage.close()
    finally:
        page.close()


def _ranges(numbers: list[int]) -> str:
    out: list[str] = []
    start = prev = numbers[0]
    for n in [*numbers[1:], None]:
        if n is not None and n == prev + 1:
            prev = n
            continue
        out.append(str(start) if start == prev else f"{start}-{prev}")
        if n is not None:
            start = prev = n
    return ",".join(out)
