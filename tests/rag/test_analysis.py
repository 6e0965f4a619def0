"""Words, folding and terms: what the lexical index and the language check read."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rag.analysis import analyze, detect_language, fold, language_and_terms, words
from rag.types import Chunk


def test_words_drop_french_elisions_and_english_possessives() -> None:
    text = "L’éléphant d'Afrique jusqu'à l'été, c'est John's LORSQU'IL Qu’il aujourd'hui"
    assert words(text) == [
        "éléphant",
        "afrique",
        "à",
        "été",
        "est",
        "john",
        "il",
        "il",
        "aujourd'hui",
    ]


def test_words_split_on_punctuation_and_underscores_and_keep_numbers() -> None:
    assert words("rag_eval: 42 files, nDCG@10 (0.65).") == [
        "rag",
        "eval",
        "42",
        "files",
        "ndcg",
        "10",
        "0",
        "65",
    ]
    assert words("") == [] and words("' ’ --") == []


def test_fold_lowers_and_strips_accents() -> None:
    assert fold("Été") == "ete" and fold("ÇA") == "ca" and fold("plain") == "plain"


def test_terms_are_stemmed_in_the_texts_language() -> None:
    assert detect_language("Les documents ne le disent pas, et la réponse est dans le texte.") == "fr"
    assert detect_language("The documents do not say it, and the answer is in the text.") == "en"
    assert analyze("Les réponses des documents", "fr") == analyze("la réponse du document", "fr")
    assert "the" not in analyze("the files are indexed", "en")


def test_terms_read_the_language_they_tell() -> None:
    """Without a language given, `analyze` tells it as `detect_language` does (from the
    first 4,000 characters), in French and English, with accents and without."""
    french = "Les réponses des documents sont dans le texte, et l'été est chaud. " * 3
    english = "The answers of the documents are in the text, and the summer is hot. " * 3
    for text in (french, english, french.upper(), "Zoë's café " + english, french * 80, english * 80):
        assert analyze(text) == analyze(text, detect_language(text))
    assert detect_language(french * 80) == "fr" and detect_language(english + french * 2) == "fr"


# Letters whose lower case depends on what surrounds them (a final sigma), grows longer
# ("İ" is "i" and a combining dot), or is a ligature; apostrophes and separators around.
_TRICKY = "aeéÉΣσςİıßﬁǅĿ'’ _-.\n\t0123"


@given(st.text(alphabet=_TRICKY, max_size=40))
def test_a_texts_words_are_its_words_each_read_alone(text: str) -> None:
    """Lower-casing a whole text at once changes no word from its lower case alone."""
    from rag.analysis import _WORD

    assert words(text) == [w for found in _WORD.findall(text) for w in words(found)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ΟΔΟΣ.Β ΑΣ_Β ΣΑ", ["οδος", "β", "ας", "β", "σα"]),  # a final sigma at each word's end
        ("İstanbul", ["i\u0307stanbul"]),  # "İ" lower-cased is two characters, still one word
        ("C’est l'ÉTÉ de ǅemal", ["est", "été", "de", "ǆemal"]),
        ("ﬁn ½ dog's '' ’", ["ﬁn", "½", "dog"]),
    ],
)
def test_words_of_tricky_letters(text: str, expected: list[str]) -> None:
    assert words(text) == expected


@given(st.text(alphabet=_TRICKY + "lest", max_size=60), st.sampled_from(["", "Titre", "A > B", "ΟΔΟΣ l’été"]))
def test_a_chunks_language_and_terms_are_read_at_once(text: str, heading: str) -> None:
    """What the index stores of a chunk: its language told by its text, and the terms of
    its context (header, then text), as `detect_language` and `analyze` tell them."""
    chunk = Chunk(text, "docs/file.md", heading=heading)
    before = chunk.context[: len(chunk.context) - len(text)]
    language = detect_language(text)
    assert language_and_terms(text, before) == (language, analyze(chunk.context, language))
