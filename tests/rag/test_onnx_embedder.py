"""The int8 ONNX embedder: its export cache, its vectors beside torch's, its index records.

The contract tests (tests/rag/test_embedders.py) run it too."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

import rag.embedders.onnx_export as export
from ingest.progress import progress_bar
from ingest.worker import IngestWorker
from rag.config import EmbedderSettings, Settings
from rag.embedders import make_embedder, recorded_name
from rag.embedders.base import resolve_embedder, token_batches
from rag.embedders.onnx import OnnxEmbedder
from rag.embedders.sentence_transformers import SentenceTransformerEmbedder
from rag.errors import IndexMismatchError
from rag.generators.llama_cpp import LlamaCppGenerator
from rag.pipeline import Pipeline
from rag.store import LocalCatalog, Manifest

TEXTS = [
    "Cats are small carnivorous mammals that sleep about sixteen hours a day.",
    "Mount Etna is an active volcano on the east coast of Sicily.",
    "Sourdough bread rises with a starter of wild yeast instead of baker's yeast.",
    "La résiliation du contrat doit être notifiée par lettre recommandée.",
    "What do cats eat?",
    "Which volcano is in Sicily?",
]


@pytest.fixture(scope="module")
def onnx_embedder() -> OnnxEmbedder:
    return OnnxEmbedder(EmbedderSettings(kind="onnx"))


def test_the_factory_builds_it_and_it_names_itself_apart(onnx_embedder: OnnxEmbedder) -> None:
    embedder = make_embedder(EmbedderSettings(kind="onnx"), threads=1)
    assert isinstance(embedder, OnnxEmbedder)
    assert (embedder.kind, embedder.name) == ("onnx", f"all-MiniLM-L6-v2-{export.recipe_id()}")
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
    tmp_path: Path, unwritable_model: Path
) -> None:
    model = unwritable_model
    shown = io.StringIO()
    with progress_bar(Console(file=shown, force_terminal=True, width=200)):  # as `rag ingest` shows it
        embedder = OnnxEmbedder(EmbedderSettings(kind="onnx", model=str(model)))
    assert "exporting MiniLM to int8 ONNX, once" in shown.getvalue()
    assert "int8 ONNX ready" in shown.getvalue()
    files = list((tmp_path / "cache" / "rag" / "onnx" / "MiniLM").glob("model_int8-*.onnx"))
    assert len(files) == 1 and embedder.name == f"MiniLM-{export.recipe_id()}"
    assert float(embedder.embed_one(TEXTS[0]) @ embedder.embed_one(TEXTS[4])) > 0.4


def test_an_interrupted_export_leaves_nothing_that_looks_finished(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")

    def half_written(fp32: Path, out: Path, **recipe: object) -> None:
        out.write_bytes(b"half a model")
        raise KeyboardInterrupt  # the user pressed Ctrl-C while it quantized

    monkeypatch.setattr(export, "export_fp32", lambda folder, out: out.write_bytes(b"fp32"))
    monkeypatch.setattr(export, "quantize", half_written)
    with pytest.raises(KeyboardInterrupt):
        export.int8_model(model)
    assert os.listdir(model / "onnx") == []


def test_vectors_of_another_recipe_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    model = EmbedderSettings().model
    built = recorded_name("onnx", model)
    assert built == f"all-MiniLM-L6-v2-int8-{export.DEFAULT_RECIPE}-{export.recipe_id()[-6:]}"
    manifest = Manifest(
        embedder_kind="onnx",
        embedder=built,
        dimension=384,
        chunk_size=200,
        chunk_overlap=30,
        encoding="cl100k_base",
    )
    other = next(name for name in export.RECIPES if name != export.DEFAULT_RECIPE)
    monkeypatch.setattr(export, "DEFAULT_RECIPE", other)
    assert recorded_name("onnx", model) != built
    with pytest.raises(IndexMismatchError, match="embedder"):
        manifest.check_embedder("onnx", recorded_name("onnx", model), 384)


def test_smoothing_moves_scale_into_the_weights_without_changing_the_function(tmp_path: Path) -> None:
    import onnxruntime as ort

    folder = resolve_embedder(EmbedderSettings().model)[1]
    fp32, smoothed = tmp_path / "fp32.onnx", tmp_path / "smoothed.onnx"
    export.export_fp32(folder, fp32)
    export._smooth(fp32, smoothed, export.RECIPES[export.DEFAULT_RECIPE], folder)
    embedder = OnnxEmbedder(EmbedderSettings(kind="onnx"), threads=1)
    vectors = []
    for model in (fp32, smoothed):
        embedder.session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
        vectors.append(embedder.embed(TEXTS))
    assert np.abs(vectors[0] - vectors[1]).max() < 1e-4
    scales = [i for i in onnx_initializers(smoothed) if i.endswith("/smooth")]
    assert len(scales) == 6 * 3  # per layer: Q, K and V's shared input, attention output, FFN input


def onnx_initializers(path: Path) -> list[str]:
    import onnx

    return [i.name for i in onnx.load(str(path)).graph.initializer]


def test_an_index_built_by_the_other_runtime_is_searched_with_it(
    settings: Settings,
    corpus: Path,
    onnx_embedder: OnnxEmbedder,
    embedder: SentenceTransformerEmbedder,
    generator: LlamaCppGenerator,
) -> None:
    """`embedder.kind` not set: whatever the default, each index is searched by the runtime
    that built it; set explicitly to the other one, refused."""
    IngestWorker(settings, embedder).run(corpus, "fp32")
    IngestWorker(settings, onnx_embedder).run(corpus, "int8")
    assert "kind" not in settings.embedder.model_fields_set
    for held in (onnx_embedder, embedder):
        pipeline = Pipeline(settings, held, generator)
        for index, kind in (("fp32", "sentence-transformers"), ("int8", "onnx")):
            hits = pipeline.search("What does a cat eat?", index=index)
            assert hits[0].chunk.path.endswith("cats.md")
            assert pipeline.embedder_for(pipeline.index(index)).kind == kind
    explicit = settings.model_copy(update={"embedder": EmbedderSettings(kind="onnx")})
    with pytest.raises(IndexMismatchError, match="embedder"):
        Pipeline(explicit, onnx_embedder, generator).search("cats", index="fp32")


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
    for name, kind, model in (
        ("int8", "onnx", f"all-MiniLM-L6-v2-{export.recipe_id()}"),
        ("fp32", "sentence-transformers", "all-MiniLM-L6-v2"),
    ):
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


def test_only_a_word_piece_tokenizer_splitting_at_white_space_joins_its_pieces() -> None:
    import json

    from rag.embedders.graph import joins_at_white_space

    config = json.loads((resolve_embedder(EmbedderSettings().model)[1] / "tokenizer.json").read_text())
    assert joins_at_white_space(config)
    byte_level = {**config, "pre_tokenizer": {"type": "ByteLevel"}, "model": {"type": "BPE"}}
    metaspace = {**config, "pre_tokenizer": {"type": "Metaspace"}, "model": {"type": "Unigram"}}
    pair_first = {
        **config,
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [
                {"SpecialToken": {"id": "[CLS]"}},
                {"SpecialToken": {"id": "[X]"}},
                {"Sequence": {"id": "A"}},
            ],
        },
    }
    assert not any(map(joins_at_white_space, (byte_level, metaspace, pair_first)))


def test_a_bert_tokenizer_is_read_as_transformers_reads_it_without_importing_it(tmp_path: Path) -> None:
    import json
    import subprocess
    import sys

    from rag.embedders.graph import _bert_tokenizer, _transformers_tokenizer

    model = resolve_embedder(EmbedderSettings().model)[1]
    direct, theirs = _bert_tokenizer(model), _transformers_tokenizer(model)
    assert direct is not None and direct[1] == theirs[1] == "[PAD]"
    mine, transformers_view = json.loads(direct[0]), json.loads(theirs[0])
    for config in (mine, transformers_view):  # set by the embedder itself either way
        config.pop("truncation"), config.pop("padding")
    assert mine == transformers_view
    # A configuration asking another normalizer than tokenizer.json's: transformers decides.
    other = tmp_path / "cased"
    other.mkdir()
    (other / "tokenizer.json").write_text(direct[0])
    config = json.loads((model / "tokenizer_config.json").read_text())
    (other / "tokenizer_config.json").write_text(json.dumps({**config, "do_lower_case": False}))
    assert _bert_tokenizer(other) is None
    # Loading the int8 embedder does not import transformers (its import alone takes seconds).
    code = "\n".join(
        [
            "import sys",
            "from rag.config import EmbedderSettings",
            "from rag.embedders.onnx import OnnxEmbedder",
            "OnnxEmbedder(EmbedderSettings(kind='onnx')).embed(['x'])",
            "print('transformers' in sys.modules)",
        ]
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
