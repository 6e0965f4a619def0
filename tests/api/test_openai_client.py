"""A real server on 127.0.0.1 with the real models, driven by the official openai client."""

from __future__ import annotations

import asyncio
import time

import httpx
import openai
import pytest

from rag.pipeline import Pipeline


@pytest.mark.backends
def test_sync_completion(base_url: str) -> None:
    client = openai.OpenAI(base_url=base_url + "/v1", api_key="unused")
    reply = client.chat.completions.create(
        model="default",
        max_tokens=24,
        seed=1,
        messages=[{"role": "user", "content": "What does a cat eat?"}],
    )
    assert reply.choices[0].message.content
    assert reply.choices[0].finish_reason in ("stop", "length")
    assert reply.usage is not None and reply.usage.completion_tokens <= 24
    assert reply.model_extra is not None and reply.model_extra["sources"]


@pytest.mark.backends
def test_streaming_with_usage(base_url: str) -> None:
    client = openai.OpenAI(base_url=base_url + "/v1", api_key="unused")
    stream = client.chat.completions.create(
        model="default",
        max_tokens=24,
        stream=True,
        stream_options={"include_usage": True},
        messages=[{"role": "user", "content": "Where is Mount Etna?"}],
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.strip()
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    assert any(c.choices and c.choices[0].finish_reason for c in chunks)


@pytest.mark.backends
def test_async_client_and_errors(base_url: str) -> None:
    async def run() -> None:
        client = openai.AsyncOpenAI(base_url=base_url + "/v1", api_key="unused")
        reply = await client.chat.completions.create(
            model="default",
            max_tokens=16,
            messages=[{"role": "user", "content": "How is bread baked?"}],
        )
        assert reply.choices[0].message.content
        with pytest.raises(openai.NotFoundError):
            await client.chat.completions.create(model="missing", messages=[{"role": "user", "content": "x"}])
        models = await client.models.list()
        assert [m.id for m in models.data] == ["default"]
        emb = await client.embeddings.create(model="default", input="cats")
        assert len(emb.data[0].embedding) == 384

    asyncio.run(run())


@pytest.mark.backends(stores=["local"])  # generation stops in the model's backend, whatever the store
def test_disconnect_stops_generation(base_url: str, pipeline: Pipeline) -> None:
    def short() -> float:
        start = time.time()
        r = httpx.post(base_url + "/ask", json={"question": "Where is Etna?", "max_tokens": 8}, timeout=120)
        assert r.status_code == 200
        return time.time() - start

    def long(leave: bool) -> float:
        """A long answer (300 tokens: the story goes on past them), read whole or left
        after its first token; the time it was read for."""
        start = time.time()
        with httpx.stream("POST", base_url + "/ask", json=body, timeout=120) as r:
            for line in r.iter_lines():
                if leave and line.startswith("event: token"):
                    break
        return time.time() - start

    pipeline.settings.llm.max_tokens = 1500
    body = {
        "question": "Write a very long story about cats, at least 2000 words.",
        "stream": True,
        "max_tokens": 300,
        "temperature": 0.0,
    }
    short()  # the first request of a server warms it up
    alone, whole = short(), long(leave=False)
    long(leave=True)
    time.sleep(1.0)
    # The model is free again at once: the short request does not wait for the rest of the
    # long answer (were it still generated, most of `whole` would be added).
    assert short() < alone + max(1.0, (whole - 1.0) / 2)
