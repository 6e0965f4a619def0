"""The int8 ONNX embedder: its export cache, its vectors beside torch's, its index records.

The contract tests (tests/rag/test_embedders.py) run it too."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

import rag.onnx_export as export
from ingest.progress import progress_bar
from ingest.worker import IngestWorker
from rag.config import EmbedderSettings, Settings
from rag.embedders import SentenceTransformerEmbedder, make_embedder, resolve_embedder, token_batches
from rag.errors import IndexMismatchError
from rag.onnx_embedder import OnnxEmbedder
from rag.store import LocalCatalog

TEXTS = ["Cats are small carnivorous mammals that sleep about sixteen hours a day.",
         "Mount Etna is an active volcano on the east coast of Sicily.",
         "Sourdough bread rises with a starter of wild yeast instead of baker's yeast.",
         "La résiliation du contrat doit être notifiée par lettre recommandée.",
         "What do cats eat?", "Which volcano is in Sicily?"]  # fmt: skip


@pytest.fixture(scope="module")
def onnx_embedder() -> OnnxEmbedder:
    return OnnxEmbedder(EmbedderSettings(kind="onnx"))


def test_the_factory_builds_it_and_it_names_itself_apart(onnx_embedder: OnnxEmbedder) -> None:
    embedder = make_embedder(EmbedderSettings(kind="onnx"), threads=1)
    assert isinstance(embedder, OnnxEmbedder)
    assert (embedder.kind, embedder.name) == ("onnx", "all-MiniLM-L6-v2-int8")
    assert embedder.dimension == 384 and embedder.max_tokens == 256


def test_vectors_are_close_to_torch_fp32_and_rank_alike(
    onnx_embedder: OnnxEmbedder, embedder: SentenceTransformerEmbedder
) -> None:
    int8, fp32 = onnx_embedder.embed(TEXTS), embedder.embed(TEXTS)
    cosines = np.sum(int8 * fp32, axis=1)
    assert cosines.min() > 0.97, cosines
    # Each question finds the same passage with both.
    for q, passage in ((4, 0), (5, 1)):
        assert int(np.argmax(int8[:4] @ int8[q])) == int(np.argmax(fp32[:4] @ fp32[q])) == passage
    assert onnx_embedder.count_tokens_batch(TEXTS) == embedder.count_tokens_batch(TEXTS)


def test_the_export_is_cached_beside_the_model_and_reused(
    onnx_embedder: OnnxEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = resolve_embedder(EmbedderSettings().model)[1]
    cached = export.int8_model(folder)
    assert cached.parent == folder / "onnx" and cached.stat().st_size > 10_000_000
    monkeypatch.setattr(export, "_export", _fail)  # a second export would fail the test
    assert export.int8_model(folder) == cached
    assert not list(cached.parent.glob(".export-*"))  # no work folder left behind


def test_an_unwritable_model_folder_exports_to_the_user_cache_with_progress_shown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = resolve_embedder(EmbedderSettings().model)[1]
    model = tmp_path / "MiniLM"
    model.mkdir()
    for path in source.iterdir():
        if path.name != "onnx":
            (model / path.name).symlink_to(path)
    (model / "onnx").write_text("a file where the cache folder would go: not writable")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    shown = io.StringIO()
    with progress_bar(Console(file=shown, force_terminal=True, width=200)):  # as `rag ingest` shows it
        embedder = OnnxEmbedder(EmbedderSettings(kind="onnx", model=str(model)))
    assert "exporting MiniLM to int8 ONNX, once" in shown.getvalue()
    assert "int8 ONNX ready" in shown.getvalue()
    files = list((tmp_path / "cache" / "rag" / "onnx" / "MiniLM").glob("model_int8-*.onnx"))
    assert len(files) == 1 and embedder.name == "MiniLM-int8"
    assert float(embedder.embed_one(TEXTS[0]) @ embedder.embed_one(TEXTS[4])) > 0.4


def test_an_interrupted_export_leaves_nothing_that_looks_finished(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")

    def half_written(fp32: Path, out: Path) -> None:
        out.write_bytes(b"half a model")
        raise KeyboardInterrupt  # the user pressed Ctrl-C while it quantized

    monkeypatch.setattr(export, "_export_fp32", lambda folder, out: out.write_bytes(b"fp32"))
    monkeypatch.setattr(export, "_quantize", half_written)
    with pytest.raises(KeyboardInterrupt):
        export.int8_model(model)
    assert os.listdir(model / "onnx") == []


def test_batches_follow_length_and_a_token_budget() -> None:
    lengths = [5, 200, 7, 6, 190, 8, 256, 30]
    batches = token_batches(lengths, budget=400, most=3)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    for batch in batches:
        assert len(batch) <= 3
        assert len(batch) == 1 or len(batch) * max(lengths[i] for i in batch) <= 400
    assert [lengths[b[0]] for b in batches] == sorted(lengths[b[0]] for b in batches)
    assert token_batches([], 400, 3) == []
    assert token_batches([900], 400, 3) == [[0]]  # longer than the budget: alone


def test_an_index_records_the_int8_embedder_and_is_never_mixed(
    settings: Settings, corpus: Path, onnx_embedder: OnnxEmbedder, embedder: SentenceTransformerEmbedder
) -> None:
    IngestWorker(settings, onnx_embedder).run(corpus, "int8")
    IngestWorker(settings, embedder).run(corpus, "fp32")
    catalog = LocalCatalog(settings.indexes_dir)
    for name, kind, model in (("int8", "onnx", "all-MiniLM-L6-v2-int8"),
                              ("fp32", "sentence-transformers", "all-MiniLM-L6-v2")):  # fmt: skip
        store = catalog.open(name, readonly=True)
        assert (store.manifest.embedder_kind, store.manifest.embedder) == (kind, model)
        store.close()
    (corpus / "tea.md").write_text("# Tea\n\nGreen tea is steamed, black tea is oxidised.\n")
    with pytest.raises(IndexMismatchError, match="embedder"):
        IngestWorker(settings, onnx_embedder).run(corpus, "fp32")
    with pytest.raises(IndexMismatchError, match="embedder"):
        IngestWorker(settings, embedder).run(corpus, "int8")


def _fail(*args: object) -> Path:
    raise AssertionError("exported again")
