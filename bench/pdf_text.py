"""PDF text quality and speed: today's extractor (pypdf) against the PDF loader, per file.

    .venv/bin/python bench/pdf_text.py [PDF ...]     # default: bench/data/pdfs/*.pdf

For each file: words found, glued words per 1,000 words, pages per second.

A *glued word* is an alphabetic token of more than 24 letters: a whitespace-separated
token that, once stripped of surrounding punctuation, holds only letters (and inner
apostrophes or hyphens). Such tokens are almost never real words; they are words whose
spaces were lost ("Historiquedesmisesàjourdecettedocumentation"). Tokens holding a
backslash, `_`, `@`, `/`, `.` or `=` are code or addresses (`\\everyparguillemetsremoved`),
printed as one word in the PDF itself, so they are not alphabetic and do not count.
The `runs>24` column is the cruder count of letter runs over 24 letters (it counts those
macro names too), for comparison. More words found for the same pages also means fewer
glued ones. The goal is at most 1 glued word per 1,000 on every file.

`acc/1k` counts accents left apart from their letter per 1,000 words ("d´efinition",
"syst`eme", "fran¸cais": what fonts without accented letters give), and `hy/1k` words
still cut by a line-end hyphen ("juri-" then "dique" on the next line).
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parents[1])  # not bench/, whose ingest.py would shadow ingest/

from ingest.loaders import PdfLoader
from rag.hardware import processor_line

DATA = Path(__file__).parent / "data" / "pdfs"
LONG = 24
_EDGE_PUNCT = "\"'`«»“”‘’()[]{}<>,;:.!?…*–—-"
_LETTER_RUN = re.compile(r"[^\W\d_]+")
_ALPHA = re.compile(r"[^\W\d_]+(?:['’\-‐‑][^\W\d_]+)*")
_APART = re.compile(r"[´¨˜ˆ˚][^\W\d_]|[`^][aeiouAEIOUı]|¸[cC]")
_CUT = re.compile(r"[^\W\d_]{2}[-\u00ad\u2010\u2011]\s*\n\s*[a-zà-öø-ÿ]{2}")


def glued_rate(text: str) -> tuple[int, float, float, float, float]:
    """(words, glued alphabetic tokens, letter runs over 24, accents apart, hyphen-cut words),
    all but the first per 1,000 words."""
    words = glued = 0
    for token in text.split():
        core = token.strip(_EDGE_PUNCT)
        if not any(ch.isalpha() for ch in core):
            continue
        words += 1
        if _ALPHA.fullmatch(core) and max(len(r) for r in _LETTER_RUN.findall(core)) > LONG:
            glued += 1
    runs = _LETTER_RUN.findall(text)
    long_runs = sum(1 for r in runs if len(r) > LONG)
    per = 1000 / max(words, 1)
    return (
        words,
        glued * per,
        long_runs * 1000 / max(len(runs), 1),
        len(_APART.findall(text)) * per,
        len(_CUT.findall(text)) * per,
    )


def pypdf_pages(path: Path) -> list[str]:
    """The extractor the PDF loader used before PDFium: pypdf's extract_text per page."""
    from pypdf import PdfReader

    reader = PdfReader(str(path))
    if reader.is_encrypted:
        reader.decrypt("")
    return [page.extract_text() or "" for page in reader.pages]


def loader_pages(path: Path) -> list[str]:
    return [page.text for page in PdfLoader().pages(path)]


def measure(extract: Callable[[Path], list[str]], path: Path, pages: int) -> tuple[float, ...]:
    start = time.perf_counter()
    texts = extract(path)
    seconds = time.perf_counter() - start
    return (*glued_rate("\n".join(texts)), pages / seconds, seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pdfs", nargs="*", type=Path, help="PDF files (default: bench/data/pdfs)")
    args = parser.parse_args()
    print(processor_line())
    logging.basicConfig(level=logging.ERROR)
    logging.getLogger("pypdf").setLevel(logging.CRITICAL)
    paths = args.pdfs or sorted(DATA.glob("*.pdf"))
    if not paths:
        sys.exit(f"no PDF found in {DATA}")
    import pypdfium2 as pdfium

    columns = f"{'words':>6} {'glued/1k':>8} {'runs>24':>7} {'acc/1k':>6} {'hy/1k':>5} {'pages/s':>7}"
    print(f"{'':<30} {'':>5} | {'pypdf (before)':<45} | {'PDF loader (now)':<45}")
    head = f"{'file':<30} {'pages':>5} | {columns} | {columns}"
    print(head)
    print("-" * len(head))
    totals = {"old": 0.0, "new": 0.0}
    all_pages = 0
    worst = 0.0
    for path in paths:
        pages = len(pdfium.PdfDocument(str(path)))
        all_pages += pages
        old = measure(pypdf_pages, path, pages)
        new = measure(loader_pages, path, pages)
        totals["old"] += old[6]
        totals["new"] += new[6]
        worst = max(worst, new[1])
        print(f"{path.name:<30} {pages:>5} | {_row(old)} | {_row(new)}", flush=True)
    print("-" * len(head))
    print(
        f"{len(paths)} files, {all_pages} pages: pypdf {all_pages / totals['old']:.0f} pages/s, "
        f"loader {all_pages / totals['new']:.0f} pages/s; worst loader glued/1k {worst:.2f} "
        f"({'goal met' if worst <= 1 else 'goal NOT met'}: <= 1 on every file)"
    )


def _row(m: tuple[float, ...]) -> str:
    return f"{m[0]:>6.0f} {m[1]:>8.2f} {m[2]:>7.2f} {m[3]:>6.1f} {m[4]:>5.1f} {m[5]:>7.0f}"


if __name__ == "__main__":
    main()
