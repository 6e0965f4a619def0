"""Hybrid retrieval: dense and lexical rankings fused, each side as far as it can judge.

    fused(chunk) = w_dense * s_dense(chunk) + w_lexical * s_lexical(chunk)

Each side's list is its top `retrieval.fusion_depth`; a chunk missing from one list gets
nothing from it. `s` is a hit's score over its own list's distribution for this question
(`retrieval.fusion` `dbsf`: cosine, and BM25, mapped from mean - 3 sd .. mean + 3 sd to
0..1), or 1/(rrf_k + rank) (`rrf`). The weights follow each side's reliability for this
question (`reliability`): words match only within one language, and an embedder that
does not read the question's language is no judge of passages in it. Measured with
bench/fusion.py and bench/languages.py (docs/evaluation.md).

Hits are ordered by the fused value, but the score a hit carries (and that
`retrieval.min_score` is compared with) is the better of its two evidences, both from 0
to 1: its cosine similarity to the question (computed for every fused chunk, also those
only the lexical side found) and its lexical coverage (the share of the question's term
weight it contains). So "nothing found" means the same in every mode: no chunk is close
enough to the question by meaning or by words.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np

from rag.analysis import detect_language, told_language
from rag.config import RetrievalSettings
from rag.embedders.base import Embedder
from rag.retrievers.base import Retriever, stored_vector
from rag.types import Hit

if TYPE_CHECKING:
    from rag.store import Filters, StoreReader


class HybridRetriever(Retriever):
    """Dense search and BM25, fused by reciprocal rank."""

    mode = "hybrid"

    def __init__(self, embedder: Embedder, settings: RetrievalSettings) -> None:
        super().__init__(settings)
        self.embedder = embedder

    def _depth(self, k: int, dedup: bool) -> int:
        """Each side is searched at least `fusion_depth` deep (what the fusion weighs), and
        as deep as dedup would need, whether it is on or not."""
        return max(self.settings.fusion_depth, super()._depth(k, True))

    def _rank(self, index: StoreReader, query: str, depth: int, filters: Filters | None) -> Iterator[Hit]:
        """Fused order, each hit scored only when reached (the cosine of lexical-only hits
        computed then)."""
        s = self.settings
        vector = self.embedder.embed_query(query)
        dense = index.search(vector, depth, filters)
        lexical = index.search_text(query, depth, filters)
        weights = reliability(self.embedder, told_language(query), dense, lexical, s)
        fused = fuse(dense, lexical, *weights, s)
        found = {h.id: h for h in (*reversed(lexical), *reversed(dense))}  # the dense hit where both
        cosine = {h.id: h.score for h in dense}
        coverage = {h.id: h.score for h in lexical}
        bm25 = {h.id: h.scores.get("bm25", 0.0) for h in lexical}
        for chunk_id in sorted(fused, key=lambda i: -fused[i]):
            if chunk_id not in cosine:  # found by words only: how close in meaning?
                stored = stored_vector(index, chunk_id)  # None: replaced since the search
                cosine[chunk_id] = 0.0 if stored is None else float(np.dot(stored, vector))
            scores = {
                "dense": cosine[chunk_id],
                "coverage": coverage.get(chunk_id, 0.0),
                "bm25": bm25.get(chunk_id, 0.0),
                "fused": fused[chunk_id],
            }
            evidence = max(scores["dense"], scores["coverage"])
            yield Hit(chunk_id, found[chunk_id].chunk, evidence, scores)


def fuse(
    dense: list[Hit],
    lexical: list[Hit],
    dense_weight: float,
    lexical_weight: float,
    settings: RetrievalSettings,
) -> dict[int, float]:
    """Each chunk's fused value: its weighted evidence from both rankings."""
    fused: dict[int, float] = {}
    sides = (
        (dense_weight, [h.score for h in dense], dense),
        (lexical_weight, [h.scores.get("bm25", h.score) for h in lexical], lexical),
    )
    for weight, values, ranking in sides:
        if not weight or not ranking:
            continue
        if settings.fusion == "rrf":
            parts = [1 / (settings.rrf_k + rank) for rank in range(1, len(ranking) + 1)]
        else:  # the spread of the first fusion_depth: the same however deep the lists go
            parts = spread_scaled(values, settings.fusion_depth)
        for hit, part in zip(ranking, parts, strict=True):
            fused[hit.id] = fused.get(hit.id, 0.0) + weight * part
    for hit in (*dense, *lexical):  # a side weighed out still lists its hits, last
        fused.setdefault(hit.id, 0.0)
    return fused


def spread_scaled(values: list[float], head: int | None = None) -> list[float]:
    """Scores over their own distribution (distribution-based score fusion): mean - 3 sd
    of the first `head` values (default: all) becomes 0 and mean + 3 sd becomes 1, so that
    a best hit far above the rest of its list weighs more than one just above it."""
    sample = values[:head] if head else values
    mean = statistics.fmean(sample)
    sd = statistics.pstdev(sample) if len(sample) > 1 else 0.0
    if sd <= 1e-9:
        return [0.5] * len(values)
    return [(v - mean + 3 * sd) / (6 * sd) for v in values]


def reliability(
    embedder: Embedder,
    language: str | None,
    dense: list[Hit],
    lexical: list[Hit],
    settings: RetrievalSettings,
) -> tuple[float, float]:
    """The weights of the dense and lexical sides for one question. The passages' language
    is the one most of the closest passages by meaning are in (the dense side's best ten).
    Words match only within one language: the lexical side is weighed out when the
    passages are in another language than the question. An embedder trained on other
    languages than the question's ranks poorly where the words can judge: the dense side
    is weighed out when the passages are in the question's language and the embedder does
    not read it (an English model and French documents). A question whose words do not
    tell its language (`told_language`: None) leaves both as configured."""
    dense_weight, lexical_weight = settings.dense_weight, settings.lexical_weight
    if not dense or language is None:
        return dense_weight, lexical_weight
    found = Counter(detect_language(h.chunk.text) for h in dense[:10])
    passages = found.most_common(1)[0][0]
    if passages != language:
        lexical_weight = 0.0
    elif embedder.languages is not None and language not in embedder.languages:
        dense_weight = 0.0
    return dense_weight, lexical_weight
