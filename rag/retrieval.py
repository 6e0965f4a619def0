"""Retrieval: a question in, the best distinct chunks out."""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from rag.config import RetrievalSettings
from rag.embedders import Embedder
from rag.generation import Message
from rag.index import Index
from rag.types import Hit

_REFERS_BACK = re.compile(
    r"\b(it|its|they|them|their|this|that|these|those|he|she|his|her|there|the same|"
    r"above|previous|former|latter)\b",
    re.IGNORECASE,
)
_SHORT_QUESTION_WORDS = 5


class Retriever:
    """Embeds a question with the index's embedder and searches the index."""

    def __init__(self, embedder: Embedder, settings: RetrievalSettings) -> None:
        self.embedder = embedder
        self.settings = settings

    def retrieve(
        self,
        index: Index,
        query: str,
        *,
        top_k: int | None = None,
        min_score: float | None = None,
    ) -> list[Hit]:
        k = top_k or self.settings.top_k
        floor = self.settings.min_score if min_score is None else min_score
        vector = self.embedder.embed_one(query)
        # Ask for more than k: some will be dropped as near-duplicates.
        hits = [h for h in index.search(vector, k * 2 + 4) if h.score >= floor]
        return self.distinct(index, hits)[:k]

    def distinct(self, index: Index, hits: Sequence[Hit]) -> list[Hit]:
        """Drop chunks too similar to a better one (overlaps, repeated boilerplate)."""
        kept: list[Hit] = []
        kept_vectors: list[np.ndarray] = []
        seen_text: set[str] = set()
        for hit in hits:
            text = " ".join(hit.chunk.text.split())
            if text in seen_text:
                continue
            vector = index.vector(hit.id)
            if kept_vectors and float(np.max(np.stack(kept_vectors) @ vector)) >= (
                self.settings.dedup_threshold
            ):
                continue
            kept.append(hit)
            kept_vectors.append(vector)
            seen_text.add(text)
        return kept


def contextualize(question: str, history: Sequence[Message]) -> str:
    """The question made self-contained for search: short or referring-back questions
    carry the previous user turn with them."""
    previous = [m["content"] for m in history if m.get("role") == "user" and m.get("content")]
    if not previous:
        return question
    if len(question.split()) <= _SHORT_QUESTION_WORDS or _REFERS_BACK.search(question):
        return f"{previous[-1]}\n{question}"
    return question
