"""Tables in PDF pages: PDFium's ruled lines joined into cells by pdfplumber's grid
algorithm, each cell's text read by PDFium, the table written as Markdown in its place."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ingest.loaders.tables import markdown_table

logger = logging.getLogger(__name__)

MIN_TABLE_RULES = 3  # rules side by side, each way, before a page is searched for tables
MAX_PATHS = 5000  # a page drawing more paths is a picture: not searched for tables


@dataclass
class Table:
    top: float
    bottom: float
    x0: float
    x1: float
    text: str


class TableFinder:
    """Ruled tables: the page's rules as PDFium draws them, joined into cells by pdfplumber's
    lattice algorithm (no second parse of the page), each cell's text read by PDFium. Only
    pages with a grid of rules are searched, within a time budget per document (past it,
    the rest of the document is read as text only)."""

    def __init__(self, path: Path, budget: float) -> None:
        self.path = path
        self.budget = budget
        self.spent = 0.0

    def find(self, pdf: Any, number: int) -> list[Table]:
        if self.spent > self.budget:
            return []
        start = time.perf_counter()
        page = pdf[number - 1]
        try:
            if page.get_rotation():
                return []
            edges = _rules(page)
            if not (_side_by_side(edges, "v") and _side_by_side(edges, "h")):
                return []
            return _tables(page, edges)
        except Exception as exc:  # a table the algorithm cannot handle is text
            logger.info("table search failed path=%s page=%d error=%s", self.path, number, exc)
            return []
        finally:
            page.close()
            self.spent += time.perf_counter() - start
            if self.spent > self.budget:
                logger.warning(
                    "table search stopped path=%s page=%d seconds=%.1f: later pages read as text",
                    self.path,
                    number,
                    self.spent,
                )


def _rules(page: Any) -> list[dict[str, Any]]:
    """The page's thin paths and the sides of its boxes, as pdfplumber edges (measured from
    the top of the media box, as pdfplumber measures)."""
    import pypdfium2.raw as pdfium_c

    ref = page.get_mediabox()[3]
    edges: list[dict[str, Any]] = []

    def edge(x0: float, top: float, x1: float, bottom: float, orientation: str) -> None:
        edges.append(
            {
                "x0": x0,
                "x1": x1,
                "top": top,
                "bottom": bottom,
                "width": x1 - x0,
                "height": bottom - top,
                "orientation": orientation,
                "object_type": "line",
            }
        )

    for n, obj in enumerate(page.get_objects(filter=(pdfium_c.FPDF_PAGEOBJ_PATH,), max_depth=3)):
        if n > MAX_PATHS:
            return []  # a drawing, not a table
        left, bottom, right, top = obj.get_bounds()
        y_top, y_bottom = ref - top, ref - bottom
        if top - bottom < 3 and right - left > 10:
            middle = (y_top + y_bottom) / 2
            edge(left, middle, right, middle, "h")
        elif right - left < 3 and top - bottom > 5:
            middle = (left + right) / 2
            edge(middle, y_top, middle, y_bottom, "v")
        elif right - left > 10 and top - bottom > 5:  # a box: four rules
            edge(left, y_top, right, y_top, "h")
            edge(left, y_bottom, right, y_bottom, "h")
            edge(left, y_top, left, y_bottom, "v")
            edge(right, y_top, right, y_bottom, "v")
    return edges


def _side_by_side(edges: list[dict[str, Any]], orientation: str) -> bool:
    """Whether, across the middle of some rule, three rules of that orientation cross it at
    three different places: a grid, where a frame around text has two."""
    if orientation == "v":
        rules = [(round(e["x0"]), e["top"], e["bottom"]) for e in edges if e["orientation"] == "v"]
    else:
        rules = [(round(e["top"]), e["x0"], e["x1"]) for e in edges if e["orientation"] == "h"]
    if len(rules) < MIN_TABLE_RULES:
        return False
    for _, low, high in rules:
        middle = (low + high) / 2
        if len({at for at, lo, hi in rules if lo <= middle <= hi}) >= MIN_TABLE_RULES:
            return True
    return False


def _tables(page: Any, edges: list[dict[str, Any]]) -> list[Table]:
    from pdfplumber.table import (
        cells_to_tables,
        edges_to_intersections,
        intersections_to_cells,
        merge_edges,
    )

    merged = merge_edges(edges, 3, 3, 3, 3)
    cells = intersections_to_cells(edges_to_intersections(merged, 3, 3))
    ref = page.get_mediabox()[3]
    textpage = page.get_textpage()
    found = []
    try:
        for group in cells_to_tables(cells):
            xs = sorted({round(c[0], 1) for c in group})
            tops = sorted({round(c[1], 1) for c in group})
            if len(xs) < 2 or len(tops) < 2:
                continue  # a frame around text, not a table
            grid = [[""] * len(xs) for _ in tops]
            for x0, top, x1, bottom in group:
                text = textpage.get_text_bounded(x0, ref - bottom, x1, ref - top)
                grid[tops.index(round(top, 1))][xs.index(round(x0, 1))] = " ".join(str(text).split())
            cells_text = [c for row in grid for c in row]
            if sum(1 for c in cells_text if c) < len(cells_text) / 2:
                continue
            x0 = min(c[0] for c in group)
            x1 = max(c[2] for c in group)
            top = min(c[1] for c in group)
            bottom = max(c[3] for c in group)
            found.append(Table(top, bottom, x0, x1, markdown_table(grid)))
    finally:
        textpage.close()
    return sorted(found, key=lambda t: t.top)


def with_tables(pdf: Any, number: int, tables: list[Table]) -> str:
    """The page's text with each table's region replaced by the table, in reading order."""
    page = pdf[number - 1]
    try:
        ref = page.get_mediabox()[3]
        left, bottom, right, top = page.get_cropbox()
        textpage = page.get_textpage()
        try:

            def text(x0: float, y_top: float, x1: float, y_bottom: float) -> str:
                # tables are measured from the top of the media box, PDFium from its bottom
                if x1 <= x0 or y_bottom <= y_top:
                    return ""
                return str(textpage.get_text_bounded(x0, ref - y_bottom, x1, ref - y_top))

            parts: list[str] = []
            cursor = ref - top
            for table in tables:
                parts.append(text(left, cursor, right, table.top))
                parts.append("\n\n" + table.text + "\n\n")
                parts.append(text(left, table.top, table.x0, table.bottom))
                parts.append(text(table.x1, table.top, right, table.bottom))
                cursor = max(cursor, table.bottom)
            parts.append(text(left, cursor, right, ref - bottom))
            return "\n".join(p for p in parts if p.strip())
        finally:
            textpage.close()
    finally:
        page.close()
