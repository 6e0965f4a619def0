"""Deterministic stand-ins for tests and benchmarks that cannot wait for a real model."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from rag.embedders import Embedder

if TYPE_CHECKING:
    from numpy.typing import NDArray

_WORDS = ("river", "granite", "lantern", "orchard", "harbour", "meadow", "copper", "falcon", "willow",
          "quarry", "thistle", "beacon", "saddle", "glacier", "pepper", "anchor", "violet", "timber",
          "marble", "cinder")  # fmt: skip


class HashEmbedder(Embedder):
    """Vectors from a hash of the text: the same text always gets the same vector, at once.

    Tokens are counted as whitespace-separated words plus a third for word pieces, plus two
    special tokens, about what a word-piece tokenizer reads in English prose.
    """

    kind = "hash"
    name = "hash-embedder"

    def __init__(self, dimension: int = 16, max_tokens: int = 256) -> None:
        if not 0 < dimension <= 64:
            raise ValueError("dimension must be between 1 and 64 (one BLAKE2b digest)")
        self.dimension = dimension
        self.max_tokens = max_tokens

    def embed(self, texts: Sequence[str]) -> NDArray[np.float32]:
        digests = b"".join(hashlib.blake2b(t.encode(), digest_size=self.dimension).digest()
                           for t in texts)  # fmt: skip
        vectors = np.frombuffer(digests, dtype=np.uint8).reshape(len(texts), self.dimension)
        vectors = vectors.astype(np.float32) - 127.5
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    def count_tokens(self, text: str) -> int:
        return len(text.split()) * 4 // 3 + 2


def write_numbered_text(path: Path, size: int) -> int:
    """About `size` bytes of varied prose: numbered sentences, six to a paragraph.

    Returns how many sentences were written; sentence n reads "Sentence n mentions ...".
    """
    written = 0
    n = 0
    with open(path, "w", encoding="utf-8") as fh:
        while written < size:
            paragraph = " ".join(_sentence(i) for i in range(n, n + 6)) + "\n\n"
            fh.write(paragraph)
            written += len(paragraph)
            n += 6
    return n


def _sentence(n: int) -> str:
    w = _WORDS
    return (
        f"Sentence {n} mentions the {w[n % 20]} and the {w[n * 7 % 20]} near mile {n * 31 % 997}, "
        f"then the {w[n * 13 % 17]} again."
    )
