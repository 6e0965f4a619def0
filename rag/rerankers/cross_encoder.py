"""Optional reranking of the retrieved top-N by a local cross-encoder.

A cross-encoder reads the question and a passage together and scores how well the
passage answers it: slower than the first search, often sharper. None ships offline, so
it is off by default: set `retrieval.reranker` to a sentence-transformers CrossEncoder
folder. The first retriever's best `retrieval.rerank_depth` hits are scored and put in
that order; each hit keeps its own score (what `min_score` compares with) and gets the
cross-encoder's as `scores["rerank"]`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rag.config import RetrievalSettings
from rag.errors import ConfigError
from rag.offline import ensure_offline
from rag.retrievers.base import Retriever
from rag.types import Hit

if TYPE_CHECKING:
    from rag.store import Filters, StoreReader

logger = logging.getLogger(__name__)


class CrossEncoderReranker:
    """A sentence-transformers CrossEncoder from a local folder."""

    def __init__(self, folder: Path, device: str = "cpu") -> None:
        ensure_offline()
        if not folder.is_dir():
            raise ConfigError(f"reranker folder not found: {folder}")
        from sentence_transformers import CrossEncoder

        try:
            self.model: Any = CrossEncoder(str(folder), device=device)
        except Exception as exc:  # the library raises many kinds; one line for the user
            raise ConfigError(f"cannot load reranker {folder}: {exc}") from exc
        self._lock = threading.Lock()  # one model, many request threads
        logger.info("reranker loaded folder=%s", folder)

    def scores(self, query: str, texts: Sequence[str]) -> list[float]:
        if not texts:
            return []
        with self._lock:
            found = self.model.predict([(query, t) for t in texts], show_progress_bar=False)
        return [float(s) for s in found]


class RerankingRetriever(Retriever):
    """Another retriever's hits, reordered by a cross-encoder."""

    def __init__(self, base: Retriever, reranker: CrossEncoderReranker, settings: RetrievalSettings) -> None:
        super().__init__(settings)
        self.base = base
        self.reranker = reranker
        self.mode = base.mode  # type: ignore[misc]

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
        depth = max(k, self.settings.rerank_depth)
        hits = self.base.retrieve(
            index, query, depth, min_score=min_score, floor=floor, dedup=dedup, filters=filters
        )
        scores = self.reranker.scores(query, [h.chunk.context for h in hits])
        ranked = sorted(zip(scores, range(len(hits)), hits, strict=True), key=lambda t: (-t[0], t[1]))
        return [replace(h, scores={**h.scores, "rerank": s}) for s, _, h in ranked][:k]
