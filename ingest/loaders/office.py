"""Office documents: Word (python-docx), PowerPoint (python-pptx), Excel (openpyxl) and
OpenDocument text and spreadsheets (odfpy). Headings become Markdown headings and tables
Markdown tables, in document order."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ingest.loaders.base import Loader, Page
from ingest.loaders.tables import markdown_table
from rag.errors import LoaderError

logger = logging.getLogger(__name__)

MAX_REPEAT = 1000  # an ODS cell or row "repeated" 16,384 times is padding, not data


class DocxLoader(Loader):
    """Word documents: paragraphs, headings and tables in document order."""

    suffixes = (".docx",)

    def pages(self, path: Path) -> Iterator[Page]:
        import docx
        from docx.table import Table

        try:
            document = docx.Document(str(path))
        except Exception as exc:  # zipfile, lxml and docx errors alike
            raise LoaderError(f"corrupt DOCX: {exc}") from exc
        blocks = []
        for item in document.iter_inner_content():
            if isinstance(item, Table):
                blocks.append(markdown_table([cell.text for cell in row.cells] for row in item.rows))
                continue
            text = item.text.strip()
            if not text:
                continue
            style = (item.style.name if item.style is not None else "") or ""
            if style == "Title":
                blocks.append("# " + text)
            elif style.startswith("Heading") and style[-1:].isdigit():
                blocks.append("#" * min(6, int(style.split()[-1])) + " " + text)
            else:
                blocks.append(text)
        yield Page("\n\n".join(b for b in blocks if b), markdown=True)


class PptxLoader(Loader):
    """PowerPoint: one page per slide, numbered as the slides; title as heading, notes kept."""

    suffixes = (".pptx",)

    def pages(self, path: Path) -> Iterator[Page]:
        from pptx import Presentation

        try:
            deck = Presentation(str(path))
        except Exception as exc:
            raise LoaderError(f"corrupt PPTX: {exc}") from exc
        for number, slide in enumerate(deck.slides, start=1):
            title = slide.shapes.title
            blocks = (
                [f"# {title.text_frame.text.strip()}"]
                if title is not None and title.has_text_frame and title.text_frame.text.strip()
                else []
            )
            for shape in slide.shapes:
                if title is not None and shape.shape_id == title.shape_id:
                    continue
                blocks.extend(_shape_blocks(shape))
            if slide.has_notes_slide:
                notes = slide.notes_slide.notes_text_frame
                if notes is not None and notes.text.strip():
                    blocks.append("Notes: " + notes.text.strip())
            text = "\n\n".join(b for b in blocks if b)
            if text:
                yield Page(text, number, markdown=True)


def _shape_blocks(shape: Any) -> list[str]:
    if getattr(shape, "has_table", False) and shape.has_table:
        return [markdown_table([cell.text for cell in row.cells] for row in shape.table.rows)]
    if hasattr(shape, "shapes"):  # a group
        return [b for inner in shape.shapes for b in _shape_blocks(inner)]
    if getattr(shape, "has_text_frame", False) and shape.text_frame.text.strip():
        return [shape.text_frame.text.strip()]
    return []


class XlsxLoader(Loader):
    """Excel workbooks: one page per sheet, the sheet's name as heading, cells as a table."""

    suffixes = (".xlsx", ".xlsm")

    def pages(self, path: Path) -> Iterator[Page]:
        import openpyxl

        try:
            book = openpyxl.load_workbook(str(path), read_only=True, data_only=True)
        except Exception as exc:
            raise LoaderError(f"corrupt XLSX: {exc}") from exc
        try:
            for number, sheet in enumerate(book.worksheets, start=1):
                table = markdown_table(sheet.iter_rows(values_only=True))
                if table:
                    yield Page(f"# {sheet.title}\n\n{table}", number, markdown=True)
        finally:
            book.close()


class OdfLoader(Loader):
    """OpenDocument text (headings, paragraphs, lists, tables) and spreadsheets (a page per
    sheet, named by it)."""

    suffixes = (".odt", ".ods")

    def pages(self, path: Path) -> Iterator[Page]:
        from odf.opendocument import load

        try:
            document = load(str(path))
        except Exception as exc:
            raise LoaderError(f"corrupt OpenDocument file: {exc}") from exc
        if path.suffix.lower() == ".ods":
            yield from _sheets(document)
            return
        blocks: list[str] = []
        _odt_blocks(document.text, blocks)
        yield Page("\n\n".join(b for b in blocks if b), markdown=True)


def _odt_blocks(node: Any, blocks: list[str]) -> None:
    from odf import teletype

    for child in node.childNodes:
        name = getattr(child, "qname", (None, None))[1]
        if name == "h":
            level = int(child.getAttribute("outlinelevel") or 1)
            blocks.append("#" * min(6, level) + " " + teletype.extractText(child).strip())
        elif name == "p":
            blocks.append(teletype.extractText(child).strip())
        elif name == "table":
            blocks.append(markdown_table(_odf_rows(child)))
        elif name in ("list", "list-item", "section", "list-header"):
            _odt_blocks(child, blocks)


def _sheets(document: Any) -> Iterator[Page]:
    from odf.table import Table

    for number, sheet in enumerate(document.spreadsheet.getElementsByType(Table), start=1):
        table = markdown_table(_odf_rows(sheet))
        if table:
            yield Page(f"# {sheet.getAttribute('name')}\n\n{table}", number, markdown=True)


def _odf_rows(table: Any) -> list[list[str]]:
    from odf import teletype
    from odf.table import TableRow

    rows: list[list[str]] = []
    for row in table.getElementsByType(TableRow):
        cells: list[str] = []
        for cell in row.childNodes:
            if cell.qname[1] not in ("table-cell", "covered-table-cell"):
                continue
            text = teletype.extractText(cell).strip()
            repeat = int(cell.getAttribute("numbercolumnsrepeated") or 1)
            cells.extend([text] * min(repeat, MAX_REPEAT))
        repeat = int(row.getAttribute("numberrowsrepeated") or 1)
        rows.extend([cells] * (min(repeat, MAX_REPEAT) if any(cells) else 1))
    return rows
