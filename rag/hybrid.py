"""Hybrid retrieval: dense and lexical rankings fused by reciprocal rank fusion.

    fused(chunk) = w_dense / (rrf_k + rank_dense) + w_lexical / (rrf_k + rank_lexical)

Ranks come from each method's top `retrieval.fusion_depth`; a chunk missing from one
ranking gets nothing from it. Hits are ordered by the fused value, but the score a hit
carries (and that `retrieval.min_score` is compared with) is the better of its two
evidences, both from 0 to 1: its cosine similarity to the question (computed for every
fused chunk, also those only the lexical side found) and its lexical coverage (the share
of the question's term weight it contains). So "nothing found" means the same in every
mode: no chunk is close enough to the question by meaning or by words.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np

from rag.analysis import detect_language
from rag.config import RetrievalSettings
from rag.embedders import Embedder
from rag.retrieval import Retriever, distinct, stored_vector
from rag.types import Hit

if TYPE_CHECKING:
    from rag.store import Filters, Store


class HybridRetriever(Retriever):
    """Dense search and BM25, fused by reciprocal rank."""

    mode = "hybrid"

    def __init__(self, embedder: Embedder, settings: RetrievalSettings) -> None:
        super().__init__(settings)
        self.embedder = embedder

    def retrieve(
        self,
        index: Store,
        query: str,
        k: int,
        *,
        min_score: float | None = None,
        floor: bool = True,
        dedup: bool = True,
        filters: Filters | None = None,
    ) -> list[Hit]:
        s = self.settings
        depth = max(s.fusion_depth, k * 2 + 4)
        vector = self.embedder.embed_query(query)
        dense = index.search(vector, depth, filters)
        lexical = index.search_text(query, depth, filters)
        weights = reliability(self.embedder, detect_language(query), dense, lexical, s)
        fused = fuse(dense, lexical, *weights, s.rrf_k)
        found = {h.id: h for h in (*reversed(lexical), *reversed(dense))}  # the dense hit where both
        cosine = {h.id: h.score for h in dense}
        coverage = {h.id: h.score for h in lexical}
        bm25 = {h.id: h.scores.get("bm25", 0.0) for h in lexical}
        limit = self.settings.min_score if min_score is None else min_score

        def ranked() -> Iterator[Hit]:
            """Fused order, each hit scored only when reached (cosine of lexical-only hits
            computed then), below the floor left out."""
            for chunk_id in sorted(fused, key=lambda i: -fused[i]):
                if chunk_id not in cosine:  # found by words only: how close in meaning?
                    stored = stored_vector(index, chunk_id)  # None: replaced since the search
                    cosine[chunk_id] = 0.0 if stored is None else float(np.dot(stored, vector))
                scores = {"dense": cosine[chunk_id], "coverage": coverage.get(chunk_id, 0.0),
                          "bm25": bm25.get(chunk_id, 0.0), "fused": fused[chunk_id]}  # fmt: skip
                evidence = max(scores["dense"], scores["coverage"])
                if floor and evidence < limit:
                    continue
                yield Hit(chunk_id, found[chunk_id].chunk, evidence, scores)

        if dedup:
            return distinct(index, ranked(), s.dedup_threshold, k)
        return list(itertools.islice(ranked(), k))


def fuse(dense: list[Hit], lexical: list[Hit], dense_weight: float, lexical_weight: float,
         rrf_k: int) -> dict[int, float]:  # fmt: skip
    """Each chunk's reciprocal rank fusion of the two rankings, weighted."""
    fused: dict[int, float] = {}
    for weight, ranking in ((dense_weight, dense), (lexical_weight, lexical)):
        for rank, hit in enumerate(ranking, start=1):
            fused[hit.id] = fused.get(hit.id, 0.0) + weight / (rrf_k + rank)
    return fused


def reliability(embedder: Embedder, language: str, dense: list[Hit], lexical: list[Hit],
                settings: RetrievalSettings) -> tuple[float, float]:  # fmt: skip
    """The weights of the dense and lexical rankings for one question: the configured
    weights, the dense one dropped when the embedder does not read the question's
    language (an English model's ranking of a French question is mostly noise)."""
    dense_weight = settings.dense_weight
    if embedder.languages is not None and language not in embedder.languages:
        dense_weight = 0.0
    return dense_weight, settings.lexical_weight
