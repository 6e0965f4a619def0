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
   (`rag.presence`: a passage on the subject that lacks the asked fact), below
   `answer.min_presence`.
2. **What of the draft is backed?** Each sentence is matched to the passages
   (`Attributor.attribute`); backed sentences cite their passages, the others are marked
   unsupported (or dropped, with `answer.drop_unsupported`).
3. **Is the best passage sentence in the answer?** When no sentence of the draft is backed,
   the answer is the passages' own best sentences (introduced, in the question's language,
   as a quote in the passages' language when that is another). When some are but none quotes the
   passage sentence that best answers the question, that sentence is added, cited: an
   answer is never worse than the passage the model read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from rag.analysis import Language, detect_language
from rag.attribution import Attribution, Attributor, SentenceSupport, split_sentences
from rag.config import AnswerSettings
from rag.messages import QUOTED_IN
from rag.presence import ANSWERING_RELEVANCE, anchored, presence, relevance
from rag.types import Source


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
    #: How well the passages' best window holds what is asked (`rag.presence`).
    presence: float = 1.0

    @property
    def cited(self) -> list[int]:
        return list(dict.fromkeys(n for s in self.sentences for n in s.sources))


def ground(attributor: Attributor, settings: AnswerSettings, question: str, draft: str,
           sources: Sequence[Source]) -> Grounded:  # fmt: skip
    """The answer to give for `question`, from the model's `draft` over `sources`."""
    found = attributor.attribute(draft, sources, drop_unsupported=settings.drop_unsupported,
                                 question=question)  # fmt: skip
    if not settings.abstain:
        return Grounded(found.text, found.sentences, found.spans)
    (best, quoted), fit = attributor.extracts(question, sources, (1, 3))
    score = answerability(fit, sources)
    held = presence(question, sources).score
    if not best.sentences or score < min_fit(settings, question) or held < min_presence(settings, question):
        return Grounded("", found.sentences, {}, abstained=True, fit=fit, answerability=score,
                        presence=held)  # fmt: skip
    if not any(s.supported for s in found.sentences):
        return _introduced(quoted, detect_language(question), fit)
    if _quotes(found, best) or _answers_the_question(found, sources, question):
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
    """The presence score (`rag.presence`) a question in its language needs."""
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


def _answers_the_question(found: Attribution, sources: Sequence[Source], question: str) -> bool:
    """Every sentence of the draft is backed, one of them by passage sentences that hold the
    question's terms (`rag.presence.relevance`): the draft answers what was asked, in its
    own words, and the best passage sentence is not added to it. A weak model's backed
    sentence about something else gets it added."""
    checked = found.checked
    if not checked or not all(s.supported for s in checked):
        return False
    texts = {s.number: s.text for s in sources}
    for number, spans in found.spans.items():
        text = texts.get(number, "")
        pieces = split_sentences(text)
        for start, end in spans:
            at = [i for i, p in enumerate(pieces) if p.end > start and p.start < end]
            if not at:
                continue
            held = anchored(pieces, at[0]) + text[pieces[at[0]].end : pieces[at[-1]].end]
            if relevance(question, held) >= ANSWERING_RELEVANCE:
                return True
    return False


def _with_quote(found: Attribution, best: Attribution, fit: float) -> Grounded:
    """The answer followed by the passage sentence that best answers the question."""
    quote = best.sentences[0]
    text = found.text.rstrip()
    sep = "\n\n" if text else ""
    start = len(text) + len(sep)
    sentence = quote.text  # cited by the extraction
    added = SentenceSupport(sentence, start, start + len(sentence), list(quote.sources),
                            quote.score, True)  # fmt: skip
    spans = {n: list(s) for n, s in found.spans.items()}
    for number, extra in best.spans.items():
        spans.setdefault(number, []).extend(x for x in extra if x not in spans[number])
    return Grounded(text + sep + sentence, [*found.sentences, added], spans, fit=fit)
