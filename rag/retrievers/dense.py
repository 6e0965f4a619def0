"""Retrieval: a question in, the best distinct chunks out.

`make_retriever(settings, embedder)` is the one place a retriever is chosen, by
`retrieval.mode`. The pipeline and `rag eval` both retrieve through it, so evaluation
measures what answering uses.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import numpy as np

from rag.config import RetrievalSettings
from rag.embedders.base import Embedder
from rag.retrievers.base import Retriever, distinct
from rag.types import Hit

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from rag.store import Filters, StoreReader


class DenseRetriever(Retriever):
    """Embeds the query with the index's embedder and searches the index's vectors."""

    mode = "dense"

    def __init__(self, embedder: Embedder, settings: RetrievalSettings) -> None:
        super().__init__(settings)
        self.embedder = embedder

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
        vector = self.embedder.embed_query(query)
        return self.search(index, vector, k, min_score=min_score, floor=floor, dedup=dedup, filters=filters)

    def retrieve_many(
        self,
        index: StoreReader,
        queries: Sequence[str],
        k: int,
        *,
        min_score: float | None = None,
        floor: bool = True,
        dedup: bool = True,
        filters: Filters | None = None,
    ) -> Iterator[list[Hit]]:
        """The queries embedded together, then searched one by one."""
        vectors = self.embedder.embed_queries(list(queries))
        for vector in vectors:
            yield self.search(
                index, vector, k, min_score=min_score, floor=floor, dedup=dedup, filters=filters
            )

    def search(
        self,
        index: StoreReader,
        vector: NDArray[np.float32],
        k: int,
        *,
        min_score: float | None = None,
        floor: bool = True,
        dedup: bool = True,
        filters: Filters | None = None,
    ) -> list[Hit]:
        """Retrieval for a query already embedded."""
        # With dedup, ask for more than k: some will be dropped as near-duplicates.
        hits = self._floor(index.search(vector, k * 2 + 4 if dedup else k, filters), min_score, floor)
        return (distinct(index, hits, self.settings.dedup_threshold, k) if dedup else hits)[:k]

    def distinct(self, index: StoreReader, hits: Sequence[Hit]) -> list[Hit]:
        """Drop chunks too similar to a better one (see `distinct`)."""
        return distinct(index, hits, self.settings.dedup_threshold)
