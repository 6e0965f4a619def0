from __future__ import annotations

import random

import pytest

from ingest.chunking import Chunker
from ingest.loaders import Page
from rag.embedders import SentenceTransformerEmbedder

FRENCH = (
    "L'éléphant d'Afrique, qui vit principalement dans les savanes et les forêts tropicales, "
    "est le plus grand animal terrestre aujourd'hui ; ses défenses d'ivoire, très recherchées "
    "par les braconniers, ont entraîné une diminution spectaculaire de sa population au cours "
    "du vingtième siècle, malgré les interdictions internationales successives. "
)
ENGLISH = (
    "The committee's preliminary assessment, published after extensive consultation with "
    "stakeholders across several jurisdictions, concluded that interoperability requirements "
    "should be harmonised before any enforcement mechanism is introduced. "
)


def _text(seed: int, base: str, paragraphs: int) -> str:
    rng = random.Random(seed)
    words = base.split()
    out = []
    for _ in range(paragraphs):
        rng.shuffle(words)
        out.append(" ".join(words * rng.randint(1, 6)))  # some paragraphs with no sentence end
    return "\n\n".join(out)


@pytest.mark.parametrize("base", [FRENCH, ENGLISH], ids=["french", "english"])
@pytest.mark.parametrize("size", [100, 200, 400, 1000])
def test_no_chunk_exceeds_the_embedder(
    embedder: SentenceTransformerEmbedder, base: str, size: int
) -> None:
    chunker = Chunker(size, size // 8, limit=embedder.count_tokens, max_limit=embedder.max_tokens)
    text = _text(size, base, 30) + "\n\n" + "x" * 5000  # and one giant "word"
    chunks = list(chunker.chunks([Page(text)], "doc.txt"))
    assert len(chunks) > 3
    for chunk in chunks:
        assert embedder.count_tokens(chunk.text) <= embedder.max_tokens
        assert chunker.count(chunk.text) <= size + 8
    # Nothing is lost: every word of the source is in some chunk.
    assert set(text.split()) - {"x" * 5000} <= set(" ".join(c.text for c in chunks).split())


def test_headings_cut_and_are_kept() -> None:
    text = "# Guide\n\nIntro text.\n\n## Install\n\nRun make.\n\n## Use\n\nAsk things."
    chunks = list(Chunker(200, 20).chunks([Page(text)], "g.md"))
    assert [c.heading for c in chunks] == ["Guide", "Guide > Install", "Guide > Use"]
    assert chunks[1].text.startswith("## Install")


def test_pages_are_kept() -> None:
    pages = [Page("Alpha. " * 30, 1), Page("Beta. " * 30, 2), Page("Gamma. " * 30, 3)]
    chunks = list(Chunker(80, 10).chunks(pages, "p.pdf"))
    assert chunks[0].page_start == 1
    assert chunks[-1].page_end == 3
    assert all(c.page_start is not None for c in chunks)


def test_overlap_repeats_the_tail() -> None:
    text = " ".join(f"Sentence number {i} is here." for i in range(60))
    chunks = list(Chunker(60, 20).chunks([Page(text)], "o.txt"))
    assert len(chunks) > 2
    first_of_second = chunks[1].text.split(" is here.")[0] + " is here."
    assert first_of_second in chunks[0].text
    assert chunks[0].text.endswith(chunks[1].text[: chunks[1].text.index(" is here.", 30) + 9])


def test_overlap_must_be_smaller_than_size() -> None:
    with pytest.raises(ValueError):
        Chunker(50, 50)
