"""Contract tests of the two retrieval roles, run against every implementation.

Retrievers (`retrieval.mode` dense, lexical and hybrid, and the tests' word-overlap fake)
on a real index built by the real ingest, where one document is there twice: best first
and at most k, the score floor, a search deep enough for k distinct hits, near-duplicates
dropped unless asked, filters, an empty index. Rerankers (`rerank.kind` none, and
cross-encoder with the tiny cross-encoder the tests build) on the hits a retriever found.
A new backend adds its kind to RETRIEVERS or RERANKERS and inherits the tests.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ingest.worker import IngestWorker
from rag.config import RerankSettings, RetrievalSettings, Settings
from rag.embedders.sentence_transformers import SentenceTransformerEmbedder
from rag.rerankers import Reranker, make_reranker
from rag.retrievers import Retriever, make_retriever
from rag.retrievers.dense import DenseRetriever
from rag.store import Filters, Manifest, Store, make_catalog
from rag.types import Hit
from tests.fakes import WordOverlapRetriever

RETRIEVERS = ["dense", "lexical", "hybrid", "word-overlap"]
RERANKERS = ["none", "cross-encoder"]
QUESTION = "Which volcano is in Sicily?"


@pytest.fixture
def index(settings: Settings, worker: IngestWorker, corpus: Path) -> Store:
    shutil.copy(corpus / "cats.md", corpus / "cats-copy.md")  # the same chunks twice
    worker.run(corpus)
    return make_catalog(settings).open("default", readonly=True)


@pytest.fixture(params=RETRIEVERS)
def any_retriever(request: pytest.FixtureRequest, embedder: SentenceTransformerEmbedder) -> Retriever:
    if request.param == "word-overlap":
        return WordOverlapRetriever()
    return make_retriever(RetrievalSettings(mode=request.param), embedder)


@pytest.fixture(params=RERANKERS)
def any_reranker(request: pytest.FixtureRequest) -> Reranker:
    settings = RerankSettings(kind=request.param)
    if request.param == "cross-encoder":
        settings.model = request.getfixturevalue("tiny_cross_encoder")
    return make_reranker(settings)


# -- retrievers ----------------------------------------------------------------------


def test_best_first_and_at_most_k(any_retriever: Retriever, index: Store) -> None:
    hits = any_retriever.retrieve(index, QUESTION, 3, floor=False)
    assert 0 < len(hits) <= 3
    assert hits[0].chunk.path.endswith("volcano.txt")
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    stored = index.chunks([h.id for h in hits])
    assert all(stored[h.id] == h.chunk for h in hits)
    assert len(any_retriever.retrieve(index, QUESTION, 1, floor=False)) == 1


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


def test_the_search_goes_deep_enough_for_k_distinct_hits(any_retriever: Retriever, index: Store) -> None:
    """A passage and its copy rank first; with dedup, the copy's place goes to the next
    distinct passage: the search went deeper than k."""
    query = "Which cats eat fish and meat?"
    every = any_retriever.retrieve(index, query, 2, floor=False, dedup=False)
    assert len(every) == 2 and every[0].chunk.text == every[1].chunk.text
    kept = any_retriever.retrieve(index, query, 2, floor=False)
    assert len(kept) == 2 and kept[0].chunk.text == every[0].chunk.text != kept[1].chunk.text


def test_without_floor_or_dedup_no_chunk_twice(any_retriever: Retriever, index: Store) -> None:
    n = index.chunk_count()
    hits = any_retriever.retrieve(index, QUESTION, n + 10, floor=False, dedup=False)
    ids = [h.id for h in hits]
    assert hits and len(ids) == len(set(ids)) <= n
    if isinstance(any_retriever, DenseRetriever):  # every chunk has a score: all come back
        assert sorted(ids) == sorted(i for i, _ in index.all_chunks())


@pytest.mark.parametrize("mode", ["dense", "lexical", "hybrid"])  # the fake reads every chunk, unfiltered
def test_filters(mode: str, embedder: SentenceTransformerEmbedder, index: Store) -> None:
    any_retriever = make_retriever(RetrievalSettings(mode=mode), embedder)
    query = "Do cats live near a volcano?"
    hits = any_retriever.retrieve(index, query, 4, floor=False, filters=Filters(path="*volcano.txt"))
    assert hits and all(h.chunk.path.endswith("volcano.txt") for h in hits)
    assert any_retriever.retrieve(index, query, 4, filters=Filters()) == any_retriever.retrieve(
        index, query, 4
    )


def test_an_empty_index(
    any_retriever: Retriever, settings: Settings, embedder: SentenceTransformerEmbedder
) -> None:
    manifest = Manifest(
        embedder_kind=embedder.kind,
        embedder=embedder.name,
        dimension=embedder.dimension,
        chunk_size=settings.chunking.size,
        chunk_overlap=settings.chunking.overlap,
        encoding=settings.chunking.encoding,
    )
    empty = make_catalog(settings).create("empty", manifest)
    empty.commit()
    assert any_retriever.retrieve(empty, QUESTION, 4) == []
    assert any_retriever.retrieve(empty, QUESTION, 4, floor=False, dedup=False) == []
    assert list(any_retriever.retrieve_many(empty, [QUESTION, "cats"], 4)) == [[], []]
    empty.close()


def test_many_queries_as_one_by_one(any_retriever: Retriever, index: Store) -> None:
    queries = [QUESTION, "How is bread baked?", "What do cats eat?"]
    together = list(any_retriever.retrieve_many(index, queries, 3))
    alone = [any_retriever.retrieve(index, q, 3) for q in queries]
    assert [[h.id for h in hits] for hits in together] == [[h.id for h in hits] for hits in alone]
    for a, b in zip(together, alone, strict=True):
        assert [h.score for h in a] == pytest.approx([h.score for h in b], abs=1e-5)


# -- rerankers -----------------------------------------------------------------------


@pytest.fixture
def found(index: Store, embedder: SentenceTransformerEmbedder) -> list[Hit]:
    """Every distinct passage, as the hybrid retriever ranks them for the question."""
    retriever = make_retriever(RetrievalSettings(mode="hybrid"), embedder)
    return retriever.retrieve(index, "What do cats eat?", 20, floor=False)


def test_reranked_hits_are_the_best_k_of_those_given(any_reranker: Reranker, found: list[Hit]) -> None:
    assert len(found) > 2
    reranked = any_reranker.rerank("What do cats eat?", found, 2)
    assert len(reranked) == 2 and len({h.id for h in reranked}) == 2
    given = {h.id: h for h in found}
    for hit in reranked:  # the same hits: chunk and score (what the floor compared) kept
        assert (hit.chunk, hit.score) == (given[hit.id].chunk, given[hit.id].score)
    everything = any_reranker.rerank("What do cats eat?", found, len(found) + 5)
    assert sorted(h.id for h in everything) == sorted(given)
    assert [h.id for h in everything[:2]] == [h.id for h in reranked]
    assert any_reranker.rerank("What do cats eat?", found, 2) == reranked  # the same each time


def test_a_reranker_reorders_at_least_top_k(any_reranker: Reranker) -> None:
    assert all(any_reranker.depth(k) >= k for k in (1, 4, 50))


def test_nothing_to_rerank(any_reranker: Reranker) -> None:
    assert any_reranker.rerank("What do cats eat?", [], 4) == []


def test_each_kind_orders_by_its_own_judgement(any_reranker: Reranker, found: list[Hit]) -> None:
    reranked = any_reranker.rerank("What do cats eat?", found, len(found))
    if any_reranker.kind == "none":
        assert reranked == found
    else:
        scores = [h.scores["rerank"] for h in reranked]
        assert scores == sorted(scores, reverse=True)


def test_the_factory_builds_the_configured_kind(any_reranker: Reranker) -> None:
    assert any_reranker.kind in RERANKERS
    assert make_reranker(RerankSettings()).kind == RerankSettings().kind == "none"
