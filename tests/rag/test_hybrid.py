"""Lexical and hybrid retrieval on the real embedder and the real index, in French and
English: what the English embedder misses in French, the lexical side finds."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.worker import IngestWorker
from rag.analysis import told_language
from rag.config import RetrievalSettings, Settings
from rag.embedders.sentence_transformers import SentenceTransformerEmbedder
from rag.retrievers import make_retriever
from rag.retrievers.hybrid import fuse, reliability, spread_scaled
from rag.store import make_catalog
from rag.types import Chunk, Hit
from tests.fakes import HashEmbedder

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
    settings = indexed.model_copy(update={"retrieval": indexed.retrieval.model_copy(update={"mode": mode})})
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
    settings = indexed.model_copy(
        update={"retrieval": indexed.retrieval.model_copy(update={"mode": "hybrid"})}
    )
    store = make_catalog(settings).open("default", readonly=True)
    hits = make_retriever(settings.retrieval, embedder).retrieve(store, "fromage du Jura", 3)
    assert hits[0].chunk.path == "docs/fromages.txt"
    assert set(hits[0].scores) == {"dense", "coverage", "bm25", "fused"}
    assert hits[0].score == max(hits[0].scores["dense"], hits[0].scores["coverage"])
    store.close()


def _hits(texts: list[str], scores: list[float]) -> list[Hit]:
    pairs = enumerate(zip(texts, scores, strict=True))
    return [Hit(i, Chunk(t, f"docs/{i}.txt"), s, {"bm25": s * 10}) for i, (t, s) in pairs]


FR_PASSAGES = [
    "Le comté est un fromage au lait cru affiné dans le Jura.",
    "Pour réparer une crevaison, collez une rustine sur la chambre à air.",
] * 3
EN_PASSAGES = [
    "Comté is a raw milk cheese matured in the Jura for months.",
    "To fix a puncture, patch the inner tube of the tyre.",
] * 3


def test_each_side_counts_where_it_can_judge() -> None:
    """Words match only within one language; an English model is no judge of French
    passages for a French question; a question whose words do not tell its language
    leaves both sides as configured."""
    english_model, any_language = HashEmbedder(), HashEmbedder()
    english_model.languages = frozenset({"en"})
    s = RetrievalSettings()
    fr = _hits(FR_PASSAGES, [0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
    en = _hits(EN_PASSAGES, [0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
    french, english = (
        told_language("Quel fromage est affiné dans le Jura ?"),
        told_language("Which cheese is matured in the Jura?"),
    )
    assert (french, english, told_language("apt-get proxy ?")) == ("fr", "en", None)
    assert reliability(english_model, french, fr, fr, s) == (0.0, 1.0)  # the words judge
    assert reliability(any_language, french, fr, fr, s) == (1.0, 1.0)
    assert reliability(english_model, french, en, en, s) == (1.0, 0.0)  # across languages: meaning only
    assert reliability(any_language, english, fr, fr, s) == (1.0, 0.0)
    assert reliability(english_model, None, fr, fr, s) == (1.0, 1.0)


def test_fusion_follows_each_lists_own_spread() -> None:
    """A side weighed out lists its hits last, with nothing; scores are scaled by their own
    list's spread (mean - 3 sd .. mean + 3 sd to 0..1), so only their shape counts."""
    assert spread_scaled([2.0, 2.0]) == [0.5, 0.5]
    scaled = spread_scaled([3.0, 1.0])  # mean 2, sd 1
    assert scaled == pytest.approx([4 / 6, 2 / 6])
    assert spread_scaled([30.0, 10.0]) == pytest.approx(scaled)
    dense = _hits(EN_PASSAGES[:2], [0.9, 0.5])
    lexical = [Hit(7, Chunk("other", "docs/7.txt"), 0.9, {"bm25": 12.0}), dense[1]]
    fused = fuse(dense, lexical, 1.0, 0.0, RetrievalSettings())
    assert fused[7] == 0.0 and fused[0] > fused[1] > 0.0
    both = fuse(dense, lexical, 1.0, 1.0, RetrievalSettings())
    assert both[1] > fused[1] and both[7] > 0.0
    rrf = fuse(dense, lexical, 1.0, 1.0, RetrievalSettings(fusion="rrf", rrf_k=60))
    assert rrf[1] == pytest.approx(1 / 62 + 1 / 62) and rrf[0] == pytest.approx(1 / 61)


def test_an_english_model_leaves_french_to_the_words(
    indexed: Settings, embedder: SentenceTransformerEmbedder
) -> None:
    """With the English embedder, a French question over French passages is ranked as the
    lexical side ranks it."""
    store = make_catalog(indexed).open("default", readonly=True)
    question = "Comment réparer la chambre à air d'un vélo crevé ?"
    hybrid = make_retriever(indexed.retrieval.model_copy(update={"mode": "hybrid"}), embedder)
    lexical = make_retriever(indexed.retrieval.model_copy(update={"mode": "lexical"}), embedder)
    found = [h.chunk.path for h in hybrid.retrieve(store, question, 3, floor=False, dedup=False)]
    words = [h.chunk.path for h in lexical.retrieve(store, question, 3, floor=False, dedup=False)]
    assert found[0] == "docs/velo.txt" and found[: len(words)] == words
    store.close()
