"""The OpenVINO embedder: its conversion cache, its vectors beside torch's, its index records.

The contract tests (tests/rag/test_embedders.py) run it too."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

import rag.embedders.openvino as ov
from ingest.progress import progress_bar
from ingest.worker import IngestWorker
from rag.config import EmbedderSettings, Settings
from rag.embedders import make_embedder
from rag.embedders.base import resolve_embedder
from rag.embedders.openvino import OpenVinoEmbedder
from rag.embedders.sentence_transformers import SentenceTransformerEmbedder
from rag.errors import IndexMismatchError
from rag.generators.llama_cpp import LlamaCppGenerator
from rag.pipeline import Pipeline
from rag.store import LocalCatalog

TEXTS = [
    "Cats are small carnivorous mammals that sleep about sixteen hours a day.",
    "Mount Etna is an active volcano on the east coast of Sicily.",
    "Sourdough bread rises with a starter of wild yeast instead of baker's yeast.",
    "La résiliation du contrat doit être notifiée par lettre recommandée.",
    "What do cats eat?",
    "Which volcano is in Sicily?",
]


@pytest.fixture(scope="module")
def openvino_embedder() -> OpenVinoEmbedder:
    return OpenVinoEmbedder(EmbedderSettings(kind="openvino"))


def test_the_factory_builds_it_and_it_names_itself_with_its_precision(
    openvino_embedder: OpenVinoEmbedder,
) -> None:
    embedder = make_embedder(EmbedderSettings(kind="openvino"), threads=1)
    assert isinstance(embedder, OpenVinoEmbedder)
    assert ov.precision() in ("bf16", "f32")
    assert (embedder.kind, embedder.name) == ("openvino", f"all-MiniLM-L6-v2-openvino-{ov.precision()}")
    assert embedder.dimension == 384 and embedder.max_tokens == 256
    assert embedder.threads == 1 and openvino_embedder.threads >= 1


def test_vectors_are_those_of_torch_fp32(
    openvino_embedder: OpenVinoEmbedder, embedder: SentenceTransformerEmbedder
) -> None:
    """Not quantized: bf16 arithmetic moves a vector by far less than int8 does (> 0.97)."""
    vectors, fp32 = openvino_embedder.embed(TEXTS), embedder.embed(TEXTS)
    cosines = np.sum(vectors * fp32, axis=1)
    assert cosines.min() > 0.9995, cosines
    assert openvino_embedder.count_tokens_batch(TEXTS) == embedder.count_tokens_batch(TEXTS)


def test_the_conversion_is_cached_beside_the_model_and_reused(
    openvino_embedder: OpenVinoEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = resolve_embedder(EmbedderSettings().model)[1]
    cached = ov.ir_model(folder)
    assert cached.parent == folder / "onnx" and (cached / "model.bin").stat().st_size > 80_000_000
    monkeypatch.setattr(ov, "_convert", _fail)  # a second conversion would fail the test
    assert ov.ir_model(folder) == cached
    assert not list(cached.parent.glob(".export-*"))  # no work folder left behind


def test_an_unwritable_model_folder_converts_into_the_user_cache_with_progress_shown(
    tmp_path: Path, unwritable_model: Path
) -> None:
    model = unwritable_model
    shown = io.StringIO()
    with progress_bar(Console(file=shown, force_terminal=True, width=200)):  # as `rag ingest` shows it
        embedder = OpenVinoEmbedder(EmbedderSettings(kind="openvino", model=str(model)))
    assert "converting MiniLM to OpenVINO, once" in shown.getvalue()
    assert "OpenVINO model ready" in shown.getvalue()
    assert len(list((tmp_path / "cache" / "rag" / "onnx" / "MiniLM").glob("openvino-*/model.xml"))) == 1
    assert float(embedder.embed_one(TEXTS[0]) @ embedder.embed_one(TEXTS[4])) > 0.4


def test_an_interrupted_conversion_leaves_nothing_that_looks_finished(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")

    def half_written(model_dir: Path, out: Path) -> None:
        out.write_bytes(b"half a model")
        raise KeyboardInterrupt  # the user pressed Ctrl-C while it exported

    monkeypatch.setattr(ov, "export_fp32", half_written)
    with pytest.raises(KeyboardInterrupt):
        ov.ir_model(model)
    assert list((model / "onnx").iterdir()) == []


def test_an_index_records_it_is_searched_with_it_and_never_mixed(
    settings: Settings,
    corpus: Path,
    openvino_embedder: OpenVinoEmbedder,
    embedder: SentenceTransformerEmbedder,
    generator: LlamaCppGenerator,
) -> None:
    IngestWorker(settings, openvino_embedder).run(corpus, "ov")
    store = LocalCatalog(settings.indexes_dir).open("ov", readonly=True)
    assert (store.manifest.embedder_kind, store.manifest.embedder) == ("openvino", openvino_embedder.name)
    store.close()
    # `embedder.kind` not set: the index is searched by the runtime that built it.
    pipeline = Pipeline(settings, embedder, generator)
    hits = pipeline.search("What does a cat eat?", index="ov")
    assert hits[0].chunk.path.endswith("cats.md")
    assert pipeline.embedder_for(pipeline.index("ov")).kind == "openvino"
    (corpus / "tea.md").write_text("# Tea\n\nGreen tea is steamed, black tea is oxidised.\n")
    with pytest.raises(IndexMismatchError, match="embedder"):
        IngestWorker(settings, embedder).run(corpus, "ov")


def _fail(*args: object) -> Path:
    raise AssertionError("converted again")
