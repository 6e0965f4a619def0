"""PDF: text and ruled tables through PDFium (with pdfplumber's table algorithm), scans
through Tesseract.

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
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ingest.loaders.base import Loader, Page
from ingest.loaders.ocr import ocr_image
from ingest.loaders.pdf_tables import TableFinder, with_tables
from rag.errors import LoaderError

logger = logging.getLogger(__name__)

EDGE_LINES = 2  # lines looked at, at the top and at the bottom of a page, for headers/footers
EDGE_ROUNDS = 3  # headers under headers: a watermark, then the running head
RUN_HITS, RUN_PAGES = 3, 8  # a line on 3 pages out of 8 in a row is a running head (or foot)
OCR_DPI = 300

_LIGATURES = {"ﬀ": "ff", "ﬁ": "fi", "ﬂ": "fl", "ﬃ": "ffi", "ﬄ": "ffl", "ﬅ": "st", "ﬆ": "st"}
_LIGATURE = re.compile("[" + "".join(_LIGATURES) + "]")
# PDFium marks a hyphen it found at a line end with U+0002; a soft hyphen is never shown.
_MARKED_BREAK = re.compile(r"\x02[ \t]*(?:\r?\n[ \t]*)?|\u00ad(?:[ \t]*\r?\n[ \t]*)?")
_LINE_END_HYPHEN = re.compile(r"(?<=[^\W\d_])[-\u2010\u2011][ \t]*\r?\n[ \t]*(?=[a-zà-öø-ÿ])")
# Fonts without accented letters (TeX's OT1) draw a spacing accent before the letter:
# "d´efinition", "syst`eme", "bo^ıte", "fran¸cais". ` and ^ count only before a vowel.
_COMBINING = {
    "´": "\u0301",
    "`": "\u0300",
    "^": "\u0302",
    "ˆ": "\u0302",
    "¨": "\u0308",
    "˜": "\u0303",
    "˚": "\u030a",
    "¸": "\u0327",
}
_SPACING_ACCENT = re.compile(r"([´¨˜ˆ˚])([^\W\d_])|([`^])([aeiouAEIOUı])|(¸)([cC])")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_DIGITS = re.compile(r"\d+")
_SPACES = re.compile(r"\s+")


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
        rounds = running_lines(raw)
        tables = TableFinder(path, self.options.pdf_table_seconds) if self.options.pdf_tables else None
        blank: list[int] = []
        read_by_ocr: list[int] = []
        found = False
        title = _metadata_title(pdf)  # given with the first page that has text
        for number, text in enumerate(raw, start=1):
            if not text.strip():
                if not _has_images(pdf, number):
                    continue  # a blank page
                if not self.options.ocr:
                    blank.append(number)
                    continue
                text = self._ocr(pdf, number, path)
                read_by_ocr.append(number)
                if text.strip():
                    found = True
                    yield Page(text, number, ocr=True, title=title)
                    title = ""
                continue
            found_tables = tables.find(pdf, number) if tables else []
            if found_tables:
                text = with_tables(pdf, number, found_tables)
            for repeated in rounds:
                text = drop_repeated(text, repeated)
            text = clean_text(text)
            if text.strip():
                found = True
                yield Page(text, number, title=title)
                title = ""
        if read_by_ocr:  # said at warning level: OCR text may hold misread words
            logger.warning(
                "pdf pages read by OCR path=%s pages=%s languages=%s",
                path,
                _ranges(read_by_ocr),
                "+".join(self.options.ocr_languages),
            )
        if blank:
            logger.warning(
                "pdf pages without text path=%s pages=%s: they need OCR (ingest.ocr)", path, _ranges(blank)
            )
        if not found:
            raise LoaderError(
                "PDF has no extractable text (scanned images?): it needs OCR (set ingest.ocr = true)"
            )

    def _ocr(self, pdf: Any, number: int, path: Path) -> str:
        page = pdf[number - 1]
        try:
            image = page.render(scale=OCR_DPI / 72).to_pil()
        finally:
            page.close()
        text = ocr_image(image, self.options.ocr_languages)
        logger.info(
            "ocr path=%s page=%d languages=%s chars=%d",
            path,
            number,
            "+".join(self.options.ocr_languages),
            len(text),
        )
        return clean_text(text)


def clean_text(text: str) -> str:
    """Line ends normalised, hyphenated line ends rejoined, ligatures spelt out, accents
    drawn apart put on their letter, NFC."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _MARKED_BREAK.sub("", text)
    text = _LINE_END_HYPHEN.sub("", text)
    text = _LIGATURE.sub(lambda m: _LIGATURES[m.group()], text)
    text = _SPACING_ACCENT.sub(_compose, text)
    text = _CONTROL.sub("", text)
    return unicodedata.normalize("NFC", text).strip()


def _compose(match: re.Match[str]) -> str:
    accent, letter = (g for g in match.groups() if g is not None)
    return ("i" if letter == "ı" else letter) + _COMBINING[accent]


def running_lines(texts: list[str]) -> list[set[tuple[int, str]]]:
    """The `repeated_lines` of the pages, then of what is left once those are dropped (a
    watermark line above the running head), and so on, EDGE_ROUNDS times at most. After
    the first round only lines on most pages count: runs of a few pages would then take
    the first lines of the text itself."""
    rounds: list[set[tuple[int, str]]] = []
    pages = [text.splitlines() for text in texts]
    for n in range(EDGE_ROUNDS):
        repeated = repeated_lines(pages, runs=n == 0)
        if not repeated:
            break
        rounds.append(repeated)
        pages = [drop_repeated("\n".join(lines), repeated).splitlines() for lines in pages]
    return rounds


def repeated_lines(pages: list[list[str]], runs: bool = True) -> set[tuple[int, str]]:
    """(place, key) of the running headers and footers: lines found at the same place near
    the top or bottom of most pages, or of 3 pages out of any 8 in a row (a chapter's
    running head, or one of a two-sided book's left and right heads). Place 0 is the first
    line, 1 the second, -1 the last, -2 the one before; the key is the line, digits as `#`.
    """
    with_text = [lines for lines in pages if any(line.strip() for line in lines)]
    if len(with_text) < 3:
        return set()
    seen: dict[tuple[int, str], list[int]] = {}
    for n, lines in enumerate(with_text):
        for place in set(_edges(lines)):
            seen.setdefault(place, []).append(n)
    least = max(3, (len(with_text) + 1) // 2)
    return {place for place, at in seen.items() if len(at) >= least or (runs and _in_a_run(at))}


def _in_a_run(at: list[int]) -> bool:
    """Whether RUN_HITS of these page positions fall within RUN_PAGES pages in a row."""
    return any(at[i + RUN_HITS - 1] - at[i] < RUN_PAGES for i in range(len(at) - RUN_HITS + 1))


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


def _metadata_title(pdf: Any) -> str:
    """The document's title from its metadata, when it has a real one."""
    try:
        title = str(pdf.get_metadata_dict().get("Title", "") or "")
    except Exception:  # damaged metadata: no title, the first heading or name stands in
        return ""
    title = " ".join(title.split())
    return (
        ""
        if title.lower() in ("", "untitled", "sans titre") or title.endswith((".doc", ".docx", ".tex"))
        else title
    )


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


def _has_images(pdf: Any, number: int) -> bool:
    import pypdfium2.raw as pdfium_c

    page = pdf[number - 1]
    try:
        return any(True for _ in page.get_objects(filter=(pdfium_c.FPDF_PAGEOBJ_IMAGE,), max_depth=3))
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
