from __future__ import annotations

import random
import time

import pytest

from ingest.chunking import Chunker
from ingest.loaders import Page
from rag.embedders.sentence_transformers import SentenceTransformerEmbedder
from rag.errors import ConfigError

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
@pytest.mark.parametrize("size", [100, 200, 256])
def test_no_chunk_exceeds_the_embedder(embedder: SentenceTransformerEmbedder, base: str, size: int) -> None:
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
    chunks = list(Chunker(200, 20).chunks([Page(text, markdown=True)], "g.md"))
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


def test_size_beyond_the_embedder_window_is_refused(embedder: SentenceTransformerEmbedder) -> None:
    with pytest.raises(ConfigError, match=r"chunking.size=512 .* window of 256"):
        Chunker(512, 30, limit=embedder.count_tokens, max_limit=embedder.max_tokens)
    chunker = Chunker(256, 30, limit=embedder.count_tokens, max_limit=embedder.max_tokens)
    assert chunker.effective_size == 256


def test_no_chunk_is_a_heading_alone() -> None:
    text = (
        "# Guide\n\n## Install\n\nRun make.\n\n## Use\n\n### Asking\n\n"
        + " ".join(f"Question {i} is asked here." for i in range(60))
        + "\n\n## End"
    )
    chunks = list(Chunker(60, 10).chunks([Page(text, markdown=True)], "g.md"))
    assert chunks[0].text == "# Guide\n\n## Install\n\nRun make."
    assert chunks[1].text.startswith("## Use\n\n### Asking\n\nQuestion 0 is asked here.")
    assert chunks[1].heading == "Guide > Use > Asking"
    for chunk in chunks:
        lines = [line for line in chunk.text.splitlines() if line.strip()]
        assert not all(line.startswith("#") for line in lines), chunk.text


def test_comment_lines_in_text_and_code_are_not_headings() -> None:
    code = "# install the package\n\npip install rag\n\n# then run it\n\nrag serve"
    chunks = list(Chunker(200, 20).chunks([Page(code)], "setup.sh"))
    assert len(chunks) == 1 and chunks[0].heading == ""
    assert chunks[0].text == code


def _table(rows: int) -> str:
    lines = ["| Product | Price | Stock |", "| --- | --- | --- |"]
    lines += [f"| item number {i} | {i * 3} euros | {i % 7} |" for i in range(rows)]
    return "\n".join(lines)


def test_a_table_stays_in_one_chunk() -> None:
    text = "Some words before. " * 20 + "\n\n" + _table(6) + "\n\nSome words after."
    chunks = list(Chunker(120, 20).chunks([Page(text, markdown=True)], "t.md"))
    holding = [c for c in chunks if "| item number 3 |" in c.text]
    assert len(holding) == 1 and _table(6) in holding[0].text


def test_a_long_table_repeats_its_header_in_each_piece(embedder: SentenceTransformerEmbedder) -> None:
    chunker = Chunker(100, 20, limit=embedder.count_tokens, max_limit=embedder.max_tokens)
    chunks = list(chunker.chunks([Page("# Stock\n\n" + _table(80), markdown=True)], "s.md"))
    assert len(chunks) > 3
    rows = []
    for chunk in chunks:
        body = chunk.text.removeprefix("# Stock\n\n")
        assert body.startswith("| Product | Price | Stock |\n| --- | --- | --- |\n| item number"), chunk.text
        assert chunker.count(chunk.text) <= 100 and chunk.heading == "Stock"
        rows += list(body.splitlines()[2:])
    assert len(set(rows)) == 80  # every row, whole, in some piece


def test_the_embedders_tokenizer_reads_each_paragraph_once(embedder: SentenceTransformerEmbedder) -> None:
    """Paragraphs are counted in one call per page, each once (a heading line and its body
    apart); one of more tokens than a chunk holds is counted as its sentences only; a
    table too long for a chunk has its rows counted in one more call."""
    read = single = 0

    def many(texts: list[str]) -> list[int]:
        nonlocal read
        read += sum(map(len, texts))
        return embedder.count_tokens_batch(texts)

    def one(text: str) -> int:
        nonlocal single
        single += 1
        return embedder.count_tokens(text)

    chunker = Chunker(200, 30, limit=one, max_limit=embedder.max_tokens, limit_many=many)
    prose = "\n\n".join(f"{i}. {ENGLISH if i % 2 else FRENCH}" for i in range(30))  # each fits a chunk
    table = _table(60)
    long = " ".join([ENGLISH.strip()] * 10)  # 320 tokens: cut into sentences
    text = f"# Report\n\n{prose}\n\n{long}\n\n## Stock\nWhat is left.\n\n{table}"
    chunks = list(chunker.chunks([Page(text, markdown=True)], "report.md"))
    assert len(chunks) > 5 and any("| item number 59 |" in c.text for c in chunks)
    assert read <= len(text), (read, len(text))  # each character at most once
    assert single <= 3  # the special tokens, and no row or paragraph one at a time


def test_chunks_carry_the_embedders_ids_of_their_text(embedder: SentenceTransformerEmbedder) -> None:
    """Given the embedder's word pieces, chunking gives each chunk the ids of its text (the
    embedder does not tokenize it again): the same chunks, with the ids the tokenizer makes
    of each chunk's text, or None where a unit was cut where none were counted."""
    from rag.embedders.sentence_transformers import _counting_tokenizer

    tokenizer = _counting_tokenizer(embedder.model.tokenizer)

    def pieces(texts: list[str]) -> list[list[int]]:
        return [e.ids for e in tokenizer.encode_batch(texts, add_special_tokens=False)]

    text = (
        f"# Rapport\n\nIntroduction.\n\n{_text(5, FRENCH, 12)}\n\n## Stock\n\n{_table(40)}\n\n"
        f"## English\n\n{_text(6, ENGLISH, 12)}\n\n{'y' * 3000}"
    )
    pages = [Page(text, markdown=True, number=1), Page(_text(7, ENGLISH, 5), number=2)]
    plain = Chunker(200, 30, limit=embedder.count_tokens, max_limit=embedder.max_tokens)
    pieced = Chunker(200, 30, limit=embedder.count_tokens, max_limit=embedder.max_tokens, pieces_many=pieces)
    pairs = list(pieced.pieced(pages, "r.md"))
    assert [c for c, _ in pairs] == list(plain.chunks(pages, "r.md"))
    known = [(c, ids) for c, ids in pairs if ids is not None]
    assert len(known) >= 0.8 * len(pairs) > 20
    for chunk, ids in known:
        assert ids == tokenizer.encode(chunk.text, add_special_tokens=False).ids, chunk.text[:80]
    # An embedder whose tokenizer does not join its pieces: counts only, no ids.
    counting = Chunker(
        200, 30, limit=embedder.count_tokens, max_limit=embedder.max_tokens, pieces_many=lambda texts: None
    )
    assert [ids for _, ids in counting.pieced(pages, "r.md")] == [None] * len(pairs)


def test_chunking_time_is_linear(embedder: SentenceTransformerEmbedder) -> None:
    """Each unit is counted once: 4x the text costs 4x the tokenizer calls, and about 4x
    the time (best of three runs each, so that a busy machine does not decide)."""
    costs = []
    for copies in (1, 4):
        calls = read = 0

        def limit(text: str) -> int:
            nonlocal calls, read
            calls += 1
            read += len(text)
            return embedder.count_tokens(text)

        chunker = Chunker(200, 30, limit=limit, max_limit=embedder.max_tokens)
        paragraphs = (_text(7, FRENCH, 20) + "\n\n" + _text(8, ENGLISH, 20)).split("\n\n")
        paragraphs += [f"Line {i} of a list of short items." for i in range(200)]  # many per chunk
        text = "\n\n".join(f"Copy {c}: {p}" for c in range(copies) for p in paragraphs)
        seconds = []
        for _ in range(3):
            calls = read = 0
            start = time.perf_counter()
            chunks = list(chunker.chunks([Page(text)], "big.txt"))
            seconds.append(time.perf_counter() - start)
        costs.append((calls, min(seconds), len(chunks), len(text)))
        # the embedder's tokenizer reads each character about once, never the growing chunk
        assert read <= 2 * len(text), (read, len(text))
    (calls1, time1, n1, len1), (calls4, time4, n4, len4) = costs
    assert 3.9 < len4 / len1 < 4.1 and n4 >= 3.5 * n1
    assert calls4 / len4 <= 1.1 * calls1 / len1  # the same calls per character
    assert calls1 <= 3 * n1 + 200  # about one call per unit, not one per unit per chunk
    assert time4 < 5 * time1 * len4 / (4 * len1) + 0.05, (time1, time4)
