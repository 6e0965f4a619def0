"""Embedders that run a sentence-transformers model as one graph on a CPU runtime (ONNX
Runtime, OpenVINO): what they share, the runtime aside."""

from __future__ import annotations

import json
import logging
import os
from abc import abstractmethod
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rag.config import EmbedderSettings
from rag.embedders.base import Embedder, model_languages, model_prompts, resolve_embedder, token_batches
from rag.errors import ConfigError
from rag.offline import ensure_offline

if TYPE_CHECKING:
    from numpy.typing import NDArray

logger = logging.getLogger(__name__)


class GraphEmbedder(Embedder):
    """A sentence-transformers model run as one graph by a CPU runtime: tokenization,
    batching by token budget, one batch per thread, pooling and normalization here; the
    runtime's loading (`_load`) and one batch's forward pass (`_forward`) in a subclass.

    Thread-safe without a lock: the runtimes may run from many threads at once, and each
    Rust tokenizer here is configured once (truncation on for encoding, off for counting)
    and only read afterwards.

    Each batch runs on one thread, and as many batches as there are threads run at once:
    on 2 cores about 8% more throughput than one batch at a time on 2 threads, and a
    thread that other work (the ingest's reading and writing) takes a core from delays
    its own batch only, not a batch split over both cores.
    """

    def __init__(self, settings: EmbedderSettings, threads: int | None = None) -> None:
        """`threads`: batches computed at once, each on one thread (default: one per
        core the process may use)."""
        ensure_offline()
        path = resolve_embedder(settings.model)[1]
        self.name = self.recorded_name(settings.model)
        self.languages = model_languages(settings.model)
        self.batch_size = settings.batch_size
        self.batch_tokens = settings.batch_tokens
        self.max_tokens = _max_seq_length(path)
        self.query_prefix, self.passage_prefix = model_prompts(path)
        self._encoder, self._counter, self._pad_id, self._joins = _tokenizers(path, self.max_tokens)
        empty = self._counter.encode("", add_special_tokens=True).ids
        self._cls, self._sep = empty[:1], empty[1:]  # [CLS] and [SEP], when `_joins`
        self.threads = max(1, threads or len(os.sched_getaffinity(0)))
        self._pool = ThreadPoolExecutor(self.threads, f"{self.kind}-embed") if self.threads > 1 else None
        model_file = self._load(path)
        logger.info(
            "embedder loaded kind=%s name=%s dim=%d file=%s", self.kind, self.name, self.dimension, model_file
        )

    def embed(self, texts: Sequence[str]) -> NDArray[np.float32]:
        return self.embed_prepared(self.prepare(texts))

    def prepare(self, texts: Sequence[str], *, query: bool = False) -> list[Any]:
        """The texts' token ids (truncated to the model's window), ready for the model."""
        if not texts:
            return []
        return [
            e.ids
            for e in self._encoder.encode_batch_fast(self.formed(texts, query=query), add_special_tokens=True)
        ]

    def word_pieces(self, texts: Sequence[str]) -> list[list[int]] | None:
        if not self._joins or self.passage_prefix:
            return None
        if not texts:
            return []
        return [e.ids for e in self._counter.encode_batch_fast(list(texts), add_special_tokens=False)]

    def prepare_pieces(self, pieces: Sequence[Sequence[int]]) -> list[Any]:
        if not self._joins:
            raise NotImplementedError("this embedder's tokenizer does not join word pieces")
        room = self.max_tokens - len(self._cls) - len(self._sep)  # truncated as `prepare` does
        return [[*self._cls, *p[:room], *self._sep] for p in pieces]

    def embed_prepared(self, prepared: Sequence[Any]) -> NDArray[np.float32]:
        encodings = prepared
        out = np.zeros((len(encodings), self.dimension), dtype=np.float32)
        if not encodings:
            return out
        lengths = [len(ids) for ids in encodings]
        # Batches computed at once share the token budget: as much memory as one batch.
        batches = token_batches(lengths, self.batch_tokens // self.threads, self.batch_size)
        inputs = [[encodings[i] for i in b] for b in batches]
        results: Iterable[NDArray[np.float32]]
        if self._pool is None or len(batches) == 1:
            results = map(self._run, inputs)
        else:
            results = self._pool.map(self._run, inputs)
        for batch, vectors in zip(batches, results, strict=True):
            out[batch] = vectors
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return np.ascontiguousarray(out / np.maximum(norms, 1e-12), dtype=np.float32)

    def _run(self, encodings: list[list[int]]) -> NDArray[np.float32]:
        # One sequence each, unpadded: every token is attended to and of type 0.
        width = max(len(e) for e in encodings)
        ids = np.full((len(encodings), width), self._pad_id, dtype=np.int64)
        mask = np.zeros((len(encodings), width), dtype=np.int64)
        for row, e in enumerate(encodings):
            ids[row, : len(e)] = e
            mask[row, : len(e)] = 1
        types = np.zeros((len(encodings), width), dtype=np.int64)
        return self._forward({"input_ids": ids, "attention_mask": mask, "token_type_ids": types})

    def count_tokens(self, text: str) -> int:
        return self.count_tokens_batch([text])[0]

    def count_tokens_batch(self, texts: Sequence[str]) -> list[int]:
        if not texts:
            return []
        # No offsets are made (`_fast`): about a fifth less time than `encode_batch`.
        encodings = self._counter.encode_batch_fast(self.formed(texts), add_special_tokens=True)
        return [len(e.ids) for e in encodings]

    @abstractmethod
    def _load(self, path: Path) -> Path:
        """Load the model of the folder `path`, set `dimension`, and say which file it is."""

    @abstractmethod
    def _forward(self, feed: dict[str, NDArray[np.int64]]) -> NDArray[np.float32]:
        """The model's pooled output for one padded batch."""


def _tokenizers(path: Path, max_tokens: int) -> tuple[Any, Any, int, bool]:
    """The model's tokenizer twice: truncating to `max_tokens` (encoding) and not at all
    (counting), neither padding (batches are padded to their own longest text); its pad
    id; and whether it joins word pieces (`joins_at_white_space`)."""
    from tokenizers import Tokenizer

    serialized, pad_token = _bert_tokenizer(path) or _transformers_tokenizer(path)
    encoder, counter = Tokenizer.from_str(serialized), Tokenizer.from_str(serialized)
    for tokenizer in (encoder, counter):
        tokenizer.no_padding()
    encoder.enable_truncation(max_tokens)
    counter.no_truncation()
    pad_id = counter.token_to_id(pad_token) if pad_token else None
    return encoder, counter, int(pad_id or 0), joins_at_white_space(json.loads(serialized))


def _bert_tokenizer(path: Path) -> tuple[str, str] | None:
    """A BERT model's `tokenizer.json` and pad token, read as they are, without importing
    transformers (about 1.7 s), when its `tokenizer_config.json` asks nothing of the
    normalizer that `tokenizer.json` does not already do; else None."""
    try:
        serialized = (path / "tokenizer.json").read_text(encoding="utf-8")
        config = json.loads((path / "tokenizer_config.json").read_text(encoding="utf-8"))
        normalizer = json.loads(serialized).get("normalizer") or {}
    except (OSError, ValueError):
        return None
    if normalizer.get("type") != "BertNormalizer" or config.get("tokenizer_class") not in (
        "BertTokenizer",
        "BertTokenizerFast",
    ):
        return None
    asked = {
        "lowercase": config.get("do_lower_case", True),
        "strip_accents": config.get("strip_accents"),
        "handle_chinese_chars": config.get("tokenize_chinese_chars", True),
    }
    if any(normalizer.get(key) != value for key, value in asked.items()):
        return None
    pad = config.get("pad_token", "[PAD]")
    return serialized, str(pad.get("content", "") if isinstance(pad, dict) else pad or "")


def _transformers_tokenizer(path: Path) -> tuple[str, str]:
    """The tokenizer as transformers loads it (any fast tokenizer), and its pad token."""
    from transformers import AutoTokenizer

    try:
        fast = AutoTokenizer.from_pretrained(str(path))
        serialized = fast.backend_tokenizer.to_str()
    except Exception as exc:  # no fast tokenizer for this model, or none at all
        raise ConfigError(f"embedder {path} has no fast tokenizer the ONNX embedder can use: {exc}") from exc
    return serialized, str(fast.pad_token or "")


def joins_at_white_space(config: dict[str, Any]) -> bool:
    """Whether a tokenizer (its `tokenizer.json`) reads texts joined by white space as the
    ids of each text joined, between one leading and one trailing special token: a BERT
    word-piece tokenizer, whose normalizer works character by character and whose
    pre-tokenizer splits at white space (and punctuation) before anything else."""
    normalizer = (config.get("normalizer") or {}).get("type")
    pre_tokenizer = (config.get("pre_tokenizer") or {}).get("type")
    model = (config.get("model") or {}).get("type")
    post = config.get("post_processor") or {}
    single = [next(iter(part)) for part in post.get("single", [])]
    template = post.get("type") == "BertProcessing" or (
        post.get("type") == "TemplateProcessing" and single == ["SpecialToken", "Sequence", "SpecialToken"]
    )
    return (
        normalizer in (None, "BertNormalizer")
        and model == "WordPiece"
        and template
        and pre_tokenizer in ("BertPreTokenizer", "Whitespace", "WhitespaceSplit")
    )


def _max_seq_length(path: Path) -> int:
    """The model's own limit, as sentence-transformers reads it."""
    config = path / "sentence_bert_config.json"
    if config.is_file():
        value = json.loads(config.read_text()).get("max_seq_length")
        if value:
            return int(value)
    return 512
