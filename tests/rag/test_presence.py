"""Answer presence: the asked fact in a short window, not only the topic."""

from __future__ import annotations

import pytest

from rag.grounding.presence import has_kind, presence, question_kind, relevance
from rag.types import Source


def source(text: str, number: int = 1) -> Source:
    return Source(number, f"doc{number}.md", None, "", "", text[:40], 0.5, text=text)


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("When did the oil crisis begin?", "when"),
        ("In what year was the treaty signed?", "when"),
        ("Quand la crise a-t-elle commencé ?", "when"),
        ("En quelle année le traité fut-il signé ?", "when"),
        ("How many people work at the ministry?", "count"),
        ("Combien de personnes travaillent au ministère ?", "count"),
        ("Quel est le nombre d'habitants de Lyon ?", "count"),
        ("Who founded the company?", "who"),
        ("Qui a fondé l'entreprise ?", "who"),
        ("Where is the tower?", "where"),
        ("Où se trouve la tour ?", "where"),
        ("Dans quel pays se trouve la tour ?", "where"),
        ("What does a cat eat?", "which"),
        ("Quelle commande installe un paquet ?", "which"),
        ("Comment installer un paquet ?", "how-to"),
        ("How do I install a package?", "how-to"),
        ("Why is the sky blue?", "why"),
        ("Pourquoi le ciel est-il bleu ?", "why"),
        ("Is the service free?", "yes/no"),
        ("Est-ce que le service est gratuit ?", "yes/no"),
        ("Tell me about cats.", "other"),
    ],
)
def test_question_kinds_in_english_and_french(question: str, kind: str) -> None:
    assert question_kind(question) == kind


def test_kind_evidence_is_not_the_questions_own_words() -> None:
    assert has_kind("when", "The strike began in October 1973.", set())
    assert not has_kind("when", "The strike began after the vote.", set())
    assert not has_kind("when", "The 1973 strike began after the vote.", {"1973"})  # the question's year
    assert has_kind("count", "About 100 000 people work there.", set())
    assert has_kind("count", "Trois cents personnes y travaillent.", set())
    assert not has_kind("count", "Many people work there.", set())
    assert has_kind("who", "The company was founded by Ada Lovelace.", {"company", "founded"})
    assert not has_kind("who", "The company was founded by a local engineer.", set())


def test_the_asked_fact_scores_above_the_topic_alone() -> None:
    holds = [source("The oil crisis began in October 1973, when the embargo was proclaimed.")]
    topic_only = [source("The oil crisis hit the economies of many countries. Prices of fuel rose sharply.")]
    asked = "When did the oil crisis begin?"
    assert presence(asked, holds).score >= 0.6  # "began" is not "begin" to a stemmer
    assert presence(asked, topic_only).score <= 0.5
    assert presence(asked, holds).kind_found and not presence(asked, topic_only).kind_found


def test_terms_spread_over_a_passage_count_less_than_terms_together() -> None:
    spread = source(
        "The embargo was proclaimed by the producers. Many meetings followed over the year. "
        "Delegations travelled widely. Reports were written. In the end, the crisis of fuel "
        "prices began to ease in 1974."
    )
    together = source("Fuel prices rose when the producers proclaimed the embargo in 1973.")
    asked = "When did the producers proclaim the embargo on fuel?"
    assert presence(asked, [together]).score > presence(asked, [spread]).score


def test_a_question_s_exact_tokens_must_be_found_as_they_are() -> None:
    passage = [source("Run apt-get install foo to install the package foo.")]
    assert presence("How do I install foo with apt-get?", passage).exact == 1.0
    assert presence("How do I install foo with dpkg -i?", passage).exact < 1.0


def test_passages_in_another_language_are_not_judged_by_words() -> None:
    found = presence("Quand la crise a-t-elle commencé ?", [source("The crisis began in October 1973.")])
    assert not found.judged and found.score == 1.0
    assert relevance("Quand la crise a-t-elle commencé ?", "The crisis began in October 1973.") == 1.0


def test_relevance_is_the_share_of_the_question_s_terms() -> None:
    asked = "When did the oil crisis begin?"
    assert relevance(asked, "The oil crisis began in 1973.") > relevance(asked, "Cats eat fish.")
    assert relevance(asked, "Cats eat fish.") == 0.0
