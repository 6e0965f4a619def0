"""Choosing the model per request, over a real server: /ask's `model`, the OpenAI routes'
INDEX/MODEL, /v1/models, at most llm.max_loaded models in memory."""

from __future__ import annotations

import contextlib
import itertools
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from openai import OpenAI

from ingest.worker import IngestWorker
from rag.config import load_settings
from rag.embedders.sentence_transformers import SentenceTransformerEmbedder
from rag.generators.base import Generator
from rag.generators.gguf import quantize
from rag.generators.gguf_catalog import ModelCatalog, default_model_path
from rag.generators.llama_cpp import LlamaCppGenerator
from rag.pipeline import Pipeline
from tests.api.conftest import running_server

DEFAULT = "SmolLM2-135M-Instruct.Q4_1"
OTHER = "SmolLM2-135M-Instruct.Q8_0"
QUESTION = "What does a cat eat?"


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory, embedder: SentenceTransformerEmbedder
) -> Iterator[tuple[str, Pipeline]]:
    root = tmp_path_factory.mktemp("models-api")
    models = root / "models"
    models.mkdir()
    quantize(default_model_path(), models / f"{OTHER}.gguf", "Q8_0")
    (models / "broken.gguf").write_bytes(b"GGUF\x03\x00\x00\x00")  # a header cut short
    docs = root / "docs"
    docs.mkdir()
    (docs / "cats.md").write_text("# Cats\n\nA cat eats fish and meat. Milk upsets most adult cats.\n")
    settings = load_settings(
        overrides={
            "indexes_dir": str(root / "indexes"),
            "llm.models_dir": str(models),
            "llm.n_ctx": 1024,
            "llm.max_loaded": 1,
            "llm.max_tokens": 24,
            "llm.temperature": 0.0,
            "llm.seed": 1,
        }
    )
    IngestWorker(settings, embedder).run(docs)
    generator = LlamaCppGenerator(ModelCatalog(settings.llm).settings_for(DEFAULT))
    pipeline = Pipeline(settings, embedder, generator)
    with running_server(settings, pipeline) as url:
        yield url, pipeline
    pipeline.pool.close()


def test_v1_models_lists_each_index_with_each_model(served: tuple[str, Pipeline]) -> None:
    url, _ = served
    data = httpx.get(f"{url}/v1/models").json()["data"]
    ids = [m["id"] for m in data]
    assert ids == ["default", f"default/{OTHER}"]  # the broken file is not offered
    assert data[0]["llm"] == DEFAULT and data[1]["index"] == "default"


def test_ask_picks_the_model_and_only_one_stays_loaded(served: tuple[str, Pipeline]) -> None:
    url, pipeline = served
    body = {"question": QUESTION, "model": OTHER, "sample_top_k": 1, "repeat_penalty": 1.0}
    first = httpx.post(f"{url}/ask", json=body, timeout=120).json()
    assert first["model"] == OTHER and first["answer"]
    assert pipeline.pool.loaded() == [OTHER]  # max_loaded = 1: the default was let go
    again = httpx.post(f"{url}/ask", json=body, timeout=120).json()
    assert again["answer"] == first["answer"]  # greedy: the same answer
    plain = httpx.post(f"{url}/ask", json={"question": QUESTION}, timeout=120).json()
    assert plain["model"] == DEFAULT and pipeline.pool.loaded() == [DEFAULT]


def test_openai_model_names_index_and_model(served: tuple[str, Pipeline]) -> None:
    url, pipeline = served
    client = OpenAI(base_url=f"{url}/v1", api_key="unused", timeout=120)
    messages = [{"role": "user", "content": QUESTION}]
    chosen = client.chat.completions.create(
        model=f"default/{OTHER.lower()}",
        messages=messages,
        temperature=0,
        top_p=0.9,
        seed=3,
        extra_body={"top_k": 1, "repeat_penalty": 1.0},
    )  # type: ignore[arg-type]
    assert chosen.model == f"default/{OTHER.lower()}" and chosen.choices[0].message.content
    assert pipeline.pool.loaded() == [OTHER]
    plain = client.chat.completions.create(model="default", messages=messages)  # type: ignore[arg-type]
    assert plain.choices[0].message.content and pipeline.pool.loaded() == [DEFAULT]
    stream = client.chat.completions.create(
        model=f"default/{OTHER}",
        messages=messages,  # type: ignore[arg-type]
        stream=True,
        temperature=0,
    )
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text.strip()


@pytest.mark.parametrize(
    ("route", "body", "says"),
    [
        ("/ask", {"question": QUESTION, "model": "nope"}, f"unknown model 'nope' (known: {OTHER}"),
        (
            "/v1/chat/completions",
            {"model": "default/nope", "messages": [{"role": "user", "content": "hi"}]},
            "unknown model 'nope'",
        ),
        (
            "/v1/chat/completions",
            {"model": "default/", "messages": [{"role": "user", "content": "hi"}]},
            "give INDEX or INDEX/MODEL",
        ),
    ],
)
def test_an_unknown_model_is_one_clear_error(
    served: tuple[str, Pipeline], route: str, body: dict[str, object], says: str
) -> None:
    url, _ = served
    r = httpx.post(f"{url}{route}", json=body, timeout=60)
    assert r.status_code == 400, r.text
    message = r.json()["error"]["message"]
    assert says in message and "\n" not in message


# -- switching models while answers run --------------------------------------------------


def _slowed(generator: Generator, monkeypatch: pytest.MonkeyPatch) -> None:
    """The real model, a tenth of a second a piece: its answers outlast the checks."""
    real_stream = generator.stream

    def stream(*args: Any, **kwargs: Any) -> Iterator[Any]:
        with contextlib.closing(real_stream(*args, **kwargs)) as deltas:
            for delta in deltas:
                time.sleep(0.1)
                yield delta

    monkeypatch.setattr(generator, "stream", stream)


def _signalled_prepare(pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> list[threading.Event]:
    """An event per request prepared so far (the model it needs held), set once it is."""
    real_prepare = pipeline.prepare
    done = [threading.Event() for _ in range(8)]
    count = itertools.count()

    def prepare(question: str, **kwargs: Any) -> Any:
        prepared = real_prepare(question, **kwargs)
        done[next(count)].set()
        return prepared

    monkeypatch.setattr(pipeline, "prepare", prepare)
    return done


class _Chat(threading.Thread):
    """A chat completion in a thread of its own: its status, text, finish and errors."""

    def __init__(self, url: str, model: str, stream: bool = True) -> None:
        super().__init__(daemon=True)
        self.url, self.model, self.stream = url, model, stream
        self.status, self.text, self.finish = 0, "", None
        self.errors: list[Any] = []
        self.started_answering = threading.Event()

    def run(self) -> None:
        body = {
            "model": self.model,
            "stream": self.stream,
            "messages": [{"role": "user", "content": QUESTION}],
        }
        try:
            with httpx.stream("POST", f"{self.url}/v1/chat/completions", json=body, timeout=120) as r:
                self.status = r.status_code
                if not self.stream or r.status_code != 200:
                    r.read()
                    data = r.json()
                    self.errors = [data["error"]] if "error" in data else []
                    if not self.errors:
                        self.text = data["choices"][0]["message"]["content"]
                        self.finish = data["choices"][0]["finish_reason"]
                    return
                for line in r.iter_lines():
                    if not line.startswith("data: {"):
                        continue
                    chunk = json.loads(line.removeprefix("data: "))
                    if "error" in chunk:
                        self.errors.append(chunk["error"])
                        continue
                    for choice in chunk["choices"]:
                        self.text += choice["delta"].get("content") or ""
                        self.finish = choice["finish_reason"] or self.finish
                        if self.text:
                            self.started_answering.set()
        finally:
            self.started_answering.set()

    def finished(self) -> bool:
        self.join(120)
        return not self.is_alive()


def test_switching_models_never_breaks_a_running_answer(
    served: tuple[str, Pipeline], monkeypatch: pytest.MonkeyPatch
) -> None:
    """max_loaded = 1: while one answer streams on the default model and a second one,
    prepared, waits for its turn on it, a request for another model waits for both to end
    before that model takes the default one's place."""
    url, pipeline = served
    _slowed(pipeline.generator, monkeypatch)
    prepared = _signalled_prepare(pipeline, monkeypatch)
    first = _Chat(url, "default")
    first.start()
    assert first.started_answering.wait(60)
    second = _Chat(url, "default")
    second.start()
    assert prepared[1].wait(60)  # it holds the default model, and waits for its turn
    other = _Chat(url, f"default/{OTHER}", stream=False)
    other.start()
    for chat in (first, second, other):
        assert chat.finished()
        assert chat.status == 200 and not chat.errors, (chat.model, chat.errors)
        assert chat.text.strip() and chat.finish in ("stop", "length")
    assert pipeline.pool.loaded() == [OTHER]


def test_a_model_that_cannot_have_room_in_time_is_a_clear_503(
    served: tuple[str, Pipeline], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A request for another model while every loaded one answers waits at most
    llm.model_wait, then is refused with a 503; the running answer goes on to its end."""
    url, pipeline = served
    _slowed(pipeline.generator, monkeypatch)
    monkeypatch.setattr(pipeline.pool, "wait", 0.3)
    first = _Chat(url, "default")
    first.start()
    assert first.started_answering.wait(60)
    refused = [_Chat(url, f"default/{OTHER}", stream=stream) for stream in (False, True)]
    for chat in refused:
        chat.start()
        assert chat.finished()
        assert chat.status == 503, (chat.status, chat.errors)
        assert [e["code"] for e in chat.errors] == ["models_busy"]
        assert "llm.max_loaded" in chat.errors[0]["message"]
    assert first.finished() and first.status == 200 and not first.errors
    assert first.text.strip() and first.finish in ("stop", "length")
    assert pipeline.pool.loaded() == [DEFAULT]
