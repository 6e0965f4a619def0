"""Reranking: the retrieved hits put in a sharper order.

A reranker reads the question with each of the best hits a retriever found and orders
them anew. The callers retrieve `depth(top_k)` hits (as many as the reranker reorders),
then keep the `rerank(query, hits, top_k)` it returns.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import ClassVar

from rag.types import Hit


class Reranker(ABC):
    """Orders a retriever's hits for a query, best first."""

    #: The reranker, as `rerank.kind` names it.
    kind: ClassVar[str]

    def depth(self, top_k: int) -> int:
        """How many hits to retrieve for `top_k` reranked ones: all it reorders."""
        return top_k

    @abstractmethod
    def rerank(self, query: str, hits: Sequence[Hit], top_k: int) -> list[Hit]:
        """At most `top_k` of `hits`, best first for `query`. Each hit keeps its score (what
        the score floor compared); a reranker may add its own to `scores`."""
