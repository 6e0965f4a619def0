"""Retrieval: a question in, the best distinct chunks out.

`make_retriever(settings, embedder)` is the one place a retriever is chosen, by
`retrieval.mode`. The pipeline and `rag eval` both retrieve through it, so evaluation
measures what answering uses.
"""

from __future__ import annotations

from rag.config import RetrievalSettings
from rag.embedders.base import Embedder
from rag.errors import ConfigError
from rag.retrievers.base import Retriever
from rag.retrievers.dense import DenseRetriever


def make_retriever(settings: RetrievalSettings, embedder: Embedder) -> Retriever:
    """The retriever `settings.mode` names, over the index's embedder; reordered by a
    cross-encoder when `settings.reranker` names one."""
    base = _base_retriever(settings, embedder)
    if settings.reranker is None:
        return base
    from rag.rerankers.cross_encoder import CrossEncoderReranker, RerankingRetriever

    return RerankingRetriever(base, CrossEncoderReranker(settings.reranker), settings)


def _base_retriever(settings: RetrievalSettings, embedder: Embedder) -> Retriever:
    if settings.mode == "dense":
        return DenseRetriever(embedder, settings)
    if settings.mode == "lexical":
        from rag.retrievers.lexical import LexicalRetriever

        return LexicalRetriever(settings)
    if settings.mode == "hybrid":
        from rag.retrievers.hybrid import HybridRetriever

        return HybridRetriever(embedder, settings)
    raise ConfigError(f"unknown retrieval mode {settings.mode!r}")
