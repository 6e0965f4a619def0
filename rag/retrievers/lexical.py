"""Lexical retrieval: the question's words, stemmed in its language, matched by BM25.

Carries what the English embedder cannot: French text, rare names, codes and numbers. The
score of a hit is the share of the question's term weight (idf) that the chunk contains,
from 0 to 1, so `retrieval.min_score` means the same kind of thing as in dense mode: how
much of the question the passage answers to.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rag.retrievers.base import Retriever
from rag.types import Hit

if TYPE_CHECKING:
    from rag.store import Filters, StoreReader


class LexicalRetriever(Retriever):
    """BM25 over the index's lexical side (`StoreReader.search_text`)."""

    mode = "lexical"

    def _rank(self, index: StoreReader, query: str, depth: int, filters: Filters | None) -> list[Hit]:
        return index.search_text(query, depth, filters)
