"""Cross-encoder reranking, with the tiny cross-encoder the tests build (random weights):
the hits come back in its order; the reranker is chosen by `rerank.kind`, and the
deprecated `retrieval.reranker` and `retrieval.rerank_depth` still choose it."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.worker import IngestWorker
from rag.config import RerankSettings, Settings, load_settings
from rag.embedders.sentence_transformers import SentenceTransformerEmbedder
from rag.errors import ConfigError
from rag.pipeline import Pipeline
from rag.rerankers import make_reranker
from rag.rerankers.cross_encoder import CrossEncoderReranker
from rag.rerankers.identity import IdentityReranker
from rag.retrievers import make_retriever
from rag.store import make_catalog
from tests.fakes import EchoGenerator


def test_reranker_orders_the_top_hits(
    settings: Settings, embedder: SentenceTransformerEmbedder, corpus: Path, tiny_cross_encoder: Path
) -> None:
    IngestWorker(settings, embedder).run(corpus)
    retrieval = settings.retrieval.model_copy(update={"mode": "hybrid", "min_score": -1.0})
    retriever = make_retriever(retrieval, embedder)
    reranker = make_reranker(RerankSettings(kind="cross-encoder", model=tiny_cross_encoder))
    assert isinstance(reranker, CrossEncoderReranker) and reranker.depth(4) == 20
    store = make_catalog(settings).open("default", readonly=True)
    query = "What do cats eat?"
    hits = reranker.rerank(query, retriever.retrieve(store, query, reranker.depth(4)), 4)
    assert len(hits) == 4 and all("rerank" in h.scores for h in hits)
    reranks = [h.scores["rerank"] for h in hits]
    assert reranks == sorted(reranks, reverse=True)
    direct = reranker.scores(query, [h.chunk.context for h in hits])
    assert direct == pytest.approx(reranks, abs=1e-5)
    assert {h.id for h in retriever.retrieve(store, query, 4)} == {h.id for h in hits}
    store.close()


def test_the_deprecated_settings_still_choose_the_reranker(tiny_cross_encoder: Path) -> None:
    assert load_settings().rerank == RerankSettings()
    old = load_settings(
        overrides={"retrieval.reranker": str(tiny_cross_encoder), "retrieval.rerank_depth": 7}
    )
    assert (old.rerank.kind, old.rerank.model, old.rerank.depth) == ("cross-encoder", tiny_cross_encoder, 7)
    new = {"rerank.kind": "cross-encoder", "rerank.model": str(tiny_cross_encoder)}
    assert load_settings(overrides=new).rerank == old.rerank.model_copy(update={"depth": 20})
    told = load_settings(overrides={"retrieval.reranker": str(tiny_cross_encoder), "rerank.kind": "none"})
    assert told.rerank.kind == "none"  # the new setting wins where it is set
    told = load_settings(overrides={"retrieval.rerank_depth": 7, "rerank.depth": 9})
    assert told.rerank.depth == 9


def test_the_deprecated_setting_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tiny_cross_encoder: Path
) -> None:
    monkeypatch.setenv("RAG_RETRIEVAL__RERANKER", str(tiny_cross_encoder))
    settings = load_settings()
    assert (settings.rerank.kind, settings.rerank.model) == ("cross-encoder", tiny_cross_encoder)
    settings.index = "other"  # assigning validates the settings again: the same reranker
    assert (settings.rerank.kind, settings.rerank.model) == ("cross-encoder", tiny_cross_encoder)


def test_the_pipeline_reranks_as_configured(
    settings: Settings, embedder: SentenceTransformerEmbedder, corpus: Path, tiny_cross_encoder: Path
) -> None:
    IngestWorker(settings, embedder).run(corpus)
    assert isinstance(Pipeline(settings, embedder, EchoGenerator()).reranker, IdentityReranker)
    old = load_settings(  # as an old configuration says it
        overrides={"indexes_dir": str(settings.indexes_dir), "retrieval.reranker": str(tiny_cross_encoder)}
    )
    pipeline = Pipeline(old, embedder, EchoGenerator())
    assert isinstance(pipeline.reranker, CrossEncoderReranker)
    hits = pipeline.search("What do cats eat?", min_score=-1.0)
    assert hits and all("rerank" in h.scores for h in hits)


def test_a_cross_encoder_needs_its_folder(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="rerank.model"):
        make_reranker(RerankSettings(kind="cross-encoder"))
    with pytest.raises(ConfigError, match="not found"):
        make_reranker(RerankSettings(kind="cross-encoder", model=tmp_path / "missing"))
