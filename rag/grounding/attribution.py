"""Attribution after generation: which passage backs each sentence of an answer.

    found = Attributor(embedder).attribute(answer_text, sources)

The answer is cut into sentences, and so is every passage the model read. Each answer
sentence is compared with each passage sentence in two ways: by words (the share of the
answer sentence's stemmed terms that the passage sentence holds) and by meaning (cosine
similarity of their embeddings). A sentence is *supported* by the passage sentence that
scores best when that score passes the thresholds; the support's character span is
located in the stored passage text itself (and checked there by string comparison), so a
client can highlight it. Citations `[n]` are then rewritten from the match: a supported
sentence cites the passages that support it, whatever the model wrote; an unsupported
sentence cites nothing and is reported as such. The model is not trusted to cite.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from rag.analysis import analyze, claim_tokens, detect_language, held_tokens, is_exact
from rag.grounding.presence import anchored, relevance
from rag.grounding.sentences import Piece, split_sentences

if TYPE_CHECKING:
    from rag.embedders.base import Embedder
    from rag.types import Source

_CITATION = re.compile(r"\s*\[(\d+(?:\s*,\s*\d+)*)\]")
CACHED_VECTORS = 8192  # sentence embeddings kept (3 MB per 2,048 at 384 dimensions)
MIN_WORDS = 3  # shorter pieces ("Yes.", "1.") are neither supported nor unsupported


@dataclass
class SentenceSupport:
    """One sentence of the answer and what backs it."""

    text: str
    start: int  # in the final answer text
    end: int
    sources: list[int] = field(default_factory=list)  # source numbers, best first
    score: float = 0.0  # the best support's combined score
    supported: bool = False
    checked: bool = True  # False for pieces too short to judge


@dataclass
class Attribution:
    text: str  # the answer with citations rewritten
    sentences: list[SentenceSupport]
    spans: dict[int, list[tuple[int, int]]]  # source number -> spans in its passage text

    @property
    def checked(self) -> list[SentenceSupport]:
        return [s for s in self.sentences if s.checked]

    @property
    def supported_rate(self) -> float:
        checked = self.checked
        return sum(s.supported for s in checked) / len(checked) if checked else 0.0

    @property
    def unsupported(self) -> list[SentenceSupport]:
        return [s for s in self.checked if not s.supported]


_YES_NO = frozenset(["yes", "no", "oui", "non", "true", "false", "vrai", "faux"])


def _short_answer(text: str) -> bool:
    """An answer of one or two words that says something ("Toy Story", "1973"), not "Yes."."""
    tokens = claim_tokens(strip_citations(text))
    return 0 < len(text.split()) < MIN_WORDS and any(t not in _YES_NO for t in tokens)


def _containing(
    text: str,
    candidates: list[tuple[int, Piece]],
    passages: list[tuple[int, str, list[Piece]]],
    question: str | None,
    needed: float,
    near: dict[int, list[tuple[int, int]]],
) -> list[tuple[int, Piece]]:
    """The passage sentences (at most 3) that hold every word of a short answer and, with a
    question, are relevant to it (`rag.grounding.presence.anchored`)."""

    wanted = set(claim_tokens(strip_citations(text)))
    pieces = {number: found for number, _, found in passages}
    backing: list[tuple[int, Piece]] = []
    for number, piece in candidates:
        if not wanted <= held_tokens(piece.text):
            continue
        if question is not None:
            around = pieces[number]
            at = next(i for i, p in enumerate(around) if p.start == piece.start)
            # One of the sentences that answer the question best needs half the share.
            close = any(a < piece.end and piece.start < b for a, b in near.get(number, []))
            if relevance(question, anchored(around, at)) < (needed / 2 if close else needed):
                continue
        backing.append((number, piece))
        if len(backing) == 3:
            break
    return backing


def strip_citations(text: str) -> str:
    return _CITATION.sub("", text)


_FENCE = re.compile(r"```[\w+-]*\n?(.*?)\n?```", re.DOTALL)


QUOTE_CHARS = 90  # a quoted answer goes on to the next sentences up to about this length


def _extent(pieces: list[Piece], first: Piece, chars: int = QUOTE_CHARS) -> tuple[int, int]:
    """From `first`, the passage text a quote takes to make sense: the next sentences up
    to about `chars` characters, and always what a sentence ending with ':' announces (a
    command in a code block, a list item); a code block or a heading ends it."""
    at = next(i for i, p in enumerate(pieces) if p.start == first.start)
    end = first.end
    for previous, piece in zip(pieces[at:], pieces[at + 1 :], strict=False):
        if previous.text.startswith("```") or piece.text.startswith("#"):
            break
        if not previous.text.rstrip().endswith(":") and end - first.start >= chars:
            break
        end = piece.end
    return first.start, end


def _inline_code(text: str) -> str:
    """A quote's code blocks as inline code, on one line."""
    return " ".join(_FENCE.sub(lambda m: f"`{' '.join(m.group(1).split())}`", text).split())


def cite(sentence: str, numbers: Sequence[int]) -> str:
    """The sentence citing exactly `numbers`: the model's citations of them kept where it
    put them, others removed, the missing ones added before the final punctuation."""
    wanted = list(numbers)
    kept: list[int] = []

    def keep(match: re.Match[str]) -> str:
        good = [
            n for n in (int(x) for x in re.findall(r"\d+", match.group(1))) if n in wanted and n not in kept
        ]
        kept.extend(good)
        return "".join(f" [{n}]" for n in good)

    text = _CITATION.sub(keep, sentence)
    missing = [n for n in wanted if n not in kept]
    if missing:
        cut = len(text.rstrip(".!?…:;"))
        text = f"{text[:cut]} {''.join(f'[{n}]' for n in missing)}{text[cut:]}"
    return text


class Attributor:
    """Matches answer sentences to passage sentences by words and by meaning."""

    def __init__(
        self,
        embedder: Embedder | None,
        *,
        lexical: float = 0.6,
        dense: float = 0.7,
        combined: float = 0.55,
        relevance: float = 0.5,
    ) -> None:
        """A sentence is supported when its best passage sentence holds `lexical` of its
        terms, or is `dense` close in meaning, or scores `combined` on their mean. A short
        answer is supported by a sentence holding its words and `relevance` of the
        question's terms (`rag.grounding.presence.relevance`)."""
        self.embedder = embedder
        self.relevance = relevance
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self.extract_margin = 0.12  # sentences this close to the best one are quoted too
        self.lexical = lexical
        self.dense = dense
        self.combined = combined

    def attribute(
        self,
        answer: str,
        sources: Sequence[Source],
        *,
        drop_unsupported: bool = False,
        question: str | None = None,
        near: dict[int, list[tuple[int, int]]] | None = None,
    ) -> Attribution:
        """Each sentence of `answer` matched to the passages. A short answer ("October 1973",
        "Toy Story"), too short to compare by terms or meaning, is backed by a passage
        sentence that holds all its words and, when `question` is given, the question's terms
        (with the sentence before it when it refers back: `rag.grounding.presence.anchored`,
        `relevance`; half as many when it is one of the passage sentences that answer it
        best, `near`: spans by passage number): the right words in the wrong place back
        nothing."""
        plain = answer
        sentences = [Piece(strip_citations(p.text), p.start, p.end) for p in split_sentences(answer)]
        passages = [(s.number, s.text, split_sentences(s.text)) for s in sources if s.text]
        candidates = [(number, piece) for number, _, pieces in passages for piece in pieces]
        if not sentences or not candidates:
            return Attribution(
                plain.strip(), [SentenceSupport(p.text, p.start, p.end, checked=False) for p in sentences], {}
            )
        short = len(sentences) == 1 and _short_answer(sentences[0].text)
        lang = detect_language(plain)
        lex = self._lexical(sentences, candidates, lang) if not short else np.zeros((0, 0))
        dense = self._dense(sentences, candidates) if not short else np.zeros((0, 0))
        # A sentence naming a number, command, option or path its passage does not hold is
        # not backed by it, however close their words or meaning: what a model invents.
        held = {number: held_tokens(text) for number, text, _ in passages}
        results: list[tuple[Piece, SentenceSupport, list[tuple[int, Piece]]]] = []
        for i, piece in enumerate(sentences):
            checked = len(piece.text.split()) >= MIN_WORDS or short
            support = SentenceSupport(plain[piece.start : piece.end], piece.start, piece.end, checked=checked)
            backing: list[tuple[int, Piece]] = []
            if short:
                backing = _containing(piece.text, candidates, passages, question, self.relevance, near or {})
                support.supported = bool(backing)
                support.score = 1.0 if backing else 0.0
                support.sources = list(dict.fromkeys(number for number, _ in backing))
            elif checked:
                combined = (lex[i] + dense[i]) / 2
                order = np.argsort(-combined)
                exact = {t for t in claim_tokens(piece.text) if is_exact(t)}
                for j in order[:3]:
                    if not exact <= held[candidates[j][0]]:
                        continue
                    if lex[i, j] >= self.lexical or dense[i, j] >= self.dense or combined[j] >= self.combined:
                        backing.append(candidates[j])
                support.score = float(combined[order[0]])
                support.supported = bool(backing)
                support.sources = list(dict.fromkeys(number for number, _ in backing))
            results.append((piece, support, backing))
        return self._rebuild(plain, results, passages, drop_unsupported)

    def extract(self, question: str, sources: Sequence[Source], limit: int = 3) -> tuple[Attribution, float]:
        """An answer made of the passage sentences that best answer the question, each
        citing its passage; and the best sentence's score (how well the passages answer).

        What the service says when the model wrote nothing the passages back but they do
        hold the answer: their own words, never worse than what the model read."""
        found, best = self.extracts(question, sources, (limit,))
        return found[0], best

    def extracts(
        self, question: str, sources: Sequence[Source], limits: Sequence[int]
    ) -> tuple[list[Attribution], float]:
        """`extract` for each of `limits`, the passage sentences scored once."""
        question_piece = [Piece(question, 0, len(question))]
        passages = [(s.number, s.text, split_sentences(s.text)) for s in sources if s.text]
        units: list[tuple[int, Piece]] = []  # a sentence and what it needs after it
        for number, text, pieces in passages:
            for piece in pieces:
                if piece.text.startswith(("```", "#")) or not (
                    len(piece.text.split()) >= MIN_WORDS or piece.text.endswith(":")
                ):
                    continue
                start, end = _extent(pieces, piece)
                units.append((number, Piece(_inline_code(text[start:end]), start, end)))
        if not units:
            return [Attribution("", [], {}) for _ in limits], 0.0
        lex = self._lexical(question_piece, units, detect_language(question))[0]
        dense = self._dense(question_piece, units)[0]
        combined = (lex + dense) / 2
        texts = {number: text for number, text, _ in passages}
        return [self._quote(units, combined, texts, n) for n in limits], float(combined.max())

    def _quote(
        self, units: list[tuple[int, Piece]], combined: np.ndarray, texts: dict[int, str], limit: int
    ) -> Attribution:
        """The best `limit` units (those near the best score), quoted in reading order."""
        order = [int(j) for j in np.argsort(-combined)[:limit]]
        best = float(combined[order[0]])
        chosen = [j for j in order if combined[j] >= best - self.extract_margin]
        chosen.sort(key=lambda j: (units[j][0], units[j][1].start))  # reading order
        # Quotes that overlap in one passage (a sentence and the next one it takes along)
        # are one quote.
        merged: list[tuple[int, int, int, float]] = []  # number, start, end, score
        for j in chosen:
            number, piece = units[j]
            last = merged[-1] if merged else None
            if last is not None and last[0] == number and piece.start < last[2]:
                merged[-1] = (number, last[1], max(last[2], piece.end), max(last[3], float(combined[j])))
            else:
                merged.append((number, piece.start, piece.end, float(combined[j])))
        spans: dict[int, list[tuple[int, int]]] = {}
        out: list[str] = []
        sentences: list[SentenceSupport] = []
        position = 0
        for number, start, end, score in merged:
            spans.setdefault(number, []).append((start, end))
            sentence = cite(_inline_code(texts[number][start:end]), [number])
            if out:
                out.append(" ")
                position += 1
            sentences.append(
                SentenceSupport(sentence, position, position + len(sentence), [number], score, True)
            )
            out.append(sentence)
            position += len(sentence)
        return Attribution("".join(out), sentences, spans)

    # -- scores ------------------------------------------------------------------

    @staticmethod
    def _lexical(sentences: list[Piece], candidates: list[tuple[int, Piece]], lang: str) -> np.ndarray:
        """Share of each answer sentence's terms found in each passage sentence."""
        answer_terms = [set(analyze(p.text, lang)) for p in sentences]  # type: ignore[arg-type]
        passage_terms = [set(analyze(p.text, lang)) for _, p in candidates]  # type: ignore[arg-type]
        scores = np.zeros((len(sentences), len(candidates)), dtype=np.float32)
        for i, terms in enumerate(answer_terms):
            if terms:
                for j, other in enumerate(passage_terms):
                    scores[i, j] = len(terms & other) / len(terms)
        return scores

    def _dense(self, sentences: list[Piece], candidates: list[tuple[int, Piece]]) -> np.ndarray:
        if self.embedder is None:
            return np.zeros((len(sentences), len(candidates)), dtype=np.float32)
        vectors = self._vectors([p.text for p in sentences] + [p.text for _, p in candidates])
        answers, passages = vectors[: len(sentences)], vectors[len(sentences) :]
        return np.asarray(answers @ passages.T, dtype=np.float32)

    def _vectors(self, texts: list[str]) -> np.ndarray:
        """The embeddings of `texts`, those embedded lately taken from a cache: the same
        passages come back question after question, and each answer is checked against
        them twice (attribution, then extraction)."""
        assert self.embedder is not None
        with self._lock:
            missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if missing:
            fresh = self.embedder.embed(missing)
            with self._lock:
                for text, vector in zip(missing, fresh, strict=True):
                    self._cache[text] = vector
                while len(self._cache) > CACHED_VECTORS:
                    self._cache.popitem(last=False)
        with self._lock:
            found = [self._cache.get(t) for t in texts]
        if any(v is None for v in found):  # pushed out by another thread meanwhile
            return np.asarray(self.embedder.embed(texts))
        return np.stack(found)  # type: ignore[arg-type]

    # -- the answer, cited again -----------------------------------------------------

    @staticmethod
    def _rebuild(
        plain: str,
        results: list[tuple[Piece, SentenceSupport, list[tuple[int, Piece]]]],
        passages: list[tuple[int, str, list[Piece]]],
        drop_unsupported: bool,
    ) -> Attribution:
        """The answer with each sentence's citations rewritten; what lies between sentences
        (spaces, line breaks, list marks) is kept as the model wrote it."""
        texts = {number: text for number, text, _ in passages}
        spans: dict[int, list[tuple[int, int]]] = {}
        out: list[str] = []
        kept: list[SentenceSupport] = []
        position, previous_end = 0, 0
        for piece, support, backing in results:
            gap = plain[previous_end : piece.start]
            previous_end = piece.end
            if drop_unsupported and support.checked and not support.supported:
                continue
            sentence = cite(support.text, support.sources)
            for number, passage in backing:
                if texts[number][passage.start : passage.end] == passage.text:  # really there
                    found = spans.setdefault(number, [])
                    if (passage.start, passage.end) not in found:
                        found.append((passage.start, passage.end))
            if out:
                out.append(gap)
                position += len(gap)
            support.text, support.start, support.end = sentence, position, position + len(sentence)
            out.append(sentence)
            position += len(sentence)
            kept.append(support)
        return Attribution("".join(out), kept, {n: sorted(s) for n, s in spans.items()})
