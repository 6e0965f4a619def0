"""Rerankers: a retriever's best hits, ordered anew.

`make_reranker(settings)` is the one place a reranker is chosen, by `rerank.kind`:
`none` (the retriever's order) in `identity.py`, `cross-encoder` (a local
sentence-transformers CrossEncoder) in `cross_encoder.py`; each implements
`base.Reranker`. The pipeline, `rag search` and `rag eval` retrieve `depth(top_k)` hits,
then rerank them.
"""

from __future__ import annotations

from rag.config import RerankSettings
from rag.errors import ConfigError
from rag.rerankers.base import Reranker
from rag.rerankers.identity import IdentityReranker

__all__ = ["Reranker", "make_reranker"]


def make_reranker(settings: RerankSettings) -> Reranker:
    """The reranker `settings.kind` names, its model loaded."""
    if settings.kind == "none":
        return IdentityReranker()
    if settings.kind == "cross-encoder":
        from rag.rerankers.cross_encoder import CrossEncoderReranker

        return CrossEncoderReranker(settings)
    raise ConfigError(f"unknown reranker kind {settings.kind!r}")
