"""Document metadata and filters: each document keeps its title, type, language and
modification time, and searches in every mode return k results from the documents the
filters allow, the filter being applied inside the search."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from ingest.worker import IngestWorker
from rag.config import Settings
from rag.embedders.sentence_transformers import SentenceTransformerEmbedder
from rag.errors import InvalidRequestError
from rag.retrievers import make_retriever
from rag.store import Filters, make_catalog
from rag.store.globs import glob_matcher
from tests.pdfs import text_pdf

OLD, NEW = 1_600_000_000.0, 1_700_000_000.0


@pytest.fixture
def indexed(settings: Settings, embedder: SentenceTransformerEmbedder, tmp_path: Path) -> Settings:
    docs = tmp_path / "docs"
    (docs / "guide").mkdir(parents=True)
    for i in range(6):
        (docs / "guide" / f"cats{i}.md").write_text(
            f"# Cat care {i}\n\nCats eat fish and meat; lesson {i} is about feeding cats.\n"
        )
        (docs / f"chats{i}.txt").write_text(
            f"Les chats mangent du poisson et de la viande ; leçon {i} sur les repas des chats.\n"
        )
    text_pdf(tmp_path / "plain.pdf", ["Annual report: cats ate 40 kg of fish this year."])
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(tmp_path / "plain.pdf"))
    writer.add_metadata({"/Title": "Annual report of the cattery"})
    writer.write(docs / "report.pdf")
    for path in docs.rglob("*"):
        if path.is_file():
            stamp = NEW if path.name.startswith("cats") else OLD
            os.utime(path, (stamp, stamp))
    IngestWorker(settings, embedder).run(docs)
    return settings


def test_documents_keep_their_metadata(indexed: Settings) -> None:
    store = make_catalog(indexed).open("default", readonly=True)
    records = {r.display: r for r in store.files().values()}
    store.close()
    cats = records["docs/guide/cats0.md"]
    assert (cats.title, cats.type, cats.language, cats.mtime) == ("Cat care 0", "md", "en", NEW)
    chats = records["docs/chats0.txt"]
    assert (chats.type, chats.language, chats.title) == ("txt", "fr", "chats0")
    report = records["docs/report.pdf"]
    assert (report.type, report.title) == ("pdf", "Annual report of the cattery")


@pytest.mark.parametrize("mode", ["dense", "lexical", "hybrid"])
def test_filters_apply_inside_the_search(
    indexed: Settings, embedder: SentenceTransformerEmbedder, mode: str
) -> None:
    retrieval = indexed.retrieval.model_copy(update={"mode": mode, "min_score": -1.0})
    retriever = make_retriever(retrieval, embedder)
    store = make_catalog(indexed).open("default", readonly=True)
    query = "What do cats eat? Que mangent les chats ?"
    cases = {
        Filters(languages=("fr",)): lambda p: p.startswith("docs/chats"),
        Filters(types=("md",)): lambda p: p.endswith(".md"),
        Filters(path="docs/guide/*"): lambda p: p.startswith("docs/guide/"),
        Filters(modified_before=NEW - 1): lambda p: not p.startswith("docs/guide/cats"),
        Filters(types=("pdf",)): lambda p: p == "docs/report.pdf",
    }
    for filters, allowed in cases.items():
        hits = retriever.retrieve(store, query, 4, filters=filters, dedup=False)
        expected = 1 if filters.types == ("pdf",) else 4  # k come back when k exist
        assert len(hits) == expected, (filters, [h.chunk.path for h in hits])
        assert all(allowed(h.chunk.path) for h in hits), (filters, [h.chunk.path for h in hits])
    store.close()


NAMES = [
    "docs/a.md",
    "docs/b.pdf",
    "docs/z.txt",
    "x]y.txt",
    "x-y.txt",
    "x^y.txt",
    "x[y.txt",
    "x\\y.txt",
    "x:y.txt",
    "x.y.txt",
    "é.md",
    "😀.md",
    "Docs/A.MD",
    "multi\nline.md",
]
GLOBS = [
    "*",
    "*.md",
    "docs/?.*",
    "[a-c]*",
    "docs/[^a]*",
    "x[]]y*",
    "x[]-]y*",
    "x[-^]y*",
    "x[[]y*",
    "x[\\]y*",
    "x[:.]y*",
    "x[a-c-e]y*",
    "[é😀]*",
    "*[A-Z]*",
    "multi?line*",
    "[!d]*",
]


@pytest.mark.parametrize(
    "filters",
    [
        {"path": "[z-a]*"},  # a range that runs backwards (PostgreSQL's regex refused it)
        {"path": "docs/[abc"},  # an unclosed set
        {"path": "[]"},  # ']' first is itself: unclosed too
        {"path": "a\x00b"},  # neither store can be sent a NUL
        {"path": "\ud800*"},  # nor a lone surrogate
        {"types": ("pd\x00f",)},
        {"languages": ("de",)},
        {"modified_after": float("nan")},
        {"modified_before": float("inf")},
    ],
)
def test_a_filter_no_store_can_read_is_the_clients_error(filters: dict[str, object]) -> None:
    with pytest.raises(InvalidRequestError):
        Filters(**filters)  # type: ignore[arg-type]


def test_a_glob_reads_alike_in_sqlite_and_as_a_regex() -> None:
    """The local store runs SQLite's GLOB; the pgvector store (and `rag index chunks`) the
    regex of the same pattern: each selects the same paths."""
    db = sqlite3.connect(":memory:")
    for pattern in GLOBS:
        Filters(path=pattern)  # valid
        matcher = glob_matcher(pattern)
        for name in NAMES:
            by_sqlite = db.execute("SELECT ? GLOB ?", (name, pattern)).fetchone()[0] == 1
            assert by_sqlite == bool(matcher.match(name)), (pattern, name)
    db.close()
