"""Fixtures of the core's tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.config import EmbedderSettings
from rag.embedders.base import resolve_embedder


@pytest.fixture
def unwritable_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The packaged embedder's files in a folder named MiniLM where its cache folder
    (`onnx`) cannot be made; the user cache is `tmp_path / "cache"`."""
    source = resolve_embedder(EmbedderSettings().model)[1]
    model = tmp_path / "MiniLM"
    model.mkdir()
    for path in source.iterdir():
        if path.name != "onnx":
            (model / path.name).symlink_to(path)
    (model / "onnx").write_text("a file where the cache folder would go: not writable")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return model


@pytest.fixture(scope="session")
def tiny_cross_encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cross-encoder the tests build themselves (nothing is downloaded): random weights,
    two small layers, the packaged MiniLM's tokenizer."""
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    folder = tmp_path_factory.mktemp("tiny-cross-encoder")
    tokenizer = AutoTokenizer.from_pretrained(str(resolve_embedder("all-MiniLM-L6-v2")[1]))
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        num_labels=1,
    )
    BertForSequenceClassification(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
