"""Cross-encoder reranking, with a tiny cross-encoder the test builds itself (random
weights, the packaged MiniLM's tokenizer): the hits come back in its order."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.worker import IngestWorker
from rag.config import Settings
from rag.embedders.base import resolve_embedder
from rag.embedders.sentence_transformers import SentenceTransformerEmbedder
from rag.retrievers import make_retriever
from rag.store import make_catalog


@pytest.fixture(scope="module")
def tiny_cross_encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    folder = tmp_path_factory.mktemp("tiny-cross-encoder")
    tokenizer = AutoTokenizer.from_pretrained(str(resolve_embedder("all-MiniLM-L6-v2")[1]))
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        num_labels=1,
    )
    BertForSequenceClassification(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_reranker_orders_the_top_hits(
    settings: Settings, embedder: SentenceTransformerEmbedder, corpus: Path, tiny_cross_encoder: Path
) -> None:
    IngestWorker(settings, embedder).run(corpus)
    retrieval = settings.retrieval.model_copy(
        update={"mode": "hybrid", "min_score": -1.0, "reranker": tiny_cross_encoder}
    )
    retriever = make_retriever(retrieval, embedder)
    store = make_catalog(settings).open("default", readonly=True)
    hits = retriever.retrieve(store, "What do cats eat?", 4)
    assert len(hits) == 4 and all("rerank" in h.scores for h in hits)
    reranks = [h.scores["rerank"] for h in hits]
    assert reranks == sorted(reranks, reverse=True)
    from rag.rerankers.cross_encoder import CrossEncoderReranker

    direct = CrossEncoderReranker(tiny_cross_encoder).scores(
        "What do cats eat?", [h.chunk.context for h in hits]
    )
    assert direct == pytest.approx(reranks, abs=1e-5)
    plain = make_retriever(retrieval.model_copy(update={"reranker": None}), embedder)
    assert {h.id for h in plain.retrieve(store, "What do cats eat?", 4)} == {h.id for h in hits}
    store.close()
