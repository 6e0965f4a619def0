"""Retrieval: a question in, the best distinct chunks out.

`make_retriever(settings, embedder)` is the one place a retriever is chosen, by
`retrieval.mode`. The pipeline and `rag eval` both retrieve through it, so evaluation
measures what answering uses.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from rag.config import RetrievalSettings
from rag.types import Hit

if TYPE_CHECKING:
    from rag.store import Filters, StoreReader


class Retriever(ABC):
    """Finds the chunks of an index that answer a query, best first.

    By default a retriever applies `retrieval.min_score` and drops near-duplicates, as
    answering needs; `floor=False` and `dedup=False` turn those off, for ranking depth.
    """

    #: The retriever, as `retrieval.mode` names it.
    mode: ClassVar[str]

    def __init__(self, settings: RetrievalSettings) -> None:
        self.settings = settings

    @abstractmethod
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
        """At most `k` hits, best first. `min_score` replaces `retrieval.min_score`;
        `floor=False` keeps hits whatever their score; `dedup=False` keeps near-duplicates."""

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
        """`retrieve` for each query, in order, as each is ready; a backend may prepare
        them together, faster."""
        for query in queries:
            yield self.retrieve(
                index, query, k, min_score=min_score, floor=floor, dedup=dedup, filters=filters
            )

    def _floor(self, hits: list[Hit], min_score: float | None, floor: bool) -> list[Hit]:
        if not floor:
            return hits
        limit = self.settings.min_score if min_score is None else min_score
        return [h for h in hits if h.score >= limit]


def distinct(
    index: StoreReader, hits: Iterable[Hit], threshold: float, limit: int | None = None
) -> list[Hit]:
    """Drop chunks too similar to a better one (overlaps, repeated boilerplate): the same
    text, or vectors with a cosine similarity of `threshold` or more. Stops once `limit`
    are kept (the hits may be a lazy iterator)."""
    kept: list[Hit] = []
    kept_vectors: list[np.ndarray] = []
    seen_text: set[str] = set()
    for hit in hits:
        if limit is not None and len(kept) >= limit:
            break
        text = " ".join(hit.chunk.text.split())
        if text in seen_text:
            continue
        vector = stored_vector(index, hit.id)
        if (
            vector is not None
            and kept_vectors
            and float(np.max(np.stack(kept_vectors) @ vector)) >= threshold
        ):
            continue
        kept.append(hit)
        if vector is not None:
            kept_vectors.append(vector)
        seen_text.add(text)
    return kept


def stored_vector(index: StoreReader, chunk_id: int) -> np.ndarray | None:
    """A hit's stored vector; None when it is gone: a search reads one committed state, and
    by the time its hits are looked at, a writer may have replaced their document and
    committed (the hit's chunk, already read, is still a right answer from that state)."""
    try:
        return index.vector(chunk_id)
    except KeyError:
        return None
