"""What the service finally says, with the real embedder: the documents do not say when
their best sentence does not answer the question, whatever the model wrote; the passages'
own words when nothing the model wrote is backed; the best passage sentence added when the
model's backed sentences leave it out."""

from __future__ import annotations

import pytest

from rag.config import AnswerSettings
from rag.embedders.sentence_transformers import SentenceTransformerEmbedder
from rag.grounding.attribution import Attributor, strip_citations
from rag.grounding.check import ground
from rag.types import Source

BREAD = (
    "Bake the loaf at 230 degrees for forty minutes. Let the dough rise for two hours "
    "in a warm place. Flour, water, salt and yeast are all it needs."
)
ETNA = "Mount Etna is an active volcano on the east coast of Sicily. It is 3,357 metres high."


def sources() -> list[Source]:
    return [
        Source(1, "bread.md", None, "", "Bread", "", 0.6, text=BREAD),
        Source(2, "etna.md", None, "", "Etna", "", 0.5, text=ETNA),
    ]


@pytest.fixture(scope="module")
def attributor(embedder: SentenceTransformerEmbedder) -> Attributor:
    return Attributor(embedder)


SETTINGS = AnswerSettings()  # type: ignore[call-arg]


def test_an_unanswered_question_abstains_whatever_the_model_wrote(attributor: Attributor) -> None:
    # The draft copies a passage, so it is backed; the question is not answered by it.
    draft = "Bake the loaf at 230 degrees for forty minutes [1]."
    grounded = ground(attributor, SETTINGS, "Who won the 1998 football World Cup?", draft, sources())
    assert grounded.abstained and grounded.text == "" and grounded.answerability < SETTINGS.min_fit["en"]
    lenient = SETTINGS.model_copy(update={"min_fit": {"en": 0.0}, "min_presence": {"en": 0.0}})
    kept = ground(attributor, lenient, "Who won the 1998 football World Cup?", draft, sources())
    assert not kept.abstained and "230 degrees" in kept.text


def test_an_unbacked_draft_gives_way_to_the_passages_words(attributor: Attributor) -> None:
    draft = "You should run the oven command with the --fast option."
    grounded = ground(attributor, SETTINGS, "How long must the dough rise?", draft, sources())
    assert not grounded.abstained and grounded.extracted
    assert "two hours" in grounded.text and "--fast" not in grounded.text
    assert grounded.cited == [1]
    assert len(grounded.sentences) == len(grounded.spans[1])  # overlapping quotes are merged
    for (start, end), sentence in zip(grounded.spans[1], grounded.sentences, strict=True):
        assert strip_citations(sentence.text) == BREAD[start:end]  # the stored text, quoted


def test_the_best_passage_sentence_is_added_when_the_answer_leaves_it_out(
    attributor: Attributor,
) -> None:
    draft = "Flour, water, salt and yeast are all the bread needs [1]."  # backed, not the answer
    grounded = ground(attributor, SETTINGS, "How long must the dough rise?", draft, sources())
    assert not grounded.abstained and not grounded.extracted
    assert grounded.text.startswith("Flour, water, salt and yeast")
    assert "two hours" in grounded.text and grounded.text.count("[1]") == 2
    assert all(s.supported for s in grounded.sentences)
    assert all(grounded.text[s.start : s.end] == s.text for s in grounded.sentences)


def test_an_answer_that_quotes_the_best_sentence_is_kept_as_it_is(attributor: Attributor) -> None:
    draft = "Let the dough rise for two hours in a warm place [1]."
    grounded = ground(attributor, SETTINGS, "How long must the dough rise?", draft, sources())
    assert grounded.text == draft and not grounded.extracted


def test_a_quote_in_another_language_is_introduced_in_the_questions(attributor: Attributor) -> None:
    volcan = [
        Source(
            1,
            "etna.md",
            None,
            "",
            "Etna",
            "",
            0.6,
            text="L'Etna est un volcan actif de Sicile. Il culmine à 3 357 mètres d'altitude.",
        )
    ]
    grounded = ground(
        attributor,
        SETTINGS.model_copy(update={"min_fit": {"en": 0.0, "fr": 0.0}}),
        "How high is Etna, the volcano of Sicily?",
        "It is big.",
        volcan,
    )
    assert grounded.extracted and grounded.text.startswith("The documents say, in French: ")
    for sentence in grounded.sentences:
        assert grounded.text[sentence.start : sentence.end] == sentence.text
    assert any("3 357" in s.text for s in grounded.sentences)


def test_a_short_right_answer_is_delivered_as_written(attributor: Attributor) -> None:
    grounded = ground(attributor, SETTINGS, "How long must the dough rise?", "two hours", sources())
    assert not grounded.abstained and not grounded.extracted
    assert strip_citations(grounded.text).strip() == "two hours" and grounded.cited == [1]
    assert all(s.supported for s in grounded.sentences)


def test_a_short_answer_from_the_wrong_place_is_not_backed(attributor: Attributor) -> None:
    # "forty minutes" is in the passage, but in a sentence about baking, not rising.
    grounded = ground(attributor, SETTINGS, "How long must the dough rise?", "forty minutes", sources())
    assert grounded.abstained or (grounded.extracted and grounded.text.startswith("Bake"))  # replaced
    assert not any(s.supported and s.text.startswith("forty") for s in grounded.sentences)
    invented = ground(attributor, SETTINGS, "How long must the dough rise?", "six hours", sources())
    assert invented.extracted and "six hours" not in invented.text


def test_a_backed_paraphrase_of_the_answer_gets_no_quote_added(attributor: Attributor) -> None:
    draft = "The dough has to rise in a warm place for two hours [1]."
    grounded = ground(attributor, SETTINGS, "How long must the dough rise?", draft, sources())
    assert not grounded.abstained and not grounded.extracted
    assert strip_citations(grounded.text).strip() == strip_citations(draft).strip()


def test_passages_on_the_topic_without_the_asked_kind_abstain_with_min_presence(
    attributor: Attributor,
) -> None:
    strict = SETTINGS.model_copy(update={"min_presence": {"en": 0.6, "fr": 0.6}, "min_fit": {"en": 0.0}})
    asked = "When was the bread recipe first published?"  # no date in the passages
    assert ground(attributor, strict, asked, "In 1998 [1].", sources()).abstained
    dated = "How high is Mount Etna?"  # 'other' kind: its terms are together in one sentence
    assert not ground(attributor, strict, dated, "It is 3,357 metres high [2].", sources()).abstained
