"""The generator contract, run against every implementation (llama.cpp and the fake)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from rag.config import LlmSettings
from rag.errors import ContextLengthError
from rag.generators import make_generator
from rag.generators.base import GenerationParams, Generator
from rag.generators.llama_cpp import LlamaCppGenerator
from rag.threads import relay
from tests.fakes import EchoGenerator
from tests.llmserver import llm_server, openai_generator  # noqa: F401  (fixtures)

PARAMS = GenerationParams(max_tokens=24, temperature=0.0, seed=1)
MESSAGES = [
    {"role": "system", "content": "Answer from the numbered sources and cite them like [1]."},
    {
        "role": "user",
        "content": "Sources:\n\n[1] (cats.md)\nCats sleep about sixteen hours a day."
        "\n\nQuestion: How long do cats sleep?",
    },
]


@pytest.fixture(params=["llama-cpp", "openai", "echo"])
def any_generator(request: pytest.FixtureRequest) -> Generator:
    if request.param == "echo":
        return EchoGenerator()
    if request.param == "openai":  # the packaged model behind llama_cpp.server
        served: Generator = request.getfixturevalue("openai_generator")
        return served
    generator: Generator = request.getfixturevalue("generator")
    return generator


def _text(generator: Generator, params: GenerationParams = PARAMS) -> str:
    return "".join(d.text for d in generator.stream(MESSAGES, params))


def test_counts_are_exact_and_grow_with_the_messages(any_generator: Generator) -> None:
    n = any_generator.count_tokens(MESSAGES)
    assert 0 < n < any_generator.n_ctx
    assert any_generator.count_tokens(MESSAGES) == n
    assert any_generator.count_tokens(MESSAGES[:1]) < n
    longer = [*MESSAGES[:-1], {"role": "user", "content": MESSAGES[-1]["content"] + " And dogs?"}]
    assert any_generator.count_tokens(longer) > n


def test_stream_ends_with_a_reason_within_max_tokens(any_generator: Generator) -> None:
    deltas = list(any_generator.stream(MESSAGES, PARAMS))
    assert "".join(d.text for d in deltas).strip()
    assert all(d.finish_reason is None for d in deltas[:-1])
    assert deltas[-1].finish_reason in ("stop", "length")
    assert 0 < deltas[-1].completion_tokens <= PARAMS.max_tokens


def test_max_tokens_cuts_the_answer(any_generator: Generator) -> None:
    deltas = list(any_generator.stream(MESSAGES, GenerationParams(max_tokens=3, temperature=0.0, seed=1)))
    assert deltas[-1].finish_reason == "length" and deltas[-1].completion_tokens <= 3


def test_same_seed_same_answer(any_generator: Generator) -> None:
    assert _text(any_generator) == _text(any_generator)


def test_stop_strings_end_the_answer_before_them(any_generator: Generator) -> None:
    full = _text(any_generator)
    words = full.split()
    assert len(words) > 3
    stop = " " + words[2]
    deltas = list(any_generator.stream(MESSAGES, PARAMS.with_overrides(stop=[stop])))
    assert "".join(d.text for d in deltas) == full[: full.index(stop)]
    assert deltas[-1].finish_reason == "stop"


def test_an_oversized_prompt_is_refused(any_generator: Generator) -> None:
    huge = [{"role": "user", "content": "word " * (any_generator.n_ctx * 2)}]
    assert any_generator.count_tokens(huge) > any_generator.n_ctx
    with pytest.raises(ContextLengthError):
        list(any_generator.stream(huge, PARAMS))


def test_stopping_early_frees_the_generator(any_generator: Generator) -> None:
    stream = any_generator.stream(MESSAGES, PARAMS)
    next(stream)
    stream.close()
    assert _text(any_generator) == _text(any_generator)


def test_streams_alike_from_any_thread(any_generator: Generator) -> None:
    expected = _text(any_generator)
    with ThreadPoolExecutor(2) as pool:
        assert [f.result() for f in [pool.submit(_text, any_generator) for _ in range(2)]] == [
            expected,
            expected,
        ]
    if any_generator.executor is not None:  # the API streams on the generator's own thread
        assert (
            "".join(
                d.text for d in relay(lambda: any_generator.stream(MESSAGES, PARAMS), any_generator.executor)
            )
            == expected
        )


def test_identity(any_generator: Generator) -> None:
    assert isinstance(any_generator.kind, str) and any_generator.kind
    assert isinstance(any_generator.name, str) and any_generator.name


# -- llama.cpp ------------------------------------------------------------------------


def test_llama_counts_with_its_own_template(generator: LlamaCppGenerator) -> None:
    rendered = generator.render(MESSAGES)
    assert generator.count_tokens(MESSAGES) == len(rendered.tokens)
    text = generator.llm.detokenize(rendered.tokens, special=True).decode()
    assert "<|im_start|>user" in text and text.rstrip().endswith("<|im_start|>assistant")
    assert "<|im_end|>" in rendered.stop


def test_llama_renders_a_counted_prompt_once(
    generator: LlamaCppGenerator, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    real = generator._render

    def spy(messages):  # type: ignore[no-untyped-def]
        calls.append(len(messages))
        return real(messages)

    monkeypatch.setattr(generator, "_render", spy)
    messages = [*MESSAGES[:-1], {"role": "user", "content": "Once only: how long do cats sleep?"}]
    generator.count_tokens(messages)
    list(generator.stream(messages, PARAMS))
    assert calls == [2]


def test_llama_generates_on_its_own_thread(
    generator: LlamaCppGenerator, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: list[str] = []
    real = generator.llm.create_completion

    def spy(*args, **kwargs):  # type: ignore[no-untyped-def]
        threads.append(threading.current_thread().name)
        return real(*args, **kwargs)

    monkeypatch.setattr(generator.llm, "create_completion", spy)
    list(generator.stream(MESSAGES, PARAMS))
    assert threads and threads[0].startswith("llama.cpp")


def test_factory_builds_the_configured_kind() -> None:
    assert LlmSettings().kind == "llama-cpp"
    generator = make_generator(LlmSettings(n_ctx=256))
    assert isinstance(generator, LlamaCppGenerator) and generator.n_ctx == 256
