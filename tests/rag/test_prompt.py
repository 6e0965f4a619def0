from __future__ import annotations

from pathlib import Path

import pytest

from ingest.worker import IngestWorker
from rag.config import Settings, load_settings
from rag.embedders import SentenceTransformerEmbedder
from rag.errors import ContextLengthError
from rag.generation import GenerationParams, LlamaCppGenerator
from rag.pipeline import Pipeline
from rag.prompt import PromptBuilder
from rag.types import Chunk, Hit


@pytest.fixture(scope="module", params=[512, 1024])
def small_generator(request: pytest.FixtureRequest) -> LlamaCppGenerator:
    return LlamaCppGenerator(load_settings(overrides={"llm.n_ctx": request.param}).llm)


def _hits(n: int) -> list[Hit]:
    text = ("The river Seine flows through Paris. It is 777 kilometres long. "
            "Barges carry sand and grain on it. ") * 4  # fmt: skip
    return [Hit(i, Chunk(text, f"/d/file{i}.txt", 0), 0.9 - i / 100) for i in range(n)]


def test_prompt_fits_and_best_sources_come_first(small_generator: LlamaCppGenerator) -> None:
    builder = PromptBuilder(small_generator)
    built = builder.build("How long is the Seine?", _hits(50), max_tokens=128)
    assert built.n_tokens + 128 <= small_generator.n_ctx
    assert 0 < len(built.sources) < 50
    assert [s.number for s in built.sources] == list(range(1, len(built.sources) + 1))
    assert built.sources[0].path == "/d/file0.txt"
    # The count is the model's own: re-rendering the messages gives the same tokens.
    assert small_generator.render(built.messages).tokens == built.rendered.tokens


def test_last_source_is_cut_at_a_sentence(small_generator: LlamaCppGenerator) -> None:
    built = PromptBuilder(small_generator).build("Seine?", _hits(50), max_tokens=100)
    content = built.messages[-1]["content"]
    last_block = content.split("\n\n[")[-1].split("\n\nQuestion:")[0]
    assert last_block.rstrip().endswith(".")


def test_question_too_long_is_a_clear_error(small_generator: LlamaCppGenerator) -> None:
    question = "why " * 2000
    with pytest.raises(ContextLengthError) as info:
        PromptBuilder(small_generator).build(question, _hits(3), max_tokens=64)
    assert info.value.tokens > info.value.limit
    assert str(info.value.limit) in str(info.value)


def test_history_shares_the_budget_oldest_dropped(small_generator: LlamaCppGenerator) -> None:
    history = []
    for i in range(30):
        history += [{"role": "user", "content": f"Old question {i} about barges and sand?"},
                    {"role": "assistant", "content": f"Old answer {i}: barges carry sand."}]
    built = PromptBuilder(small_generator).build("And grain?", _hits(10), history,
                                                 max_tokens=64)  # fmt: skip
    assert built.n_tokens + 64 <= small_generator.n_ctx
    assert 0 < built.history_turns < 30
    kept = [m["content"] for m in built.messages if m["role"] == "user"][:-1]
    assert kept[-1].startswith("Old question 29")  # the newest turns stay


def test_llama_never_sees_an_oversized_prompt(
    small_generator: LlamaCppGenerator,
    embedder: SentenceTransformerEmbedder,
    tmp_path: Path,
) -> None:
    settings: Settings = load_settings(overrides={
        "indexes_dir": str(tmp_path / "ix"), "llm.n_ctx": small_generator.n_ctx,
        "retrieval.top_k": 50, "retrieval.min_score": -1, "llm.max_tokens": 16})  # fmt: skip
    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(60):
        (docs / f"d{i}.txt").write_text(f"Fact {i}: the Seine carries cargo number {i}. " * 12)
    IngestWorker(settings, embedder).run(docs)
    seen: list[int] = []
    real_stream = small_generator.stream

    def checked(prompt, params):  # type: ignore[no-untyped-def]
        seen.append(len(prompt.tokens))
        assert len(prompt.tokens) + params.max_tokens <= small_generator.n_ctx
        return real_stream(prompt, params)

    small_generator.stream = checked  # type: ignore[method-assign]
    try:
        pipeline = Pipeline(settings, embedder, small_generator)
        answer = pipeline.ask("What cargo does the Seine carry?",
                              params=GenerationParams(max_tokens=16, seed=1))  # fmt: skip
    finally:
        del small_generator.stream
    assert seen and seen[0] > small_generator.n_ctx // 2  # the budget was really filled
    assert answer.usage.prompt_tokens == seen[0]
    assert answer.usage.completion_tokens <= 16
