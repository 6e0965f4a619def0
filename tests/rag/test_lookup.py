"""Prompt lookup: the drafts it guesses, and greedy answers made of the model's own choices
on the packaged model."""

from __future__ import annotations

from functools import partial
from itertools import islice
from pathlib import Path

import numpy as np
import pytest

from rag.config import load_settings
from rag.generators.base import GenerationParams
from rag.generators.llama_cpp import LlamaCppGenerator
from rag.generators.lookup import LookupLlama, NgramIndex

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


#: How far below the best logit a kept token may be when the whole answer is read again in
#: one batch: the logits of a position read alone or in a batch differ by rounding, which on
#: some processors' kernels is enough to tip a close call (docs/models.md). A token that
#: was not the model's own choice lies several units below the best.
NUMERIC_SLACK = 1.0


def test_greedy_lookup_keeps_only_the_models_own_choices(fast: LlamaCppGenerator) -> None:
    """On every processor: each token of a looked-up answer, and of the plain one, is the
    model's greedy choice up to rounding, and the drafts were used. Whether the two answers
    are identical token for token depends on the processor's kernels, so it is not asserted."""
    llm = fast.llm
    assert isinstance(llm, LookupLlama) and llm.lookup == 8
    before = llm.stats.accepted
    for question in QUESTIONS:
        prompt = llm.tokenize(
            f"Answer from the source, quoting it.\n\nSources:\n\n[1] (architecture.md)\n{PASSAGE}\n\n"
            f"Question: {question}\nAnswer:".encode()
        )
        for penalty in (1.0, 1.1):
            for lookup in (0, 8):  # llama-cpp-python's own decoding, then lookup
                llm.lookup = lookup
                made = fast.run(partial(_greedy_answer, llm, prompt, penalty))
                gaps = fast.run(partial(_greedy_gaps, llm, prompt, made, penalty))
                assert max(gaps) <= NUMERIC_SLACK, (lookup, penalty, question, gaps)
    assert llm.stats.accepted > before  # the drafts were used, not only proposed


def _greedy_answer(llm: LookupLlama, prompt: list[int], penalty: float) -> list[int]:
    tokens = llm.generate(prompt, temp=0.0, repeat_penalty=penalty)
    made = list(islice(tokens, 40))
    tokens.close()
    return made


def _greedy_gaps(llm: LookupLlama, prompt: list[int], made: list[int], penalty: float) -> list[float]:
    """For each token of `made`, how far its logit lies below the best one after the repeat
    penalty (llama.cpp's: over the last tokens generated), the answer read again in one
    batch after the prompt (still in llama.cpp's cache from the generation)."""
    past = len(prompt) - 1
    batch = [prompt[-1], *made[:-1]]
    llm._ctx.kv_cache_seq_rm(-1, past, -1)
    llm._batch.set_batch(batch=batch, n_past=past, logits_all=True)
    llm._ctx.decode(llm._batch)
    llm.input_ids[past : past + len(batch)] = batch  # the cache as it is now, for the next prompt
    llm.n_tokens = past + len(batch)
    gaps = []
    for row, token in enumerate(made):
        logits = np.ctypeslib.as_array(llm._ctx.get_logits_ith(row), shape=(llm.n_vocab(),)).copy()
        recent = made[max(0, row - llm.last_n_tokens_size) : row]
        if penalty != 1.0 and recent:
            ids = np.fromiter(set(recent), dtype=np.intc)
            seen = logits[ids]
            logits[ids] = np.where(seen <= 0, seen * np.float32(penalty), seen / np.float32(penalty))
        gaps.append(float(logits.max() - logits[token]))
    return gaps


def test_sampling_does_not_use_lookup(fast: LlamaCppGenerator) -> None:
    steps = fast.llm.stats.steps
    messages = [{"role": "user", "content": f"{PASSAGE[:400]}\n\nRepeat the text above."}]
    text = "".join(
        d.text for d in fast.stream(messages, GenerationParams(max_tokens=16, temperature=0.7, seed=3))
    )
    assert text and fast.llm.stats.steps == steps
