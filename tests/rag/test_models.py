"""The model catalog: GGUF headers read without loading weights, names, RAM estimates."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from rag.config import LlmSettings, load_settings
from rag.errors import ConfigError, ModelsBusyError
from rag.generators.base import GenerationParams, Generator
from rag.generators.gguf import MIB, GGUFError, quantize, quantized_name, read_gguf
from rag.generators.gguf_catalog import ModelCatalog, default_model_path
from rag.generators.llama_cpp import LlamaCppGenerator
from rag.generators.pool import ModelPool
from rag.pipeline import DoneEvent, Pipeline
from tests.fakes import EchoGenerator

DEFAULT = "SmolLM2-135M-Instruct.Q4_1"


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models folder: the packaged model requantized to Q8_0, and files that are not models."""
    folder = tmp_path_factory.mktemp("models")
    quantize(default_model_path(), folder / f"{quantized_name(DEFAULT, 'Q8_0')}.gguf", "Q8_0")
    (folder / "notes.gguf").write_text("not a model\n")
    head = default_model_path().read_bytes()[:3_000_000]  # header whole, weights cut short
    (folder / "cut.gguf").write_bytes(head)
    (folder / "header-cut.gguf").write_bytes(head[:5000])
    return folder


def _llm(models_dir: Path, **extra: object) -> LlmSettings:
    return load_settings(
        overrides={"llm.models_dir": str(models_dir), **{f"llm.{k}": v for k, v in extra.items()}}
    ).llm


def test_the_packaged_model_is_described_from_its_header() -> None:
    info = read_gguf(default_model_path())
    assert info.architecture == "llama" and info.quantization == "Q4_1"
    assert 130e6 < info.parameters < 140e6  # SmolLM2-135M
    assert info.context_length == 8192 and info.chat_template
    assert info.licence == "apache-2.0"
    assert (info.n_layer, info.n_head, info.n_head_kv, info.head_dim) == (30, 9, 3, 64)
    assert 0.9 * info.file_size < info.weights_bytes < info.file_size
    # KV cache: 2 (K and V) x 30 layers x 3 KV heads x 64 dims x 2 bytes, per token.
    assert info.kv_cache_bytes(1000) == 2 * 30 * 1000 * 3 * 64 * 2


def test_a_requantized_copy_is_another_model(models_dir: Path) -> None:
    info = read_gguf(models_dir / "SmolLM2-135M-Instruct.Q8_0.gguf")
    packaged = read_gguf(default_model_path())
    assert info.quantization == "Q8_0" and info.parameters == packaged.parameters
    assert info.file_size > packaged.file_size  # 8 bits a weight against about 4.5


@pytest.mark.parametrize(
    ("name", "says"), [("notes", "not a GGUF file"), ("cut", "truncated"), ("header-cut", "truncated")]
)
def test_a_bad_file_is_one_clear_line(models_dir: Path, name: str, says: str) -> None:
    with pytest.raises(GGUFError) as caught:
        read_gguf(models_dir / f"{name}.gguf")
    assert says in str(caught.value) and "\n" not in str(caught.value)


def test_the_catalog_lists_the_folder_and_the_packaged_model(models_dir: Path) -> None:
    catalog = ModelCatalog(_llm(models_dir))
    found = catalog.list()
    names = [i.name for i in found if not isinstance(i, GGUFError)]
    assert names == ["SmolLM2-135M-Instruct.Q8_0", DEFAULT]
    assert sum(isinstance(i, GGUFError) for i in found) == 3
    assert catalog.default_name() == DEFAULT
    assert catalog.resolve("smollm2-135m-instruct.q8_0.gguf") == "SmolLM2-135M-Instruct.Q8_0"
    with pytest.raises(ConfigError, match="unknown model 'nope' .*SmolLM2-135M-Instruct.Q8_0"):
        catalog.resolve("nope")
    chosen = ModelCatalog(_llm(models_dir, model="SmolLM2-135M-Instruct.q8_0"))
    assert chosen.default_name() == "SmolLM2-135M-Instruct.Q8_0"


def test_n_ctx_is_what_fits_the_ram_budget(models_dir: Path) -> None:
    info = read_gguf(default_model_path())
    assert ModelCatalog(_llm(models_dir)).n_ctx(info) == 8192  # the trained context fits 2 GiB
    small = ModelCatalog(_llm(models_dir, ram_budget_mb=200)).n_ctx(info)
    assert 512 <= small < 8192 and info.ram_bytes(small) <= 200 * MIB < info.ram_bytes(small + 256)
    assert ModelCatalog(_llm(models_dir, n_ctx=1024, ram_budget_mb=200)).n_ctx(info) == 1024
    settings = ModelCatalog(_llm(models_dir, ram_budget_mb=200)).settings_for(DEFAULT)
    assert settings.n_ctx == small and settings.model_path == default_model_path()


MEASURE = """
import json, sys, psutil, llama_cpp
from rag.generators.gguf_catalog import default_model_path
before = psutil.Process().memory_info().rss
llm = llama_cpp.Llama(model_path=str(default_model_path()), n_ctx=int(sys.argv[1]), n_threads=1,
                      verbose=False)
llm.create_completion("The cat sat on the mat. " * 10, max_tokens=4, temperature=0)
print(json.dumps(psutil.Process().memory_info().rss - before))
"""


def test_the_ram_estimate_matches_a_measured_load() -> None:
    """The packaged model's resident memory, loaded and run at n_ctx 2048, in a fresh process."""
    n_ctx = 2048
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, str(n_ctx)], capture_output=True, text=True, timeout=120, check=True
    )
    measured = json.loads(done.stdout)
    estimate = read_gguf(default_model_path()).ram_bytes(n_ctx)
    assert 0.8 * estimate < measured < 1.2 * estimate, (measured / MIB, estimate / MIB)


class _Counted(EchoGenerator):
    def __init__(self, name: str, closed: list[str]) -> None:
        super().__init__()
        self.name, self._closed = name, closed

    def close(self) -> None:
        self._closed.append(self.name)


def test_the_pool_keeps_the_most_recently_used() -> None:
    closed: list[str] = []
    loads: list[str] = []

    def load(name: str) -> Generator:
        loads.append(name)
        return _Counted(name, closed)

    pool = ModelPool(load, max_loaded=2)
    pool.get("a"), pool.get("b"), pool.get("a"), pool.get("c")
    assert pool.loaded() == ["a", "c"] and closed == ["b"] and loads == ["a", "b", "c"]
    threads = [threading.Thread(target=pool.get, args=("d",)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert loads.count("d") == 1 and pool.loaded() == ["c", "d"]
    pool.close()
    assert pool.loaded() == [] and sorted(closed) == ["a", "b", "c", "d"]


def test_a_held_model_is_never_unloaded() -> None:
    """Leases count holders: only a model no one holds makes room for another; a request
    for another model waits while all are held, or is refused after `wait` seconds."""
    closed: list[str] = []
    pool = ModelPool(lambda name: _Counted(name, closed), max_loaded=1, wait=0.2)
    first = pool.lease("a")
    again = pool.lease("a")  # a second holder of the same model
    with pytest.raises(ModelsBusyError, match="llm.max_loaded"):
        pool.lease("b")
    assert closed == [] and pool.loaded() == ["a"] and pool.holders("a") == 2
    first.release()
    first.release()  # once only
    assert pool.holders("a") == 1
    got: list[Generator] = []
    waiting = threading.Thread(target=lambda: got.append(pool.lease("b", wait=10).generator))
    waiting.start()
    time.sleep(0.2)
    assert got == [] and closed == []  # it waits for the last holder of "a"
    again.release()
    waiting.join(10)
    assert [g.name for g in got] == ["b"] and closed == ["a"] and pool.loaded() == ["b"]
    assert pool.holders("b") == 1
    pool.close()


def test_a_real_model_unloads_and_another_loads(models_dir: Path) -> None:
    catalog = ModelCatalog(_llm(models_dir, n_ctx=512))
    pool = ModelPool(lambda name: LlamaCppGenerator(catalog.settings_for(name)), max_loaded=1)
    first = pool.get(DEFAULT)
    assert first.name == DEFAULT and first.n_ctx == 512
    second = pool.get("SmolLM2-135M-Instruct.Q8_0")
    assert pool.loaded() == ["SmolLM2-135M-Instruct.Q8_0"]
    assert isinstance(first, LlamaCppGenerator) and first.llm is None  # its weights let go
    messages = [{"role": "user", "content": "Say hello."}]
    params = load_settings(overrides={"llm.max_tokens": 8, "llm.temperature": 0.0})
    text = "".join(d.text for d in second.stream(messages, GenerationParams.from_settings(params.llm)))
    assert text.strip()
    pool.close()


def test_a_follow_up_prompt_begins_with_the_tokens_llama_cpp_holds(pipeline: Pipeline) -> None:
    """The previous turn is laid out as the model read and wrote it, so that llama.cpp only
    reads the new passages and question of a follow-up."""
    generator = pipeline.generator
    assert isinstance(generator, LlamaCppGenerator)
    params = GenerationParams(max_tokens=24, temperature=0.0, top_k=1, seed=1)
    first = pipeline.prepare("What does a cat eat?", params=params)
    answer = next(e.answer for e in pipeline.generate(first) if isinstance(e, DoneEvent))
    held = generator.run(lambda: list(generator.llm._input_ids[: generator.llm.n_tokens]))
    history = [
        {"role": "user", "content": "What does a cat eat?"},
        {"role": "assistant", "content": answer.text},
    ]
    follow = pipeline.prepare("And how long do they sleep?", history=history, params=params)
    tokens = generator.render(follow.prompt.messages).tokens
    common = next(
        (i for i, (a, b) in enumerate(zip(held, tokens, strict=False)) if a != b), min(len(held), len(tokens))
    )
    assert common >= len(generator.render(first.prompt.messages).tokens)  # the whole first prompt
    assert common >= 0.9 * len(held)  # and (about) all of its answer
    # A history this pipeline did not answer is read as given.
    other = pipeline.prepare(
        "And how long do they sleep?",
        history=[history[0], {"role": "assistant", "content": "Fish."}],
        params=params,
    )
    assert other.prompt.messages[1]["content"] == "What does a cat eat?"
