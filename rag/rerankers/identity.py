"""No reranking (`rerank.kind = none`): the retriever's order, as it is."""

from __future__ import annotations

from collections.abc import Sequence

from rag.rerankers.base import Reranker
from rag.types import Hit


class IdentityReranker(Reranker):
    """Keeps the retriever's order."""

    kind = "none"

    def rerank(self, query: str, hits: Sequence[Hit], top_k: int) -> list[Hit]:
        return list(hits[:top_k])
