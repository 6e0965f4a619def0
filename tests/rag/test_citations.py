from __future__ import annotations

from rag.grounding.citations import CitationFilter, clean


def test_clean_keeps_valid_and_removes_unknown() -> None:
    text, cited = clean("Cats eat fish [1]. Dogs bark [7]. Both [2, 9].", [1, 2])
    assert text == "Cats eat fish [1]. Dogs bark . Both [2]."
    assert cited == [1, 2]


def test_streaming_filter_matches_clean_whatever_the_pieces() -> None:
    text = "See [1] and [3] or [1,2] but not [x] nor [12"
    for size in (1, 2, 3, 5, 100):
        filt = CitationFilter([1, 2])
        out = "".join(filt.feed(text[i : i + size]) for i in range(0, len(text), size))
        out += filt.flush()
        assert out == "See [1] and  or [1, 2] but not [x] nor [12"
        assert filt.cited == [1, 2]
