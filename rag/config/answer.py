"""The answer settings: grounding, abstention thresholds, and the thresholds calibrated
for the packaged multilingual embedder."""

from __future__ import annotations

from pydantic import (
    Field,
)

from rag.config.groups import MULTILINGUAL_EMBEDDER, SettingsGroup


class AnswerSettings(SettingsGroup):
    attribute: bool = Field(
        True,
        description="Match each sentence of an answer to the passages that back it and rewrite "
        "its citations from that match (the model's own citations are not trusted).",
    )
    drop_unsupported: bool = Field(
        False, description="Leave out of the answer the sentences no passage supports."
    )
    abstain: bool = Field(
        True,
        description="Answer that the documents do not say when the passages answer the "
        "question less well than min_fit (the closest passages are then returned to see also); "
        "when no sentence of the model's answer is backed by a passage, answer with the "
        "passages' own best sentences instead.",
    )
    min_fit: dict[str, float] = Field(
        default_factory=lambda: {"en": 0.54, "fr": 0.43},
        description="By the question's language: how well the passages must answer the "
        "question for an answer to be given, scored as the mean of the best retrieval score "
        "and the best passage sentence's match (mean of term share and cosine); below it the "
        "documents do not say. Calibrated with `rag eval` on answerable and unanswerable "
        "questions (bench/calibrate.py --on the calibration splits of squad2-en and piaf-fr).",
    )
    min_presence: dict[str, float] = Field(
        default_factory=lambda: {"en": 0.4, "fr": 0.3},
        description="By the question's language: how well the passages' best short window must "
        "hold what is asked (the question's terms together, its exact tokens, and something of "
        "the asked kind: a date for 'when', a number for 'how many', a name for 'who'; "
        "rag/presence.py) for an answer to be given. Calibrated with bench/calibrate.py.",
    )
    passage_chars: int = Field(
        0,
        ge=0,
        description="Show the model each passage as about this many characters around its "
        "sentence that best matches the question (shorter prompts answer sooner on a CPU); 0 "
        "shows passages whole. Sources, spans and attribution always use the whole passage.",
    )
    support_lexical: float = Field(
        0.85,
        ge=0,
        le=1,
        description="A sentence is supported by a passage sentence holding this share of its terms...",
    )
    support_dense: float = Field(
        0.95, ge=-1, le=1, description="...or this close to it in meaning (cosine)..."
    )
    support_combined: float = Field(0.9, ge=0, le=1, description="...or scoring this on the mean of the two.")
    min_relevance: float = Field(
        0.35,
        ge=0,
        le=1,
        description="A short answer ('October 1973') is supported by a passage sentence holding "
        "its words and this share of the question's terms; an answer backed by such a sentence "
        "gets no passage quote added. Chosen with `rag eval --drafts references` on calibration "
        "splits (docs/evaluation.md).",
    )


#: Abstention thresholds calibrated for the packaged multilingual embedder, whose cosines
#: run higher than all-MiniLM-L6-v2's (for which the defaults are): used where
#: `answer.min_fit` and `answer.min_presence` are not set and that model answers
#: (docs/evaluation.md, "Knowing when the documents do not say").
MULTILINGUAL_THRESHOLDS: dict[str, dict[str, float]] = {
    "min_fit": {"en": 0.74, "fr": 0.70},
    "min_presence": {"en": 0.4, "fr": 0.25},
}


def answer_settings_for(answer: AnswerSettings, embedder_name: str) -> AnswerSettings:
    """`answer` with the thresholds calibrated for the embedder named `embedder_name` where
    they were not set."""
    if not embedder_name.startswith(MULTILINGUAL_EMBEDDER):
        return answer
    update = {k: dict(v) for k, v in MULTILINGUAL_THRESHOLDS.items() if k not in answer.model_fields_set}
    return answer.model_copy(update=update) if update else answer
