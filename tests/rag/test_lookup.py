"""Prompt lookup: the drafts it guesses, and greedy answers token for token the plain ones
on the packaged model."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.config import load_settings
from rag.generation import GenerationParams, LlamaCppGenerator
from rag.lookup import LookupLlama, NgramIndex

PASSAGE = (Path(__file__).parents[2] / "docs" / "architecture.md").read_text()[:2500]
QUESTIONS = [
    "Quote what the passage says about how a document is replaced in the index.",
    "What is the first sentence of the passage? Quote it.",
    "How are chunks sized? Answer in the passage's own words.",
]


def test_the_draft_follows_the_latest_earlier_occurrence_of_the_last_tokens() -> None:
    index = NgramIndex([5, 6, 7, 8, 9, 1, 2, 5, 6, 3, 4, 0, 5, 6])
    assert index.draft(3) == [3, 4, 0]  # [5, 6] last occurred before position 9
    index.extend([3])
    assert index.draft(10) == [4, 0, 5, 6, 3]  # [6, 3] matched; the draft stops at the end
    assert NgramIndex([1, 2, 3, 4]).draft(5) == []  # no run of two tokens recurs
    single = NgramIndex([7, 1, 7])
    assert single.draft(2) == []  # a single token is not enough


@pytest.fixture(scope="module")
def fast() -> LlamaCppGenerator:
    llm = load_settings(overrides={"llm.n_ctx": 2048, "llm.prompt_lookup": 8}).llm
    return LlamaCppGenerator(llm)


@pytest.mark.parametrize("penalty", [1.0, 1.1])
def test_greedy_lookup_answers_token_for_token_as_plain_decoding(
    fast: LlamaCppGenerator, penalty: float
) -> None:
    assert isinstance(fast.llm, LookupLlama) and fast.llm.lookup == 8
    params = GenerationParams(max_tokens=40, temperature=0.0, repeat_penalty=penalty)
    before = fast.llm.stats.accepted
    for question in QUESTIONS:
        messages = [
            {"role": "system", "content": "Answer from the source, quoting it."},
            {
                "role": "user",
                "content": f"Sources:\n\n[1] (architecture.md)\n{PASSAGE}\n\nQuestion: {question}",
            },
        ]
        texts = []
        for lookup in (0, 8):  # the same model: llama-cpp-python's own decoding, then lookup
            fast.llm.lookup = lookup
            deltas = list(fast.stream(messages, params))
            texts.append(
                ("".join(d.text for d in deltas), deltas[-1].completion_tokens, deltas[-1].finish_reason)
            )
        assert texts[0] == texts[1]
    assert fast.llm.stats.accepted > before  # the drafts were used, not only proposed


def test_sampling_does_not_use_lookup(fast: LlamaCppGenerator) -> None:
    steps = fast.llm.stats.steps
    messages = [{"role": "user", "content": f"{PASSAGE[:400]}\n\nRepeat the text above."}]
    text = "".join(
        d.text for d in fast.stream(messages, GenerationParams(max_tokens=16, temperature=0.7, seed=3))
    )
    assert text and fast.llm.stats.steps == steps
