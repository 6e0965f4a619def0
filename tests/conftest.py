"""Shared fixtures: the real embedder and the real GGUF model, loaded once per session."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from rag.offline import ensure_offline

ensure_offline()  # before any Hugging Face library is imported

from ingest.worker import IngestWorker  # noqa: E402
from rag.config import Settings, load_settings  # noqa: E402
from rag.embedders.sentence_transformers import SentenceTransformerEmbedder  # noqa: E402
from rag.generators.llama_cpp import LlamaCppGenerator  # noqa: E402
from rag.pipeline import Pipeline  # noqa: E402
from tests.fakes import EchoGenerator  # noqa: E402

DATA = Path(__file__).parent / "data"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith("RAG_"):
            monkeypatch.delenv(name)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(
        overrides={
            "indexes_dir": str(tmp_path / "indexes"),
            "llm.seed": 1,
            "llm.temperature": 0.0,
            "server.upload_dir": str(tmp_path / "uploads"),
        }
    )


@pytest.fixture(scope="session")
def embedder() -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder(load_settings().embedder)


@pytest.fixture(scope="session")
def generator() -> LlamaCppGenerator:
    return LlamaCppGenerator(load_settings(overrides={"llm.n_ctx": 2048}).llm)


@pytest.fixture
def worker(settings: Settings, embedder: SentenceTransformerEmbedder) -> IngestWorker:
    return IngestWorker(settings, embedder)


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """A few small documents on distinct subjects."""
    root = tmp_path / "docs"
    root.mkdir()
    (root / "cats.md").write_text(
        "# Cats\n\nCats are small carnivorous mammals that sleep about sixteen hours a day.\n\n"
        "## Food\n\nA cat eats fish and meat. Milk upsets the stomach of most adult cats.\n"
    )
    (root / "volcano.txt").write_text(
        "Mount Etna is an active volcano on the east coast of Sicily. "
        "It is the highest active volcano in Europe outside the Caucasus.\n"
    )
    (root / "bread.txt").write_text(
        "To bake bread, mix flour, water, salt and yeast, knead the dough for ten minutes, "
        "let it rise for two hours and bake it at 230 degrees for thirty minutes.\n"
    )
    return root


@pytest.fixture
def pipeline(
    settings: Settings,
    embedder: SentenceTransformerEmbedder,
    generator: LlamaCppGenerator,
    worker: IngestWorker,
    corpus: Path,
) -> Iterator[Pipeline]:
    worker.run(corpus)
    yield Pipeline(settings, embedder, generator)


@pytest.fixture
def shared(tmp_path: Path) -> Path:
    """A folder POST /ingest may ingest by path, with a document that is not in the corpus."""
    folder = tmp_path / "shared"
    folder.mkdir()
    (folder / "moon.txt").write_text("The moon is made of green cheese, say the documents.\n")
    return folder


@pytest.fixture
def echo_pipeline(
    settings: Settings,
    embedder: SentenceTransformerEmbedder,
    worker: IngestWorker,
    corpus: Path,
    shared: Path,
) -> Pipeline:
    """The corpus on the real embedder, answered at once by EchoGenerator; `shared` in
    server.ingest_roots, no keys (the default)."""
    worker.run(corpus)
    settings.server.ingest_roots = [shared]
    return Pipeline(settings, embedder, EchoGenerator())
