"""Attribution after generation, with the real embedder: each answer sentence is matched
to the passage sentence that backs it, citations are rewritten from the match, and every
span reported is really in the stored passage text."""

from __future__ import annotations

import pytest

from rag.embedders.sentence_transformers import SentenceTransformerEmbedder
from rag.grounding.attribution import Attributor, strip_citations
from rag.grounding.sentences import split_sentences
from rag.types import Source

CATS = (
    "Cats are small carnivorous mammals. They sleep about sixteen hours a day. "
    "A cat eats fish and meat; milk upsets the stomach of most adult cats."
)
ETNA = (
    "Mount Etna is an active volcano on the east coast of Sicily. It is 3,357 metres "
    "high. L'Etna est entré en éruption en 2024."
)


def sources() -> list[Source]:
    return [
        Source(1, "cats.md", None, "", "Cats", "", 0.6, text=CATS),
        Source(2, "etna.md", None, "", "", "", 0.5, text=ETNA),
    ]


@pytest.fixture(scope="module")
def attributor(embedder: SentenceTransformerEmbedder) -> Attributor:
    return Attributor(embedder)


def test_sentences_keep_their_offsets() -> None:
    text = "First one. Second, e.g. this one!\nThird?  Last"
    pieces = split_sentences(text)
    assert [p.text for p in pieces] == ["First one.", "Second, e.g. this one!", "Third?", "Last"]
    assert all(text[p.start : p.end] == p.text for p in pieces)


def test_citations_come_from_the_match_not_the_model(attributor: Attributor) -> None:
    answer = "Cats sleep for about sixteen hours every day [2]. Etna is 3,357 metres tall."
    found = attributor.attribute(answer, sources())
    first, second = found.sentences
    assert first.supported and first.sources == [1] and "[1]" in first.text and "[2]" not in first.text
    assert second.supported and second.sources == [2]
    assert found.text == ("Cats sleep for about sixteen hours every day [1]. Etna is 3,357 metres tall [2].")
    for number, spans in found.spans.items():
        text = sources()[number - 1].text
        for start, end in spans:
            assert text[start:end] in split_sentences(text)[0].text or text[start:end] in text
            assert text[start:end].strip() == text[start:end] and end > start
    assert CATS[found.spans[1][0][0] : found.spans[1][0][1]] == "They sleep about sixteen hours a day."


def test_an_invented_sentence_is_unsupported_and_can_be_dropped(attributor: Attributor) -> None:
    answer = "A cat eats fish and meat. To ingest a folder, run rag load --recursive --fast. Yes."
    found = attributor.attribute(answer, sources())
    assert [s.supported for s in found.checked] == [True, False]
    assert not found.sentences[-1].checked  # too short to judge
    assert found.unsupported[0].text.startswith("To ingest a folder")
    assert found.supported_rate == pytest.approx(0.5)
    dropped = attributor.attribute(answer, sources(), drop_unsupported=True)
    assert "rag load" not in dropped.text and dropped.text.startswith("A cat eats fish and meat [1].")


def test_french_answer_over_a_french_passage(attributor: Attributor) -> None:
    found = attributor.attribute("L'Etna est entré en éruption en 2024.", sources())
    assert found.sentences[0].supported and found.sentences[0].sources == [2]


def test_no_passage_means_nothing_supported(attributor: Attributor) -> None:
    found = attributor.attribute("Some answer with enough words in it.", [])
    assert found.supported_rate == 0.0 and found.spans == {}
    assert strip_citations("A [1] b [2, 3].") == "A b."


def test_an_invented_command_or_number_is_not_backed_by_a_close_passage(attributor: Attributor) -> None:
    passage = [
        Source(
            1,
            "dpkg.md",
            None,
            "",
            "dpkg",
            "",
            0.6,
            text="To see the files a package installed, run dpkg --listfiles foo.",
        )
    ]
    found = attributor.attribute("To see the files a package installed, run dpkg --files foo.", passage)
    assert not found.sentences[0].supported and found.sentences[0].sources == []
    right = attributor.attribute("Run dpkg --listfiles foo to see the files a package installed.", passage)
    assert right.sentences[0].supported and right.sentences[0].sources == [1]
