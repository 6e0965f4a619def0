"""The retriever contract, run against every implementation (dense and the fake), on a
real index built by the real ingest."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ingest.worker import IngestWorker
from rag.config import RetrievalSettings, Settings
from rag.embedders.sentence_transformers import SentenceTransformerEmbedder
from rag.retrievers import make_retriever
from rag.retrievers.base import Retriever, distinct
from rag.retrievers.dense import DenseRetriever
from rag.store import Store
from tests.fakes import EchoGenerator, WordOverlapRetriever

QUESTION = "Which volcano is in Sicily?"


@pytest.fixture
def index(
    settings: Settings, worker: IngestWorker, corpus: Path, embedder: SentenceTransformerEmbedder
) -> Store:
    shutil.copy(corpus / "cats.md", corpus / "cats-copy.md")  # the same chunks twice
    worker.run(corpus)
    from rag.pipeline import Pipeline

    return Pipeline(settings, embedder, EchoGenerator()).index()


@pytest.fixture(params=["dense", "lexical", "hybrid", "word-overlap"])
def any_retriever(request: pytest.FixtureRequest, embedder: SentenceTransformerEmbedder) -> Retriever:
    if request.param == "word-overlap":
        return WordOverlapRetriever()
    return make_retriever(RetrievalSettings(mode=request.param), embedder)


def test_best_first_and_at_most_k(any_retriever: Retriever, index: Store) -> None:
    hits = any_retriever.retrieve(index, QUESTION, 3, floor=False)
    assert 0 < len(hits) <= 3
    assert hits[0].chunk.path.endswith("volcano.txt")
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    stored = index.chunks([h.id for h in hits])
    assert all(stored[h.id] == h.chunk for h in hits)


def test_the_floor(any_retriever: Retriever, index: Store) -> None:
    query = "Quantum gluons near a volcano?"  # a word in common, nothing close
    assert any_retriever.retrieve(index, query, 4, min_score=0.99) == []
    unfloored = any_retriever.retrieve(index, query, 4, min_score=0.99, floor=False)
    assert unfloored and all(h.score < 0.99 for h in unfloored)
    floor = any_retriever.settings.min_score
    assert all(h.score >= floor for h in any_retriever.retrieve(index, QUESTION, 10))


def test_near_duplicates_are_dropped_unless_asked(any_retriever: Retriever, index: Store) -> None:
    kept = any_retriever.retrieve(index, "What do cats eat?", 10, floor=False)
    texts = [h.chunk.text for h in kept]
    assert len(texts) == len(set(texts))
    every = any_retriever.retrieve(index, "What do cats eat?", 10, floor=False, dedup=False)
    assert len(every) > len(kept)
    assert len({h.chunk.text for h in every}) < len(every)


def test_without_floor_or_dedup_no_chunk_twice(any_retriever: Retriever, index: Store) -> None:
    n = index.chunk_count()
    hits = any_retriever.retrieve(index, QUESTION, n + 10, floor=False, dedup=False)
    ids = [h.id for h in hits]
    assert hits and len(ids) == len(set(ids)) <= n
    if isinstance(any_retriever, DenseRetriever):  # every chunk has a score: all come back
        assert sorted(ids) == sorted(i for i, _ in index.all_chunks())


def test_many_queries_as_one_by_one(any_retriever: Retriever, index: Store) -> None:
    queries = [QUESTION, "How is bread baked?", "What do cats eat?"]
    together = list(any_retriever.retrieve_many(index, queries, 3))
    alone = [any_retriever.retrieve(index, q, 3) for q in queries]
    assert [[h.id for h in hits] for hits in together] == [[h.id for h in hits] for hits in alone]
    for a, b in zip(together, alone, strict=True):
        assert [h.score for h in a] == pytest.approx([h.score for h in b], abs=1e-5)


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
