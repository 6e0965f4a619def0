from __future__ import annotations

import pytest

from rag.errors import IndexNotFoundError
from rag.generation import GenerationParams
from rag.pipeline import NOTHING_FOUND, DoneEvent, Pipeline, TokenEvent
from rag.retrieval import contextualize

PARAMS = GenerationParams(max_tokens=48, temperature=0.0, seed=1)


def test_ask_answers_from_the_right_document(pipeline: Pipeline) -> None:
    answer = pipeline.ask("What does a cat eat?", params=PARAMS)
    assert answer.found_context and answer.text
    assert answer.sources[0].path.endswith("cats.md")
    assert answer.sources[0].heading == "Cats > Food"
    assert answer.usage.prompt_tokens > 0 and 0 < answer.usage.completion_tokens <= 48
    assert {"retrieve", "prompt", "generate"} <= answer.timings.keys()


def test_stream_yields_tokens_then_the_answer(pipeline: Pipeline) -> None:
    events = list(pipeline.stream("Where is Mount Etna?", params=PARAMS))
    tokens = [e.text for e in events if isinstance(e, TokenEvent)]
    done = events[-1]
    assert isinstance(done, DoneEvent) and len(tokens) > 1
    assert "".join(tokens).strip() == done.answer.text
    assert done.answer.sources[0].path.endswith("volcano.txt")


def test_nothing_relevant_says_so(pipeline: Pipeline) -> None:
    answer = pipeline.ask("Quantum chromodynamics of gluons?", min_score=0.9, params=PARAMS)
    assert answer.text == NOTHING_FOUND and not answer.sources and not answer.found_context


def test_near_duplicates_are_dropped(pipeline: Pipeline) -> None:
    index = pipeline.index()
    hits = pipeline.retriever.retrieve(index, "cats", top_k=10, min_score=-1)
    texts = [h.chunk.text for h in hits]
    assert len(texts) == len(set(texts))
    doubled = hits + hits
    assert len(pipeline.retriever.distinct(index, doubled)) == len(hits)


def test_missing_index(pipeline: Pipeline) -> None:
    with pytest.raises(IndexNotFoundError, match="rag ingest"):
        pipeline.ask("x", index="nope")


def test_follow_up_questions_carry_the_previous_turn() -> None:
    history = [{"role": "user", "content": "Tell me about Mount Etna."},
               {"role": "assistant", "content": "It is a volcano."}]  # fmt: skip
    assert contextualize("How high is it?", history).startswith("Tell me about Mount Etna.")
    standalone = "What temperature should bread be baked at in an oven?"
    assert contextualize(standalone, history) == standalone
    assert contextualize("Why?", []) == "Why?"
