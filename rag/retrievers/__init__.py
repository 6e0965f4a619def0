"""Retrieval: a question in, the best distinct chunks out.

`make_retriever(settings, embedder)` is the one place a retriever is chosen, by
`retrieval.mode`. The pipeline and `rag eval` both retrieve through it, so evaluation
measures what answering uses. Reordering the hits is another role's (`rag.rerankers`).
"""

from __future__ import annotations

from rag.config import RetrievalSettings
from rag.embedders.base import Embedder
from rag.errors import ConfigError
from rag.retrievers.base import Retriever
from rag.retrievers.dense import DenseRetriever

__all__ = ["Retriever", "make_retriever"]


def make_retriever(settings: RetrievalSettings, embedder: Embedder) -> Retriever:
    """The retriever `settings.mode` names, over the index's embedder."""
    if settings.mode == "dense":
        return DenseRetriever(embedder, settings)
    if settings.mode == "lexical":
        from rag.retrievers.lexical import LexicalRetriever

        return LexicalRetriever(settings)
    if settings.mode == "hybrid":
        from rag.retrievers.hybrid import HybridRetriever

        return HybridRetriever(embedder, settings)
    raise ConfigError(f"unknown retrieval mode {settings.mode!r}")
