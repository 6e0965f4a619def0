"""Reference answers as the model's drafts: how grounding treats a capable model's answers.

    rag eval SET --drafts references

No model runs. Each question is asked with a draft that is a human-written reference
answer: its own (a right draft) and another question's (a wrong one, from the next
question of the set whose answer differs). Grounding should deliver a right draft intact
and catch a wrong one; what it does is scored here:

- **right_kept**: the answer is the draft, as written (citations aside), not abstained,
  nothing flagged unsupported, nothing added.
- **right_kept_found**: the same, over the questions whose passages hold the right draft's
  words (retrieval found the answer; when it did not, no draft can be backed).
- **wrong_caught**: the answer abstains, replaces the draft (passage sentences instead),
  or flags one of its sentences unsupported.

Unanswerable questions get a wrong draft, and count in abstention as with a model.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from rag.analysis import claim_tokens, held_tokens
from rag.generators.base import Delta, GenerationParams, Generator, Message
from rag.grounding.attribution import strip_citations
from rag.types import Answer
from rag_eval.datasets import Query

DRAFT_METRICS = ("right_kept", "right_kept_found", "wrong_caught")


class ReferenceDrafts(Generator):
    """Says the draft it was last given, whatever it is asked."""

    kind = "references"

    def __init__(self, n_ctx: int) -> None:
        self.name, self.n_ctx, self.draft = "reference answers", n_ctx, ""

    def stream(self, messages: Sequence[Message], params: GenerationParams) -> Iterator[Delta]:
        yield Delta(self.draft, "stop", max(1, len(self.draft) // 4))

    def count_tokens(self, messages: Sequence[Message]) -> int:
        """About four characters a token: the prompt is only fitted, not read."""
        return sum(len(m["content"]) for m in messages) // 4 + 8 * len(messages)


def wrong_drafts(queries: Sequence[Query]) -> dict[str, str]:
    """For each question, another's reference answer: the next answerable question's (in
    the set's order, wrapping round) whose answers share nothing with its own."""
    answered = [q for q in queries if q.answers]
    wrong: dict[str, str] = {}
    for query in queries:
        own = {a.casefold() for a in query.answers}
        start = answered.index(query) + 1 if query in answered else 0
        for step in range(len(answered)):
            other = answered[(start + step) % len(answered)]
            if other is not query and not own & {a.casefold() for a in other.answers}:
                wrong[query.id] = other.answers[0]
                break
    return wrong


def kept(answer: Answer, draft: str) -> bool:
    """The answer is the draft as written: not abstained, nothing flagged, nothing added."""
    if answer.abstained or answer.unsupported:
        return False
    return _plain(answer.text) == _plain(draft)


def caught(answer: Answer, draft: str) -> bool:
    """The answer abstains, is not the draft (replaced by passage sentences), or flags a
    sentence of it."""
    if answer.abstained or answer.unsupported:
        return True
    return _plain(draft) not in _plain(answer.text)


def found(answer: Answer, draft: str) -> bool:
    """Whether the passages the question got hold every word of the draft."""
    wanted = set(claim_tokens(strip_citations(draft)))
    return any(wanted <= held_tokens(s.text) for s in answer.sources)


def draft_result(answer: Answer) -> dict[str, Any]:
    return {"answer": answer.text, "abstained": answer.abstained, "unsupported": answer.unsupported}


def _plain(text: str) -> str:
    return " ".join(strip_citations(text).split())
