"""The embedder contract, run against every implementation (the real ones and the fake)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from rag.config import DEFAULT_EMBEDDER, MULTILINGUAL_EMBEDDER, EmbedderSettings
from rag.embedders import make_embedder, recorded_name, settings_for_index
from rag.embedders.base import Embedder
from rag.embedders.sentence_transformers import SentenceTransformerEmbedder
from tests.fakes import HashEmbedder

TEXTS = [
    "Cats sleep sixteen hours a day.",
    "Mount Etna is a volcano in Sicily.",
    "Überprüfung der Zeichen: naïve café, 東京, emoji 🙂.",
    "",
]


@pytest.fixture(scope="module")
def onnx_embedder() -> Embedder:
    return make_embedder(EmbedderSettings(kind="onnx"))


@pytest.fixture(scope="module")
def openvino_embedder() -> Embedder:
    return make_embedder(EmbedderSettings(kind="openvino"))


@pytest.fixture(scope="module")
def multilingual_embedder() -> Embedder:
    """multilingual-e5-small, as int8 ONNX (its default runtime): XLM-R's SentencePiece
    tokenizer, and prompts before questions and passages."""
    return make_embedder(EmbedderSettings(kind="onnx", model=MULTILINGUAL_EMBEDDER))


@pytest.fixture(params=["sentence-transformers", "onnx", "openvino", "multilingual", "hash"])
def any_embedder(request: pytest.FixtureRequest) -> Embedder:
    if request.param == "hash":
        return HashEmbedder()
    name = {
        "onnx": "onnx_embedder",
        "openvino": "openvino_embedder",
        "multilingual": "multilingual_embedder",
    }.get(request.param, "embedder")
    embedder: Embedder = request.getfixturevalue(name)
    return embedder


def _long_text(seed: int, words: int) -> str:
    vocabulary = (
        "granite",
        "harbour",
        "lantern",
        "thistle",
        "glacier",
        "meadow",
        "copper",
        "falcon",
        "orchard",
        "quarry",
        "saddle",
        "timber",
        "violet",
        "willow",
    )
    return " ".join(f"{vocabulary[(seed * 7 + i) % len(vocabulary)]}{i % 13}" for i in range(words))


def test_vectors_are_normalized_and_shaped(any_embedder: Embedder) -> None:
    vectors = any_embedder.embed(TEXTS)
    assert vectors.shape == (len(TEXTS), any_embedder.dimension)
    assert vectors.dtype == np.float32 and vectors.flags.c_contiguous
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert any_embedder.embed([]).shape == (0, any_embedder.dimension)


def test_same_text_same_vector(any_embedder: Embedder) -> None:
    vectors = any_embedder.embed(TEXTS)
    np.testing.assert_allclose(any_embedder.embed(TEXTS), vectors, atol=1e-5)  # the same batch
    alone = any_embedder.embed_one(TEXTS[1])
    if any_embedder.kind == "onnx":
        # int8 activations are scaled per batch: a text's vector depends a little on
        # the texts it is batched with, as much as on the quantization itself.
        assert float(alone @ vectors[1]) > 0.98
    else:
        np.testing.assert_allclose(alone, vectors[1], atol=1e-5)
    assert float(vectors[0] @ vectors[1]) < 0.99  # different texts, different vectors


def test_texts_prepared_ahead_give_their_vectors(any_embedder: Embedder) -> None:
    """What the ingest's reader thread prepares, in groups, embeds as the texts do."""
    prepared = any_embedder.prepare(TEXTS[:2]) + any_embedder.prepare(TEXTS[2:])
    assert len(prepared) == len(TEXTS)
    np.testing.assert_allclose(any_embedder.embed_prepared(prepared), any_embedder.embed(TEXTS), atol=1e-5)
    assert any_embedder.prepare([]) == []
    assert any_embedder.embed_prepared([]).shape == (0, any_embedder.dimension)


# Accents, elisions, final sigma, CJK, emoji, a tab, control and zero-width characters, a
# word past the tokenizer's word length, and one text past the model's window.
PARTS = [
    "L'éléphant d'Afrique, l’été ; naïve CAFÉ.",
    "ΣΟΦΟΣ σοφός",
    "東京タワー 🙂 done",
    "tab\there\x00nul \u200b zero-width",
    "x" * 150,
    _long_text(1, 300),
]


def test_word_pieces_join_as_their_texts(any_embedder: Embedder) -> None:
    """Where an embedder gives word pieces, texts joined by white space are prepared from
    their pieces joined exactly as from the joined text (truncated alike)."""
    pieces = any_embedder.word_pieces(PARTS)
    if any_embedder.kind in ("sentence-transformers", "hash") or not any_embedder.name.startswith(
        DEFAULT_EMBEDDER
    ):
        # These prepare texts, not ids; or their tokenizer (SentencePiece) reads a text
        # whole, not word by word, and reads each behind a prompt.
        assert pieces is None
        return
    assert pieces is not None and len(pieces) == len(PARTS)
    assert [len(p) + 2 for p in pieces] == any_embedder.count_tokens_batch(PARTS)
    for sep in ("\n\n", " ", "\n"):
        texts = [sep.join(PARTS[i : i + 3]) for i in range(len(PARTS) - 2)]
        joined = [[t for p in pieces[i : i + 3] for t in p] for i in range(len(PARTS) - 2)]
        assert any_embedder.prepare_pieces(joined) == any_embedder.prepare(texts)
    assert any_embedder.word_pieces([]) == []


def test_questions_are_read_with_the_query_prompt(any_embedder: Embedder) -> None:
    """A question is embedded behind the model's query prompt, a passage behind its
    passage prompt: the same vector where the model has neither (or the same)."""
    texts = ["What do cats eat?", "Où se trouve l'Etna ?"]
    questions, passages = any_embedder.embed_queries(texts), any_embedder.embed(texts)
    assert questions.shape == passages.shape == (2, any_embedder.dimension)
    assert float(any_embedder.embed_query(texts[1]) @ questions[1]) > 0.98  # int8: scaled per batch
    if any_embedder.query_prefix == any_embedder.passage_prefix:
        np.testing.assert_allclose(questions, passages, atol=1e-5)
    else:
        assert all(float(q @ p) < 0.999 for q, p in zip(questions, passages, strict=True))
        prepared = any_embedder.prepare(texts, query=True)
        np.testing.assert_allclose(any_embedder.embed_prepared(prepared), questions, atol=1e-5)


def test_token_counts(any_embedder: Embedder) -> None:
    counts = [any_embedder.count_tokens(t) for t in TEXTS]
    assert all(c > 0 for c in counts)
    assert any_embedder.count_tokens_batch(TEXTS) == counts
    assert any_embedder.count_tokens(TEXTS[0] + " " + TEXTS[1]) > counts[0]
    # Counting never truncates: a text past the model's limit is counted whole.
    assert any_embedder.count_tokens(_long_text(0, 600)) > any_embedder.max_tokens


def test_identity(any_embedder: Embedder) -> None:
    assert isinstance(any_embedder.kind, str) and any_embedder.kind
    assert isinstance(any_embedder.name, str) and any_embedder.name
    assert any_embedder.dimension > 0 and any_embedder.max_tokens > 0


def test_one_embedder_many_threads(any_embedder: Embedder) -> None:
    """Embedding long texts, questions and counting tokens at once, as a server does:
    no error, and the very vectors and counts of one thread alone."""
    long_texts = [_long_text(i, 300 + 150 * (i % 3)) for i in range(6)]  # past max_tokens
    question = "Which harbour has a granite lantern?"
    expected = any_embedder.embed(long_texts)
    expected_question = any_embedder.embed_query(question)
    expected_counts = [any_embedder.count_tokens(t) for t in long_texts]
    start = threading.Barrier(6)

    def embedding() -> None:
        start.wait()
        for _ in range(4):
            np.testing.assert_allclose(any_embedder.embed(long_texts), expected, atol=1e-5)

    def asking() -> None:
        start.wait()
        for _ in range(20):
            np.testing.assert_allclose(any_embedder.embed_query(question), expected_question, atol=1e-5)

    def counting() -> None:
        start.wait()
        for _ in range(200):
            assert [any_embedder.count_tokens(t) for t in long_texts] == expected_counts

    with ThreadPoolExecutor(6) as pool:
        jobs = [pool.submit(f) for f in (embedding, embedding, asking, counting, counting, counting)]
        for job in jobs:
            job.result()


def test_counts_match_the_model_tokenizer(embedder: SentenceTransformerEmbedder) -> None:
    texts = [*TEXTS, _long_text(3, 400), "  spaces\tand\nnew lines  ", "a" * 3000]
    tokenizer = embedder.model.tokenizer
    expected = [
        len(tokenizer(t, add_special_tokens=True, truncation=False, verbose=False)["input_ids"])
        for t in texts
    ]
    assert embedder.count_tokens_batch(texts) == expected


def test_factory_builds_the_configured_kind() -> None:
    embedder = make_embedder(EmbedderSettings(), threads=None)  # new indexes: int8 ONNX
    assert type(embedder).__name__ == "OnnxEmbedder"
    assert embedder.kind == EmbedderSettings().kind == "onnx"
    torch = make_embedder(EmbedderSettings(kind="sentence-transformers"))
    assert isinstance(torch, SentenceTransformerEmbedder) and torch.kind == "sentence-transformers"


def test_an_index_keeps_the_packaged_model_it_was_built_with() -> None:
    """With `embedder.model` left unset, an index built by the other packaged model is
    opened with that model (and its runtime); set explicitly, the setting stands and the
    manifest check refuses the index."""
    e5_onnx = recorded_name("onnx", MULTILINGUAL_EMBEDDER)
    default = EmbedderSettings()
    chosen = settings_for_index(default, "onnx", e5_onnx)
    assert (chosen.kind, chosen.model) == ("onnx", MULTILINGUAL_EMBEDDER)
    minilm_torch = recorded_name("sentence-transformers", DEFAULT_EMBEDDER)
    chosen = settings_for_index(default, "sentence-transformers", minilm_torch)
    assert (chosen.kind, chosen.model) == ("sentence-transformers", DEFAULT_EMBEDDER)
    # Set explicitly: kept as given.
    e5_set = EmbedderSettings(model=MULTILINGUAL_EMBEDDER)
    assert settings_for_index(e5_set, "onnx", recorded_name("onnx", DEFAULT_EMBEDDER)) == e5_set
    explicit_kind = EmbedderSettings(kind="onnx")
    assert settings_for_index(explicit_kind, "sentence-transformers", minilm_torch) == explicit_kind
    assert settings_for_index(default, "onnx", "some-other-model-int8") == default
