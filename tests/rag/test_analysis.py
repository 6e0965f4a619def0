"""Words, folding and terms: what the lexical index and the language check read."""

from __future__ import annotations

from rag.analysis import analyze, detect_language, fold, words


def test_words_drop_french_elisions_and_english_possessives() -> None:
    text = "L’éléphant d'Afrique jusqu'à l'été, c'est John's LORSQU'IL Qu’il aujourd'hui"
    assert words(text) == [
        "éléphant", "afrique", "à", "été", "est", "john", "il", "il", "aujourd'hui",
    ]  # fmt: skip


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
