"""Lexical and hybrid retrieval on the real embedder and the real index, in French and
English: what the English embedder misses in French, the lexical side finds."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.worker import IngestWorker
from rag.config import Settings
from rag.embedders import SentenceTransformerEmbedder
from rag.retrieval import make_retriever
from rag.store import make_catalog

FRENCH = {
    "algorithmes.txt": "Les enjeux juridiques des algorithmes publics sont nombreux : "
    "transparence, explicabilité et droit au recours des administrés.",
    "fromages.txt": "Le comté est un fromage au lait cru affiné pendant au moins quatre mois "
    "dans le massif du Jura.",
    "velo.txt": "Pour réparer une crevaison, démontez la roue, trouvez le trou de la chambre "
    "à air et collez une rustine.",
    "cats.txt": "Cats are small carnivorous mammals that sleep about sixteen hours a day.",
}


@pytest.fixture
def indexed(settings: Settings, embedder: SentenceTransformerEmbedder, tmp_path: Path) -> Settings:
    docs = tmp_path / "docs"
    docs.mkdir()
    for name, text in FRENCH.items():
        (docs / name).write_text(text + "\n")
    IngestWorker(settings, embedder).run(docs)
    return settings


@pytest.mark.parametrize("mode", ["lexical", "hybrid"])
def test_french_question_sharing_only_inflected_forms(
    indexed: Settings, embedder: SentenceTransformerEmbedder, mode: str
) -> None:
    settings = indexed.model_copy(update={"retrieval": indexed.retrieval.model_copy(
        update={"mode": mode})})  # fmt: skip
    retriever = make_retriever(settings.retrieval, embedder)
    store = make_catalog(settings).open("default", readonly=True)
    hits = retriever.retrieve(store, "Quel est l'enjeu juridique d'un algorithme public ?", 2)
    assert hits and hits[0].chunk.path == "docs/algorithmes.txt"
    hits = retriever.retrieve(store, "Comment réparer la crevaison d'un vélo ?", 2)
    assert hits and hits[0].chunk.path == "docs/velo.txt"
    hits = retriever.retrieve(store, "How long do cats sleep?", 1)
    assert hits and hits[0].chunk.path == "docs/cats.txt"
    assert "coverage" in hits[0].scores
    # Nothing close by meaning or by words: nothing found, in this mode too.
    assert retriever.retrieve(store, "Quantum chromodynamics of gluon plasma", 4) == []
    store.close()


def test_hybrid_reports_every_method(indexed: Settings, embedder: SentenceTransformerEmbedder) -> None:
    settings = indexed.model_copy(update={"retrieval": indexed.retrieval.model_copy(
        update={"mode": "hybrid"})})  # fmt: skip
    store = make_catalog(settings).open("default", readonly=True)
    hits = make_retriever(settings.retrieval, embedder).retrieve(store, "fromage du Jura", 3)
    assert hits[0].chunk.path == "docs/fromages.txt"
    assert set(hits[0].scores) == {"dense", "coverage", "bm25", "fused"}
    assert hits[0].score == max(hits[0].scores["dense"], hits[0].scores["coverage"])
    store.close()
