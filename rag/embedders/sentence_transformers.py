"""The sentence-transformers embedder (`embedder.kind = sentence-transformers`): torch, fp32."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from rag.config import EmbedderSettings
from rag.embedders.base import Embedder, model_languages, model_prompts, resolve_embedder, token_batches
from rag.errors import ConfigError
from rag.offline import ensure_offline

if TYPE_CHECKING:
    from numpy.typing import NDArray

logger = logging.getLogger(__name__)


class SentenceTransformerEmbedder(Embedder):
    """A sentence-transformers model from a local folder; never touches a model hub.

    Hugging Face fast tokenizers are not thread-safe: a call that changes the truncation
    setting (as counting does, with truncation off) fails with "Already borrowed" in
    another thread, or lets its encoding run untruncated. So the model and its tokenizer
    are used under one lock, and counting has a tokenizer of its own whose truncation is
    off once and for all.
    """

    kind = "sentence-transformers"

    def __init__(self, settings: EmbedderSettings, threads: int | None = None) -> None:
        """`threads`: CPU threads torch computes with, process-wide (default: all cores)."""
        ensure_offline()
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
        if threads:
            import torch

            torch.set_num_threads(threads)

        self.name, path = resolve_embedder(settings.model)
        self.languages = model_languages(settings.model)
        self.batch_size = settings.batch_size
        self.batch_tokens = settings.batch_tokens
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
        self.query_prefix, self.passage_prefix = model_prompts(path)
        self._lock = threading.Lock()
        self._counter = _counting_tokenizer(self.model.tokenizer)
        logger.info("embedder loaded name=%s dim=%d", self.name, self.dimension)

    def embed(self, texts: Sequence[str]) -> NDArray[np.float32]:
        return self.embed_prepared(self.prepare(texts))

    def embed_prepared(self, prepared: Sequence[Any]) -> NDArray[np.float32]:
        texts: list[str] = list(prepared)  # formed already: counted and read as they are
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        lengths = [min(n, self.max_tokens) for n in self._count(texts)]
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        with self._lock:
            for batch in token_batches(lengths, self.batch_tokens, self.batch_size):
                out[batch] = self.model.encode(
                    [texts[i] for i in batch],
                    batch_size=len(batch),
                    normalize_embeddings=True,
                    convert_to_numpy=True,
                    show_progress_bar=False,
                )
        return out

    def count_tokens(self, text: str) -> int:
        return self.count_tokens_batch([text])[0]

    def count_tokens_batch(self, texts: Sequence[str]) -> list[int]:
        return self._count(self.formed(texts))

    def _count(self, texts: list[str]) -> list[int]:
        if not texts:
            return []
        if self._counter is not None:
            # Encoding only reads the tokenizer: any number of threads may share it.
            return [len(e.ids) for e in self._counter.encode_batch(list(texts), add_special_tokens=True)]
        with self._lock:  # a slow (Python) tokenizer: share the model's, in turn
            ids = self.model.tokenizer(list(texts), add_special_tokens=True, truncation=False, verbose=False)[
                "input_ids"
            ]
        return [len(i) for i in ids]


def _counting_tokenizer(tokenizer: Any) -> Any | None:
    """A copy of a fast tokenizer's Rust tokenizer, with truncation and padding off for good."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return None
    from tokenizers import Tokenizer

    counter = Tokenizer.from_str(backend.to_str())
    counter.no_truncation()
    counter.no_padding()
    return counter
