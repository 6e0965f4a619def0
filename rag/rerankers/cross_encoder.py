"""Reranking by a local cross-encoder (`rerank.kind = cross-encoder`).

A cross-encoder reads the question and a passage together and scores how well the
passage answers it: slower than the first search, often sharper. None ships offline, so
it is off by default: set `rerank.model` to a sentence-transformers CrossEncoder folder.
The retriever's best `rerank.depth` hits are scored and put in that order; each hit keeps
its own score (what `min_score` compares with) and gets the cross-encoder's as
`scores["rerank"]`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from rag.config import RerankSettings
from rag.errors import ConfigError
from rag.offline import ensure_offline
from rag.rerankers.base import Reranker
from rag.types import Hit

logger = logging.getLogger(__name__)


class CrossEncoderReranker(Reranker):
    """A sentence-transformers CrossEncoder from a local folder."""

    kind = "cross-encoder"

    def __init__(self, settings: RerankSettings, device: str = "cpu") -> None:
        ensure_offline()
        folder = settings.model
        if folder is None:
            raise ConfigError("rerank.kind = cross-encoder needs rerank.model, a CrossEncoder folder")
        if not folder.is_dir():
            raise ConfigError(f"reranker folder not found: {folder}")
        from sentence_transformers import CrossEncoder

        try:
            self.model: Any = CrossEncoder(str(folder), device=device)
        except Exception as exc:  # the library raises many kinds; one line for the user
            raise ConfigError(f"cannot load reranker {folder}: {exc}") from exc
        self.settings = settings
        self._lock = threading.Lock()  # one model, many request threads
        logger.info("reranker loaded folder=%s", folder)

    def depth(self, top_k: int) -> int:
        return max(top_k, self.settings.depth)

    def rerank(self, query: str, hits: Sequence[Hit], top_k: int) -> list[Hit]:
        scores = self.scores(query, [h.chunk.context for h in hits])
        ranked = sorted(zip(scores, range(len(hits)), hits, strict=True), key=lambda t: (-t[0], t[1]))
        return [replace(h, scores={**h.scores, "rerank": s}) for s, _, h in ranked][:top_k]

    def scores(self, query: str, texts: Sequence[str]) -> list[float]:
        """The cross-encoder's score of each text for the query."""
        if not texts:
            return []
        with self._lock:
            found = self.model.predict([(query, t) for t in texts], show_progress_bar=False)
        return [float(s) for s in found]
