"""Dense retrieval: the question embedded by the index's embedder, its nearest chunks."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import numpy as np

from rag.config import RetrievalSettings
from rag.embedders.base import Embedder
from rag.retrievers.base import Retriever
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

    def _rank(self, index: StoreReader, query: str, depth: int, filters: Filters | None) -> list[Hit]:
        return index.search(self.embedder.embed_query(query), depth, filters)

    def _rank_many(
        self, index: StoreReader, queries: Sequence[str], depth: int, filters: Filters | None
    ) -> Iterator[list[Hit]]:
        """The queries embedded together, then searched one by one."""
        for vector in self.embedder.embed_queries(list(queries)):
            yield index.search(vector, depth, filters)

    def search(self, index: StoreReader, vector: NDArray[np.float32], k: int) -> list[Hit]:
        """`retrieve` with its defaults, for a query already embedded."""
        return self._select(index, index.search(vector, self._depth(k, True), None), k, None, True, True)
