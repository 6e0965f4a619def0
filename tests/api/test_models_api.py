"""Choosing the model per request, over a real server: /ask's `model`, the OpenAI routes'
INDEX/MODEL, /v1/models, at most llm.max_loaded models in memory."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from openai import OpenAI

from ingest.worker import IngestWorker
from rag.config import load_settings
from rag.embedders import SentenceTransformerEmbedder
from rag.generation import LlamaCppGenerator, default_model_path
from rag.models import ModelCatalog, quantize
from rag.pipeline import Pipeline
from tests.api.conftest import running_server

DEFAULT = "SmolLM2-135M-Instruct.Q4_1"
OTHER = "SmolLM2-135M-Instruct.Q8_0"
QUESTION = "What does a cat eat?"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, embedder: SentenceTransformerEmbedder
           ) -> Iterator[tuple[str, Pipeline]]:  # fmt: skip
    root = tmp_path_factory.mktemp("models-api")
    models = root / "models"
    models.mkdir()
    quantize(default_model_path(), models / f"{OTHER}.gguf", "Q8_0")
    (models / "broken.gguf").write_bytes(b"GGUF\x03\x00\x00\x00")  # a header cut short
    docs = root / "docs"
    docs.mkdir()
    (docs / "cats.md").write_text("# Cats\n\nA cat eats fish and meat. Milk upsets most adult cats.\n")
    settings = load_settings(overrides={
        "indexes_dir": str(root / "indexes"), "llm.models_dir": str(models), "llm.n_ctx": 1024,
        "llm.max_loaded": 1, "llm.max_tokens": 24, "llm.temperature": 0.0, "llm.seed": 1})  # fmt: skip
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
        model=f"default/{OTHER.lower()}", messages=messages, temperature=0, top_p=0.9, seed=3,
        extra_body={"top_k": 1, "repeat_penalty": 1.0})  # type: ignore[arg-type]  # fmt: skip
    assert chosen.model == f"default/{OTHER.lower()}" and chosen.choices[0].message.content
    assert pipeline.pool.loaded() == [OTHER]
    plain = client.chat.completions.create(model="default", messages=messages)  # type: ignore[arg-type]
    assert plain.choices[0].message.content and pipeline.pool.loaded() == [DEFAULT]
    stream = client.chat.completions.create(model=f"default/{OTHER}", messages=messages,  # type: ignore[arg-type]
                                            stream=True, temperature=0)  # fmt: skip
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text.strip()


@pytest.mark.parametrize(("route", "body", "says"), [
    ("/ask", {"question": QUESTION, "model": "nope"}, f"unknown model 'nope' (known: {OTHER}"),
    ("/v1/chat/completions", {"model": "default/nope", "messages": [{"role": "user",
                                                                     "content": "hi"}]},
     "unknown model 'nope'"),
    ("/v1/chat/completions", {"model": "default/", "messages": [{"role": "user", "content": "hi"}]},
     "give INDEX or INDEX/MODEL"),
])  # fmt: skip
def test_an_unknown_model_is_one_clear_error(served: tuple[str, Pipeline], route: str,
                                             body: dict[str, object], says: str) -> None:  # fmt: skip
    url, _ = served
    r = httpx.post(f"{url}{route}", json=body, timeout=60)
    assert r.status_code == 400, r.text
    message = r.json()["error"]["message"]
    assert says in message and "\n" not in message
