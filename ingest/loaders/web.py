"""HTML (and the XHTML inside EPUB books): visible text as Markdown headings and tables."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from ingest.loaders.base import Loader, Page
from ingest.loaders.tables import markdown_table
from ingest.loaders.text import read_text_blocks

_BLOCKS = ["p", "div", "li", "br", "tr", "section", "article", "pre", "blockquote", "dd", "dt"]


class HtmlLoader(Loader):
    """HTML: visible text only."""

    suffixes = (".html", ".htm", ".xhtml")

    def pages(self, path: Path) -> Iterator[Page]:
        yield Page(html_to_markdown("".join(read_text_blocks(path))), markdown=True)


def html_to_markdown(html: str) -> str:
    """Visible text, headings as `#` lines, tables as Markdown tables."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "html.parser")
    for tag in soup(["script", "style", "noscript", "template", "head"]):
        tag.decompose()
    for table in reversed(soup.find_all("table")):  # inner tables first
        rows = [
            [cell.get_text(" ", strip=True) for cell in tr.find_all(["th", "td"])]
            for tr in table.find_all("tr")
        ]
        table.replace_with("\n\n" + markdown_table(rows) + "\n\n")
    for level in range(1, 7):
        for heading in soup.find_all(f"h{level}"):
            heading.insert_before("\n\n" + "#" * level + " ")
            heading.insert_after("\n\n")
    for tag in soup.find_all(_BLOCKS):
        tag.insert_after("\n")
    return tidy(soup.get_text())


def tidy(text: str) -> str:
    """Spaces collapsed within lines, at most one blank line in a row."""
    lines = [" ".join(line.split()) for line in text.splitlines()]
    out: list[str] = []
    for line in lines:
        if line or (out and out[-1]):
            out.append(line)
    return "\n".join(out).strip()
