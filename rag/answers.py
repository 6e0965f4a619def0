"""A turn's answer: what is decided before generation (`Prepared`), what is streamed
(`TokenEvent`s, then a `DoneEvent`), and the answer it ends with, made from the draft
the model wrote and the passages it read.

Unchecked (`answer.attribute` off), the draft is said as written and the sources it
cites come first. Checked, the grounding decides what is said and which sources back it
(`rag.grounding.check`); when the passages do not answer, the answer says so and shows
what was read.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from rag.analysis import Language
from rag.config import AnswerSettings
from rag.embedders.base import Embedder
from rag.generators.base import GenerationParams, Generator
from rag.generators.pool import Lease
from rag.grounding.attribution import Attributor
from rag.grounding.check import ground
from rag.prompt import BuiltPrompt
from rag.replies import NOT_IN_DOCUMENTS, NOTHING_FOUND
from rag.types import Answer, Source, Usage


@dataclass
class Prepared:
    """Everything decided before generation starts."""

    prompt: BuiltPrompt
    params: GenerationParams
    found_context: bool
    timings: dict[str, float] = field(default_factory=dict)
    language: Language = "en"
    #: When nothing passed the score floor: the closest passages, shown to see also.
    see_also: list[Source] = field(default_factory=list)
    question: str = ""
    #: The model that answers (the pipeline's default one when None).
    generator: Generator | None = None
    #: The model's own text, piece by piece, as generated.
    generated: list[str] = field(default_factory=list)
    #: What the turn's memory is kept under besides its text (see `conversation_of`).
    conversation: tuple[str, ...] = ()
    #: The hold on `generator`: it stays loaded until `release` (generating ends with it).
    lease: Lease | None = None
    #: The embedder that searched the index: attribution and abstention follow it.
    embedder: Embedder | None = None

    def release(self) -> None:
        """Let the model go: another one may take its place once no one holds it."""
        if self.lease is not None:
            self.lease.release()


@dataclass
class TokenEvent:
    text: str


@dataclass
class DoneEvent:
    answer: Answer


Event = TokenEvent | DoneEvent


def nothing_found(
    see_also: list[Source], usage: Usage, timings: dict[str, float], language: Language
) -> Answer:
    """The reply when no passage passed the score floor: the closest ones, to see also."""
    return Answer(
        NOTHING_FOUND[language],
        see_also,
        usage,
        timings,
        "stop",
        found_context=False,
        abstained=True,
        language=language,
    )


def cited(draft: Answer, numbers: Iterable[int]) -> Answer:
    """The draft as written, the sources it cites (`numbers`, in citation order) first."""
    return replace(draft, sources=mark_cited(draft.sources, numbers))


def grounded(
    draft: Answer, question: str, attributor: Attributor, settings: AnswerSettings, language: Language
) -> Answer:
    """The draft checked against its sources (`ground`): the grounded text citing the
    sources that back it, each with the spans that do; or, when the passages do not
    answer the question, that the documents do not say, with every source read, uncited.
    The time it took is `timings["attribute"]`."""
    t0 = time.perf_counter()
    found = ground(attributor, settings, question, draft.text, draft.sources)
    draft.timings["attribute"] = time.perf_counter() - t0
    for source in draft.sources:
        source.spans = found.spans.get(source.number, [])
    if found.abstained:
        for source in draft.sources:
            source.cited, source.spans = False, []
        return replace(
            draft,
            text=NOT_IN_DOCUMENTS[language],
            abstained=True,
            sentences=found.sentences,
            draft=draft.text,
        )
    return replace(
        draft,
        text=found.text,
        sources=mark_cited(draft.sources, found.cited),
        sentences=found.sentences,
        draft=draft.text,
    )


def mark_cited(sources: list[Source], cited: Iterable[int]) -> list[Source]:
    """Cited sources first, in citation order, then the rest of what the model read."""
    by_number = {s.number: s for s in sources}
    ordered = [by_number[n] for n in cited if n in by_number]
    for source in ordered:
        source.cited = True
    return ordered + [s for s in sources if not s.cited]
