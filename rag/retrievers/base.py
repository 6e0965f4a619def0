"""Retrieval: a question in, the best distinct chunks out.

`Retriever.retrieve` is the same for every backend (a template method): the backend
ranks the index's chunks for the query (`_rank`), from a search as deep as the hits
asked for need (`_depth`); the base then drops what scores below the floor and near
duplicates (`distinct`), and keeps the best k.
"""

from __future__ import annotations

import itertools
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
    A backend implements `_rank` only (and `_rank_many` when it can prepare several
    queries together, `_depth` when its ranking needs a deeper search).
    """

    #: The retriever, as `retrieval.mode` names it.
    mode: ClassVar[str]

    def __init__(self, settings: RetrievalSettings) -> None:
        self.settings = settings

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
        """At most `k` hits, best first, from the documents `filters` allows. `min_score`
        replaces `retrieval.min_score`; `floor=False` keeps hits whatever their score;
        `dedup=False` keeps near-duplicates."""
        ranked = self._rank(index, query, self._depth(k, dedup), filters or None)
        return self._select(index, ranked, k, min_score, floor, dedup)

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
        for ranked in self._rank_many(index, queries, self._depth(k, dedup), filters or None):
            yield self._select(index, ranked, k, min_score, floor, dedup)

    @abstractmethod
    def _rank(self, index: StoreReader, query: str, depth: int, filters: Filters | None) -> Iterable[Hit]:
        """The chunks `filters` allows (None: all), best first, from searches `depth` deep;
        may be lazy (a hit is then worked out only if the base reaches it). Each hit's
        score is what the floor is compared with."""

    def _rank_many(
        self, index: StoreReader, queries: Sequence[str], depth: int, filters: Filters | None
    ) -> Iterator[Iterable[Hit]]:
        """`_rank` for each query, in order."""
        for query in queries:
            yield self._rank(index, query, depth, filters)

    def _depth(self, k: int, dedup: bool) -> int:
        """How deep to search for `k` hits: with dedup, more than k, as some will be
        dropped as near-duplicates."""
        return k * 2 + 4 if dedup else k

    def _select(
        self,
        index: StoreReader,
        ranked: Iterable[Hit],
        k: int,
        min_score: float | None,
        floor: bool,
        dedup: bool,
    ) -> list[Hit]:
        """The best `k` of a ranking, at or above the floor, near-duplicates dropped; the
        ranking is read only as far as needed."""
        if floor:
            limit = self.settings.min_score if min_score is None else min_score
            ranked = (h for h in ranked if h.score >= limit)
        if dedup:
            return distinct(index, ranked, self.settings.dedup_threshold, k)
        return list(itertools.islice(ranked, k))


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
