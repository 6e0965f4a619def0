"""Retrievers beyond their contract (tests/rag/test_retrieval_contract.py): the factory,
and hits whose document was replaced since the search."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ingest.worker import IngestWorker
from rag.config import RetrievalSettings, Settings
from rag.embedders.sentence_transformers import SentenceTransformerEmbedder
from rag.retrievers import make_retriever
from rag.retrievers.base import distinct
from rag.retrievers.dense import DenseRetriever
from rag.store import Store
from tests.fakes import EchoGenerator

QUESTION = "Which volcano is in Sicily?"


@pytest.fixture
def index(
    settings: Settings, worker: IngestWorker, corpus: Path, embedder: SentenceTransformerEmbedder
) -> Store:
    shutil.copy(corpus / "cats.md", corpus / "cats-copy.md")  # the same chunks twice
    worker.run(corpus)
    from rag.pipeline import Pipeline

    return Pipeline(settings, embedder, EchoGenerator()).index()


def test_factory_builds_the_configured_mode(embedder: SentenceTransformerEmbedder) -> None:
    assert make_retriever(RetrievalSettings(), embedder).mode == RetrievalSettings().mode
    for mode in ("dense", "lexical", "hybrid"):
        assert make_retriever(RetrievalSettings(mode=mode), embedder).mode == mode
    assert isinstance(make_retriever(RetrievalSettings(mode="dense"), embedder), DenseRetriever)


def test_hits_of_a_document_replaced_since_the_search(
    index: Store, worker: IngestWorker, corpus: Path, embedder: SentenceTransformerEmbedder
) -> None:
    """A search reads one committed state; a writer may replace the hits' document and
    commit (purging its old chunks) before the hits are deduplicated: they are kept."""
    hits = make_retriever(RetrievalSettings(mode="dense"), embedder).retrieve(
        index, QUESTION, 3, floor=False, dedup=False
    )
    assert hits and hits[0].chunk.path.endswith("volcano.txt")
    (corpus / "volcano.txt").write_text("Mount Etna, in Sicily, erupted again this year.\n")
    worker.run(corpus)
    index.search(embedder.embed_one(QUESTION), 1)  # the reader follows the new commit
    with pytest.raises(KeyError):
        index.vector(hits[0].id)
    assert [h.id for h in distinct(index, hits, 0.9)] == [h.id for h in hits]
