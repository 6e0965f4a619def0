"""Lexical retrieval: the question's words, stemmed in its language, matched by BM25.

Carries what the English embedder cannot: French text, rare names, codes and numbers. The
score of a hit is the share of the question's term weight (idf) that the chunk contains,
from 0 to 1, so `retrieval.min_score` means the same kind of thing as in dense mode: how
much of the question the passage answers to.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rag.config import RetrievalSettings
from rag.retrievers.base import Retriever, distinct
from rag.types import Hit

if TYPE_CHECKING:
    from rag.store import Filters, StoreReader


class LexicalRetriever(Retriever):
    """BM25 over the index's lexical side (`StoreReader.search_text`)."""

    mode = "lexical"

    def __init__(self, settings: RetrievalSettings) -> None:
        super().__init__(settings)

    def retrieve(
        self,
        index: StoreReader,
        query: str,
        k: int,
        *,
        min_score: float | None = None,
        floor: bool = True,
        dedup: bool = True,
        filters: Filters | None = None,
    ) -> list[Hit]:
        depth = k * 2 + 4 if dedup else k
        hits = self._floor(index.search_text(query, depth, filters), min_score, floor)
        return (distinct(index, hits, self.settings.dedup_threshold, k) if dedup else hits)[:k]
