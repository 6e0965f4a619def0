"""Deterministic stand-ins for tests and benchmarks that cannot wait for a real model."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from rag.config import RetrievalSettings
from rag.embedders.base import Embedder
from rag.errors import ContextLengthError
from rag.generators.base import Delta, GenerationParams, Generator, Message
from rag.retrievers.base import Retriever
from rag.types import Hit

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from rag.store import Filters, StoreReader

_WORDS = (
    "river",
    "granite",
    "lantern",
    "orchard",
    "harbour",
    "meadow",
    "copper",
    "falcon",
    "willow",
    "quarry",
    "thistle",
    "beacon",
    "saddle",
    "glacier",
    "pepper",
    "anchor",
    "violet",
    "timber",
    "marble",
    "cinder",
)


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
        digests = b"".join(hashlib.blake2b(t.encode(), digest_size=self.dimension).digest() for t in texts)
        vectors = np.frombuffer(digests, dtype=np.uint8).reshape(len(texts), self.dimension)
        vectors = vectors.astype(np.float32) - 127.5
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    def count_tokens(self, text: str) -> int:
        return len(text.split()) * 4 // 3 + 2


_TOKEN = re.compile(r"\w+|[^\w\s]")
_SOURCE = re.compile(r"^\[(\d+)\] \(.*?\)\n(.*?)(?:\n\n|$)", re.MULTILINE | re.DOTALL)


class EchoGenerator(Generator):
    """Answers at once and always alike, from the first source in the prompt:
    "According to [1], <its first words>", or that the documents do not say.

    Tokens are words and punctuation marks, plus 4 a message and 3 for the reply's start,
    about what a chat template adds.
    """

    kind = "echo"
    name = "echo-generator"

    def __init__(self, n_ctx: int = 2048) -> None:
        self.n_ctx = n_ctx

    def count_tokens(self, messages: Sequence[Message]) -> int:
        return 3 + sum(4 + len(_TOKEN.findall(m["content"])) for m in messages)

    def stream(self, messages: Sequence[Message], params: GenerationParams) -> Iterator[Delta]:
        n = self.count_tokens(messages)
        if n >= self.n_ctx:
            raise ContextLengthError(
                f"the prompt takes {n} tokens of {self.n_ctx}", tokens=n, limit=self.n_ctx - 1
            )
        source = _SOURCE.search(messages[-1]["content"]) if messages else None
        if source:
            reply = f"According to [{source.group(1)}], " + " ".join(source.group(2).split()[:8])
        else:
            reply = "The documents do not say."
        limit = min(params.max_tokens, self.n_ctx - n)
        text, produced = "", 0
        for word in reply.split(" "):
            candidate = text + (" " if text else "") + word
            cut = min((candidate.find(s) for s in params.stop if s in candidate), default=-1)
            if cut >= 0:
                yield Delta(candidate[len(text) : cut], "stop", produced)
                return
            if produced == limit:
                yield Delta("", "length", produced)
                return
            produced += 1
            yield Delta(candidate[len(text) :], None, produced)
            text = candidate
        yield Delta("", "stop", produced)


class CountingGenerator(Generator):
    """Another generator, with its calls to `count_tokens` and the characters they read counted."""

    kind = "counting"

    def __init__(self, inner: Generator) -> None:
        self.inner = inner
        self.name, self.n_ctx, self.executor = inner.name, inner.n_ctx, inner.executor
        self.reset()

    def reset(self) -> None:
        self.calls = 0
        self.chars = 0

    def count_tokens(self, messages: Sequence[Message]) -> int:
        self.calls += 1
        self.chars += sum(len(m["content"]) for m in messages)
        return self.inner.count_tokens(messages)

    def stream(self, messages: Sequence[Message], params: GenerationParams) -> Iterator[Delta]:
        return self.inner.stream(messages, params)


class WordOverlapRetriever(Retriever):
    """Scores every chunk by the share of the query's words it contains: no vectors, no
    filters (it reads every chunk, however deep the search asked)."""

    mode = "word-overlap"

    def __init__(self, settings: RetrievalSettings | None = None) -> None:
        super().__init__(settings or RetrievalSettings())

    def _rank(self, index: StoreReader, query: str, depth: int, filters: Filters | None) -> list[Hit]:
        words = set(_TOKEN.findall(query.lower()))
        hits = []
        for chunk_id, chunk in index.all_chunks():
            found = words & set(_TOKEN.findall(chunk.text.lower()))
            hits.append(Hit(chunk_id, chunk, len(found) / max(1, len(words))))
        hits.sort(key=lambda h: (-h.score, h.id))
        return hits


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
