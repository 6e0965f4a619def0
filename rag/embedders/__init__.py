"""Embedders: text in, normalized vectors out.

`make_embedder(settings)` is the one place a backend is chosen, by `embedder.kind`:
`sentence-transformers` (torch, fp32) in `sentence_transformers.py`, `onnx` (int8) in
`onnx.py`, `openvino` (bf16 or fp32) in `openvino.py`; each implements `base.Embedder`.
"""

from __future__ import annotations

import logging

from rag.config import EmbedderSettings
from rag.embedders.base import PACKAGED_EMBEDDERS, Embedder
from rag.embedders.sentence_transformers import SentenceTransformerEmbedder
from rag.errors import ConfigError

logger = logging.getLogger(__name__)


def embedder_class(kind: str) -> type[Embedder]:
    """The backend `embedder.kind` names; its heavy libraries load with the model."""
    if kind == "sentence-transformers":
        return SentenceTransformerEmbedder
    if kind == "onnx":
        from rag.embedders.onnx import OnnxEmbedder

        return OnnxEmbedder
    if kind == "openvino":
        from rag.embedders.openvino import OpenVinoEmbedder

        return OpenVinoEmbedder
    raise ConfigError(f"unknown embedder kind {kind!r}")


def make_embedder(settings: EmbedderSettings, *, threads: int | None = None) -> Embedder:
    """The embedder `settings.kind` names, loaded.

    `threads`: CPU threads a local model computes with, process-wide (default: all cores).
    """
    return embedder_class(settings.kind)(settings, threads=threads)


#: The kinds that run the same local model folder (torch fp32, int8 ONNX, OpenVINO).
LOCAL_KINDS = ("sentence-transformers", "onnx", "openvino")


def recorded_name(kind: str, model: str) -> str:
    """The embedder name an index records for the local `model` run by `kind`, without
    loading it (see `Embedder.recorded_name`)."""
    return embedder_class(kind).recorded_name(model)


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
