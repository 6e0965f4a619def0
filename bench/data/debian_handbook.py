"""Rebuild handbook-fr/ from the French HTML of *The Debian Administrator's Handbook*.

    python bench/data/debian_handbook.py [path/to/debian-handbook/html/fr-FR]
    python bench/data/debian_handbook.py --split

Without a path, the package `debian-handbook` (about 35 MB, every translation of the book) is
fetched with `apt-get download` and unpacked in a temporary folder, and its
`/usr/share/doc/debian-handbook/html/fr-FR/` is read.

Each numbered section of the book ("6.2.1. Initialisation"), and each chapter's
introduction, is one document: id = its number ("6.2.1", "6" for chapter 6's introduction,
"A.1" in the appendices), title = its heading without the number, text = its own paragraphs
(those of its subsections are documents of their own), including the boxed notes ("ASTUCE",
"CULTURE"...), paragraphs separated by a blank line, whitespace normalised. Left out: the
preface and the foreword (about the book itself), command lines and file listings (`<pre>`),
examples, figures, tables, the index terms and the tables of contents.

The French translation of this edition is unfinished: some paragraphs are still in English.
Each paragraph is kept only if it has more French than English function words (with neither,
only if it has an accented letter: a box title, not a file name alone in a list item), and a
section is kept only if what is left is at least 300 characters and at least 80% of its prose
in either language.

`--split` deals the judged questions (qrels/dev.tsv and qrels/test.tsv taken together) again
into 20 for qrels/dev.tsv and the rest for qrels/test.tsv, drawn with `random.Random(SPLIT_SEED)`
from the question ids in the order of queries.jsonl: the same files come out each time.
"""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

HERE = Path(__file__).parent
FOLDER = HERE / "handbook-fr"
TARGET = FOLDER / "corpus.jsonl"
PACKAGE = "debian-handbook"
HTML_DIR = "usr/share/doc/debian-handbook/html/fr-FR"
MIN_CHARS = 300
MIN_FRENCH_SHARE = 0.8
SPLIT_SEED = 20220922  # the package's version
DEV_SIZE = 20
QRELS_HEADER = "query-id\tcorpus-id\tscore"

# Chapter and section headings: "Chapitre 6. Maintenance…", "Annexe A. …", "6.2.1. Initialisation".
NUMBERED = re.compile(r"^(?:Chapitre|Annexe)?\s*([0-9A-Z]+(?:\.[0-9]+)*)\.\s+(.+)$")
CONTAINERS = {"section", "chapter", "appendix"}
SKIPPED = {"toc", "docnav", "indexterm", "example", "informalexample", "figure", "table", "highlights"}
PARAGRAPHS = {"para", "title", "listitem", "term"}  # blocks whose text is a paragraph
# Function words, to tell a French paragraph from one the translation has not reached yet.
FRENCH_WORDS = (
    "le la les des du de un une et est que qui dans pour sur pas par avec ce cette ces il ils elle sont "
    "ou au aux en se ne plus peut être son sa ses leur leurs nous vous on mais comme si tout"
)
ENGLISH_WORDS = (
    "the and is that which in for on not by with this these it they are or to of be can an as from "
    "its their we you but if all has have will when"
)
FRENCH, ENGLISH = frozenset(FRENCH_WORDS.split()), frozenset(ENGLISH_WORDS.split())
WORD = re.compile(r"[a-zàâçéèêëîïôûùüÿœ']+")
ACCENT = re.compile(r"[àâçéèêëîïôûùüÿœ]")
CHAPTER = re.compile(r"<div[^>]*class=\"chapter\"")


@dataclass
class Section:
    number: str = ""
    title: str = ""
    paragraphs: list[str] = field(default_factory=list)


class BookPage(HTMLParser):
    """One HTML page of the book: its sections, each with its own paragraphs."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.sections: list[Section] = []
        self._open: list[tuple[str, Section | None, bool, bool]] = []  # tag, section, skip, paragraph
        self._stack: list[Section] = []
        self._heading: list[str] | None = None
        self._buffer: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        classes = set((dict(attrs).get("class") or "").split())
        section = None
        if tag == "div" and classes & CONTAINERS:
            section = Section()
            self._stack.append(section)
        skip = tag == "pre" or bool(classes & SKIPPED)
        paragraph = bool(classes & PARAGRAPHS) and not re.fullmatch(r"h[1-6]", tag)
        if re.fullmatch(r"h[1-6]", tag) and "title" in classes and self._stack and not self._stack[-1].title:
            self._heading = []
        if paragraph:
            self._flush()
        if tag in {"br", "img", "meta", "link", "hr"}:  # void elements: no end tag comes
            return
        self._open.append((tag, section, skip, paragraph))

    def handle_endtag(self, tag: str) -> None:
        while self._open:
            open_tag, section, _, paragraph = self._open.pop()
            if re.fullmatch(r"h[1-6]", open_tag) and self._heading is not None:
                self._set_heading(" ".join("".join(self._heading).split()))
                self._heading = None
            if paragraph:
                self._flush()
            if section is not None:
                self._flush()
                self._stack.pop()
                if section.number:
                    self.sections.append(section)
            if open_tag == tag:
                break

    def handle_data(self, data: str) -> None:
        if any(skip for _, _, skip, _ in self._open):
            return
        if self._heading is not None:
            self._heading.append(data)
        elif self._stack:
            self._buffer.append(data)

    def _set_heading(self, heading: str) -> None:
        match = NUMBERED.match(heading)
        if match:
            self._stack[-1].number, self._stack[-1].title = match.group(1), match.group(2)

    def _flush(self) -> None:
        text = " ".join("".join(self._buffer).split())
        self._buffer = []
        if text and self._stack:
            self._stack[-1].paragraphs.append(text)


def language(paragraph: str) -> str:
    """The language with more function words in the paragraph, "fr" or "en".

    With as many of each (usually none), "fr" if it has an accented letter (a box title), else ""
    (a file name or a command alone in a list item: left out, and counted as neither).
    """
    words = WORD.findall(paragraph.lower())
    french, english = sum(w in FRENCH for w in words), sum(w in ENGLISH for w in words)
    if french != english:
        return "fr" if french > english else "en"
    return "fr" if ACCENT.search(paragraph) else ""


def reading_order(folder: Path) -> list[Path]:
    """The pages in the book's order, following the "next" links from the title page."""
    pages, page = [], "index.html"
    while page:
        pages.append(folder / page)
        match = re.search(r'<link rel="next" href="([^"#]+)"', (folder / page).read_text(encoding="utf-8"))
        page = match.group(1) if match else ""
    return pages


def documents(folder: Path) -> list[dict[str, str]]:
    docs: list[dict[str, str]] = []
    in_chapters = False
    for path in reading_order(folder):
        html = path.read_text(encoding="utf-8")
        in_chapters = in_chapters or bool(CHAPTER.search(html))  # the preface and foreword come first
        if not in_chapters:
            continue
        page = BookPage()
        page.feed(html)
        page.close()
        for section in sorted(page.sections, key=lambda s: _order(s.number)):
            french = [p for p in section.paragraphs if language(p) == "fr"]
            english = [p for p in section.paragraphs if language(p) == "en"]
            text = "\n\n".join(french)
            if len(text) < MIN_CHARS or len(text) < MIN_FRENCH_SHARE * (len(text) + sum(map(len, english))):
                continue
            docs.append({"_id": section.number, "title": section.title, "text": text})
    return docs


def _order(number: str) -> list[tuple[int, str]]:
    return [(int(part), "") if part.isdigit() else (0, part) for part in number.split(".")]


def split_qrels(folder: Path) -> None:
    """Deal the judged questions into qrels/dev.tsv (DEV_SIZE of them) and qrels/test.tsv (the rest)."""
    judgements: dict[str, list[str]] = {}
    for split in ("dev", "test"):
        path = folder / "qrels" / f"{split}.tsv"
        if path.is_file():
            for line in path.read_text(encoding="utf-8").splitlines()[1:]:
                judgements.setdefault(line.split("\t")[0], []).append(line)
    queries = [json.loads(line)["_id"] for line in (folder / "queries.jsonl").open(encoding="utf-8")]
    judged = [q for q in queries if q in judgements]
    dev = set(random.Random(SPLIT_SEED).sample(judged, DEV_SIZE))
    for split, chosen in (
        ("dev", [q for q in judged if q in dev]),
        ("test", [q for q in judged if q not in dev]),
    ):
        lines = [QRELS_HEADER, *(line for q in chosen for line in judgements[q])]
        (folder / "qrels" / f"{split}.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
        print(f"{len(chosen)} questions in qrels/{split}.tsv")


def main() -> None:
    if len(sys.argv) > 2:
        sys.exit(f"usage: {sys.argv[0]} [path/to/debian-handbook/html/fr-FR | --split]")
    if sys.argv[1:] == ["--split"]:
        split_qrels(FOLDER)
        return
    if len(sys.argv) == 2:
        docs = documents(Path(sys.argv[1]))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run(["apt-get", "download", PACKAGE], cwd=tmp, check=True)
            deb = next(Path(tmp).glob(f"{PACKAGE}_*.deb"))
            subprocess.run(["dpkg", "-x", str(deb), "x"], cwd=tmp, check=True)
            docs = documents(Path(tmp, "x", HTML_DIR))
    FOLDER.mkdir(exist_ok=True)
    with open(TARGET, "w", encoding="utf-8") as out:
        for doc in docs:
            out.write(json.dumps(doc, ensure_ascii=False) + "\n")
    print(f"{len(docs)} sections written to {TARGET}")


if __name__ == "__main__":
    main()
