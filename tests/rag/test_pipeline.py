from __future__ import annotations

from pathlib import Path

import pytest

from ingest.worker import IngestWorker
from rag.config import Settings
from rag.embedders.sentence_transformers import SentenceTransformerEmbedder
from rag.errors import IndexNotFoundError
from rag.followup import standalone_query
from rag.generators.base import GenerationParams
from rag.grounding.attribution import strip_citations
from rag.pipeline import DoneEvent, Pipeline, TokenEvent
from rag.replies import NOT_IN_DOCUMENTS, NOTHING_FOUND
from rag.retrievers.base import distinct
from rag.store import make_catalog
from tests.fakes import EchoGenerator, WordOverlapRetriever

PARAMS = GenerationParams(max_tokens=48, temperature=0.0, seed=1)


def test_ask_answers_from_the_right_document(pipeline: Pipeline) -> None:
    answer = pipeline.ask("What does a cat eat?", params=PARAMS)
    assert answer.found_context and answer.text
    # Retrieval: the passage on food first, by a margin no processor's rounding closes (both
    # halves of the hybrid put it first; its fused score is 1.0 against about 0.49).
    ranked = sorted(answer.sources, key=lambda s: s.score, reverse=True)
    assert ranked[0].path.endswith("cats.md") and ranked[0].heading == "Cats > Food"
    assert len(ranked) == 1 or ranked[0].score - ranked[1].score > 0.2
    # The answer: whichever passage the model's words are attributed to (the sources are
    # ordered by citation, and the small model's wording varies with the processor), it
    # is one of the right document's.
    assert all(s.path.endswith("cats.md") for s in answer.sources if s.cited)
    assert answer.usage.prompt_tokens > 0 and 0 < answer.usage.completion_tokens <= 48
    assert {"retrieve", "prompt", "generate"} <= answer.timings.keys()


def test_stream_yields_tokens_then_the_answer(pipeline: Pipeline) -> None:
    events = list(pipeline.stream("Where is Mount Etna?", params=PARAMS))
    tokens = [e.text for e in events if isinstance(e, TokenEvent)]
    done = events[-1]
    assert isinstance(done, DoneEvent) and len(tokens) > 1
    if done.answer.abstained:  # nothing the model wrote was backed: it says so instead
        assert done.answer.text == NOT_IN_DOCUMENTS["en"]
    else:  # what streamed is the model's draft, cited afresh from the attribution
        assert strip_citations("".join(tokens)).strip() == strip_citations(done.answer.draft).strip()
    assert done.answer.sources[0].path.endswith("volcano.txt")


def test_nothing_relevant_says_so(pipeline: Pipeline) -> None:
    answer = pipeline.ask("Quantum chromodynamics of gluons?", min_score=0.9, params=PARAMS)
    assert answer.text == NOTHING_FOUND["en"] and answer.abstained and not answer.found_context
    assert answer.sources and not any(s.cited for s in answer.sources)  # the closest, to see also


def test_near_duplicates_are_dropped(pipeline: Pipeline) -> None:
    index = pipeline.index()
    hits = pipeline.retriever.retrieve(index, "cats", 10, min_score=-1)
    texts = [h.chunk.text for h in hits]
    assert len(texts) == len(set(texts))
    doubled = hits + hits
    assert len(distinct(index, doubled, pipeline.settings.retrieval.dedup_threshold)) == len(hits)


def test_missing_index(pipeline: Pipeline) -> None:
    with pytest.raises(IndexNotFoundError, match="rag ingest"):
        pipeline.ask("x", index="nope")


def test_follow_up_questions_carry_the_topic() -> None:
    history = [
        {"role": "user", "content": "Tell me about Mount Etna."},
        {"role": "assistant", "content": "It is a volcano."},
    ]
    assert standalone_query("How high is it?", history) == "How high is it? (mount etna)"
    standalone = "What temperature should bread be baked at in an oven?"
    assert standalone_query(standalone, history) == standalone
    assert standalone_query("Why?", []) == "Why?"


def test_any_generator_and_retriever_plug_in(
    pipeline: Pipeline, settings: Settings, embedder: SentenceTransformerEmbedder
) -> None:
    """The pipeline knows its parts only by their roles: a fake generator and retriever
    answer through the same retrieval, prompt, citation and source handling."""
    fake = Pipeline(settings, embedder, EchoGenerator(), WordOverlapRetriever())
    answer = fake.ask("Which volcano is in Sicily?", params=PARAMS)
    assert answer.draft.startswith("According to [1], Mount Etna")  # what the fake wrote
    assert "Mount Etna" in answer.text and "[1]" in answer.text  # grounded in its passage
    assert answer.sources[0].cited and answer.sources[0].path.endswith("volcano.txt")
    assert answer.usage.prompt_tokens == fake.prepare("Which volcano is in Sicily?").prompt.n_tokens


def test_the_prompt_generated_from_is_the_one_counted(pipeline: Pipeline) -> None:
    seen: list[list[dict[str, str]]] = []
    real = pipeline.generator.stream

    def spy(messages, params):  # type: ignore[no-untyped-def]
        seen.append(list(messages))
        return real(messages, params)

    pipeline.generator.stream = spy  # type: ignore[method-assign]
    try:
        prepared = pipeline.prepare("What does a cat eat?", params=PARAMS)
        answer = [e for e in pipeline.generate(prepared) if isinstance(e, DoneEvent)][0].answer
    finally:
        del pipeline.generator.stream
    assert seen == [prepared.prompt.messages]
    assert answer.usage.prompt_tokens == pipeline.generator.count_tokens(seen[0])


def test_a_conversation_is_replayed_only_against_the_index_that_answered_it(
    settings: Settings,
    embedder: SentenceTransformerEmbedder,
    worker: IngestWorker,
    corpus: Path,
    tmp_path: Path,
) -> None:
    """The turns a pipeline remembers (each question as prompted, with its passages) are
    its own for one index as it was: the same history sent against another index, or the
    same name deleted and created again, is read as the client gave it."""
    other = tmp_path / "other"
    other.mkdir()
    (other / "comet.txt").write_text("The comet Zarvolek returns every 41 years.\n")
    worker.run(corpus, "pets")
    worker.run(other, "sky")
    pipeline = Pipeline(settings, embedder, EchoGenerator(), WordOverlapRetriever())
    question = "What does a cat eat?"
    answer = pipeline.ask(question, index="pets", params=PARAMS)
    history = [{"role": "user", "content": question}, {"role": "assistant", "content": answer.text}]

    def first_turn(index: str) -> str:
        prepared = pipeline.prepare("And the comet?", history=history, index=index, params=PARAMS)
        return prepared.prompt.messages[1]["content"]

    assert "fish and meat" in first_turn("pets")  # replayed as prompted, passages and all
    assert first_turn("sky") == question  # another index: the client's text only
    make_catalog(settings).delete("pets")
    worker.run(other, "pets")
    assert first_turn("pets") == question  # a new index of the same name


def test_an_index_of_the_multilingual_model_is_grounded_with_that_model_and_its_thresholds(
    settings: Settings, embedder: SentenceTransformerEmbedder, generator: object, corpus: Path
) -> None:
    """Answers from an index the multilingual model built are attributed by its meaning and
    abstain by the thresholds calibrated for it, unless the configuration sets them."""
    from rag.config import MULTILINGUAL_THRESHOLDS
    from rag.embedders import make_embedder

    multi = settings.model_copy(
        update={"embedder": settings.embedder.model_copy(update={"model": "multilingual-e5-small-q4"})}
    )
    IngestWorker(multi, make_embedder(multi.embedder)).run(corpus)
    pipeline = Pipeline(settings, embedder, generator)  # type: ignore[arg-type]
    store = pipeline.index()
    attributor, answer = pipeline.grounding_for(pipeline.embedder_for(store))
    assert attributor is not pipeline.attributor and attributor.embedder is pipeline.embedder_for(store)
    assert answer.min_fit == MULTILINGUAL_THRESHOLDS["min_fit"]
    assert answer.min_presence == MULTILINGUAL_THRESHOLDS["min_presence"]
    assert pipeline.grounding_for(embedder) == (pipeline.attributor, settings.answer)
    found = pipeline.ask("Que mange un chat ?", params=PARAMS)
    assert found.sources[0].path.endswith("cats.md")
    chosen = settings.model_copy(
        update={"answer": settings.answer.model_copy(update={"min_fit": {"en": 0.5}})}
    )
    _, kept = Pipeline(chosen, embedder, generator).grounding_for(pipeline.embedder_for(store))  # type: ignore[arg-type]
    assert kept.min_fit == {"en": 0.5} and kept.min_presence == MULTILINGUAL_THRESHOLDS["min_presence"]
