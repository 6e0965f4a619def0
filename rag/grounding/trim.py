"""Passages trimmed for the prompt: the sentences around the best match to the question.

    trim_passage("How long must the dough rise?", chunk_text, chars=400)

A CPU reads a prompt at a few hundred tokens a second, so every passage sentence that does
not bear on the question delays the answer. The passage's sentence sharing most of the
question's terms is kept, then its neighbours, nearer first, until about `chars`
characters; the kept sentences stay in their order, and a gap is shown with "…". Only
what the model reads is trimmed: sources, spans and attribution keep the whole passage.
"""

from __future__ import annotations

from rag.analysis import analyze, detect_language
from rag.grounding.sentences import split_sentences

GAP = " … "


def trim_passage(question: str, text: str, chars: int) -> str:
    """`text` cut down to about `chars` characters around its best sentence for
    `question`; the whole text when it is short enough or `chars` is 0."""
    if chars <= 0 or len(text) <= chars:
        return text
    pieces = split_sentences(text)
    if len(pieces) <= 1:
        return text
    lang = detect_language(question)
    wanted = set(analyze(question, lang))
    scores = [len(wanted & set(analyze(p.text, lang))) for p in pieces]
    best = max(range(len(pieces)), key=lambda i: (scores[i], -i))
    lo = hi = best
    size = len(pieces[best].text)
    grown = True
    while grown:  # one window of sentences: what follows first, it often explains
        grown = False
        for i in (hi + 1, lo - 1):
            if 0 <= i < len(pieces) and size + len(pieces[i].text) + 1 <= chars:
                lo, hi = min(lo, i), max(hi, i)
                size += len(pieces[i].text) + 1
                grown = True
    window = text[pieces[lo].start : pieces[hi].end]
    return f"{GAP.strip() + ' ' if lo > 0 else ''}{window}{' ' + GAP.strip() if hi < len(pieces) - 1 else ''}"
