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
