"""Grounding: what the service finally says, from the model's draft and the passages.

    grounded = ground(attributor, settings.answer, question, draft, sources)

The model is not trusted to stay on its passages, nor to know when they do not answer.
Three decisions are taken here, in this order:

1. **Do the passages answer the question?** Their best sentence is scored against the
   question (mean of term share and cosine, `Attributor.extract`), and that score is
   averaged with the best retrieval score. Below `answer.min_fit` for the question's
   language, the answer is that the documents do not say, whatever the model wrote: a
   weak model answers anyway, so its draft cannot tell. So it is when no short window of
   the passages holds the question's terms together with something of the asked kind
   (`rag.grounding.presence`: a passage on the subject that lacks the asked fact), below
   `answer.min_presence`.
2. **What of the draft is backed?** Each sentence is matched to the passages
   (`Attributor.attribute`); backed sentences cite their passages, the others are marked
   unsupported (or dropped, with `answer.drop_unsupported`).
3. **Is the best passage sentence in the answer?** When no sentence of the draft is backed,
   the answer is the passages' own best sentences (introduced, in the question's language,
   as a quote in the passages' language when that is another). When some are but none quotes the
   passage sentence that best answers the question, and that sentence holds more of the
   question's terms than those backing the draft, it is added, cited: an answer is never
   worse than the passage the model read, and a draft that answers in its own words is
   delivered as written.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from rag.analysis import Language, detect_language
from rag.config import AnswerSettings
from rag.grounding.attribution import Attribution, Attributor, SentenceSupport
from rag.grounding.presence import anchored, presence, relevance
from rag.grounding.sentences import split_sentences
from rag.replies import QUOTED_IN
from rag.types import Source

#: The passage sentences that answer the question best (those near the best one's score,
#: `Attributor.extract_margin`), at most this many: a draft backed by one of them answers
#: the question, a short answer found in one of them is backed.
NEAR_SENTENCES = 3


@dataclass
class Grounded:
    """The final answer text, its sentences and spans, or an abstention."""

    text: str
    sentences: list[SentenceSupport]
    spans: dict[int, list[tuple[int, int]]]
    abstained: bool = False
    #: How well the passages' best sentence answers the question (`Attributor.extract`).
    fit: float = 0.0
    #: What `answer.min_fit` is compared with: the mean of `fit` and the best retrieval score.
    answerability: float = 0.0
    #: The answer is passage sentences only (the draft had nothing backed).
    extracted: bool = False
    #: How well the passages' best window holds what is asked (`rag.grounding.presence`).
    presence: float = 1.0

    @property
    def cited(self) -> list[int]:
        return list(dict.fromkeys(n for s in self.sentences for n in s.sources))


def ground(
    attributor: Attributor, settings: AnswerSettings, question: str, draft: str, sources: Sequence[Source]
) -> Grounded:
    """The answer to give for `question`, from the model's `draft` over `sources`."""
    if not settings.abstain:
        found = attributor.attribute(
            draft, sources, drop_unsupported=settings.drop_unsupported, question=question
        )
        return Grounded(found.text, found.sentences, found.spans)
    (best, quoted, near), fit = attributor.extracts(question, sources, (1, 3, NEAR_SENTENCES))
    closest = _first_sentences(near.spans, sources)
    found = attributor.attribute(
        draft, sources, drop_unsupported=settings.drop_unsupported, question=question, near=closest
    )
    score = answerability(fit, sources)
    held = presence(question, sources).score
    if not best.sentences or score < min_fit(settings, question) or held < min_presence(settings, question):
        return Grounded("", found.sentences, {}, abstained=True, fit=fit, answerability=score, presence=held)
    if not any(s.supported for s in found.sentences):
        return _introduced(quoted, detect_language(question), fit)
    if (
        _quotes(found, best)
        or _overlaps(found.spans, closest)
        or not _leaves_out_the_answer(found, best, sources, question, attributor.relevance)
    ):
        return Grounded(found.text, found.sentences, found.spans, fit=fit, presence=held)
    return _with_quote(found, best, fit)


def answerability(fit: float, sources: Sequence[Source]) -> float:
    """How well the passages answer the question: the mean of the best passage sentence's
    match (`fit`) and the best retrieval score."""
    return (fit + max((s.score for s in sources), default=0.0)) / 2


def min_fit(settings: AnswerSettings, question: str) -> float:
    """The answerability a question in its language needs (English's when not given)."""
    lang = detect_language(question)
    return settings.min_fit.get(lang, settings.min_fit.get("en", 0.0))


def min_presence(settings: AnswerSettings, question: str) -> float:
    """The presence score (`rag.grounding.presence`) a question in its language needs."""
    lang = detect_language(question)
    return settings.min_presence.get(lang, settings.min_presence.get("en", 0.0))


def _introduced(quoted: Attribution, language: Language, fit: float) -> Grounded:
    """Passage sentences as the answer; said to be a quote in another language when they
    are not in the question's (the service's own words always are)."""
    intro = QUOTED_IN[language].get(detect_language(quoted.text))
    if intro is None:
        return Grounded(quoted.text, quoted.sentences, quoted.spans, fit=fit, extracted=True)
    shift = len(intro) + 1
    sentences = [replace(s, start=s.start + shift, end=s.end + shift) for s in quoted.sentences]
    return Grounded(f"{intro} {quoted.text}", sentences, quoted.spans, fit=fit, extracted=True)


def _quotes(found: Attribution, best: Attribution) -> bool:
    """Whether a backed sentence of the answer is the best passage sentence (its span holds
    where the best quote starts; the quote may take the next sentences along)."""
    for number, spans in best.spans.items():
        for start, _ in spans:
            if any(a <= start < b for a, b in found.spans.get(number, [])):
                return True
    return False


def _first_sentences(
    spans: dict[int, list[tuple[int, int]]], sources: Sequence[Source]
) -> dict[int, list[tuple[int, int]]]:
    """The passage sentence each quote span starts with (a quote takes the next sentences
    along to make sense; it was chosen for its first)."""
    texts = {s.number: s.text for s in sources}
    first: dict[int, list[tuple[int, int]]] = {}
    for number, found in spans.items():
        pieces = split_sentences(texts.get(number, ""))
        for start, _ in found:
            piece = next((p for p in pieces if p.start <= start < p.end), None)
            if piece is not None:
                first.setdefault(number, []).append((piece.start, piece.end))
    return first


def _overlaps(spans: dict[int, list[tuple[int, int]]], others: dict[int, list[tuple[int, int]]]) -> bool:
    """Whether a span of one passage in `spans` overlaps one of `others` in it."""
    return any(a < d and c < b for n, found in spans.items() for a, b in found for c, d in others.get(n, []))


def _leaves_out_the_answer(
    found: Attribution, best: Attribution, sources: Sequence[Source], question: str, needed: float
) -> bool:
    """Whether the best passage sentence answers the question better than the draft: it
    holds `needed` of the question's terms (`rag.grounding.presence.relevance`) and more of them than
    any passage sentence backing the draft. A weak model's backed sentence about something
    else gets the answer added; a draft that answers in its own words does not."""
    texts = {s.number: s.text for s in sources}
    best_share = max(
        (_relevance(question, texts.get(n, ""), spans, first=True) for n, spans in best.spans.items()),
        default=0.0,
    )
    if best_share < needed:
        return False
    backing = max(
        (_relevance(question, texts.get(n, ""), spans) for n, spans in found.spans.items()), default=0.0
    )
    return best_share > backing


def _relevance(question: str, text: str, spans: Sequence[tuple[int, int]], *, first: bool = False) -> float:
    """The best relevance to the question of the passage sentences these spans fall in (with
    `first`, of the first sentence of each: a quote takes the next ones along to make sense,
    but is chosen for its first)."""
    pieces = split_sentences(text)
    shares = [0.0]
    for start, end in spans:
        at = [i for i, p in enumerate(pieces) if p.end > start and p.start < end]
        if at:
            last = at[0] if first else at[-1]
            held = anchored(pieces, at[0]) + text[pieces[at[0]].end : pieces[last].end]
            shares.append(relevance(question, held))
    return max(shares)


def _with_quote(found: Attribution, best: Attribution, fit: float) -> Grounded:
    """The answer followed by the passage sentence that best answers the question."""
    quote = best.sentences[0]
    text = found.text.rstrip()
    sep = "\n\n" if text else ""
    start = len(text) + len(sep)
    sentence = quote.text  # cited by the extraction
    added = SentenceSupport(sentence, start, start + len(sentence), list(quote.sources), quote.score, True)
    spans = {n: list(s) for n, s in found.spans.items()}
    for number, extra in best.spans.items():
        spans.setdefault(number, []).extend(x for x in extra if x not in spans[number])
    return Grounded(text + sep + sentence, [*found.sentences, added], spans, fit=fit)
