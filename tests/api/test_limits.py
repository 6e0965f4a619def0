"""Bounded inputs: every request past a `server.*` bound is refused at once with a 4xx,
and the largest request within the bounds is answered within seconds."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from rag.config import Settings
from rag.pipeline import Pipeline
from tests.api.conftest import running_server

CHAT = "/v1/chat/completions"


def user(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


def conversation(n: int, chars: int) -> list[dict[str, str]]:
    """n messages, alternating user and assistant, ending with a question, about `chars`
    characters in all."""
    each = "The cat sat on the mat and looked at the rain. " * (chars // n // 47 + 1)
    turns = [
        {"role": "user" if i % 2 == 0 else "assistant", "content": each[: chars // n]} for i in range(n - 1)
    ]
    return [*turns, user("What does a cat eat?")]


def served_settings(pipeline: Pipeline, **server: Any) -> Settings:
    settings = pipeline.settings.model_copy(deep=True)
    for key, value in server.items():
        setattr(settings.server, key, value)
    return settings


def error(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text[:300]
    body: dict[str, Any] = r.json()["error"]
    assert set(body) == {"message", "type", "param", "code"} and body["message"]
    return body


@pytest.fixture
def client(pipeline: Pipeline) -> TestClient:
    return TestClient(create_app(pipeline.settings, pipeline))


def test_twenty_thousand_messages_are_refused_at_once(pipeline: Pipeline) -> None:
    body = {
        "model": "default",
        "max_tokens": 4,
        "messages": [
            {"role": "assistant" if i % 2 == 0 else "user", "content": f"message {i}"} for i in range(20_000)
        ],
    }
    with running_server(pipeline.settings, pipeline) as url:
        start = time.perf_counter()
        r = httpx.post(url + CHAT, json=body, timeout=30)
        took = time.perf_counter() - start
        ask = httpx.post(url + "/ask", json={"question": "x", "history": body["messages"]}, timeout=30)
    assert error(r, 400)["code"] == "too_many_messages" and took < 2, (r.status_code, took)
    assert error(ask, 400)["param"] == "history"


def test_too_many_characters_are_refused(client: TestClient) -> None:
    r = client.post(CHAT, json={"messages": conversation(10, 200_000), "max_tokens": 4})
    refused = error(r, 400)
    assert refused["code"] == "context_length_exceeded" and refused["param"] == "messages"
    assert "server.max_input_chars" in refused["message"]
    history = conversation(10, 200_000)[:-1]
    r = client.post("/ask", json={"question": "What does a cat eat?", "history": history})
    assert error(r, 400)["code"] == "context_length_exceeded"


def test_body_too_large_is_refused_before_it_is_read(pipeline: Pipeline) -> None:
    settings = served_settings(pipeline, max_body_kb=1)
    c = TestClient(create_app(settings, pipeline))
    big = json.dumps({"model": "nope", "messages": [user("x" * 2000)]}).encode()
    r = c.post(CHAT, content=big, headers={"content-type": "application/json"})
    assert error(r, 413)["code"] == "payload_too_large"
    # Without a Content-Length: counted as it arrives.
    r = c.post(CHAT, content=iter([big[:600], big[600:]]), headers={"content-type": "application/json"})
    assert error(r, 413)["code"] == "payload_too_large"
    small = json.dumps({"model": "nope", "messages": [user("x")]})
    assert c.post(CHAT, content=small, headers={"content-type": "application/json"}).status_code == 404
    # Uploads have their own limit (server.max_upload_mb); a JSON body to /ingest has this one.
    upload = c.post(
        "/ingest", files=[("files", ("big.txt", b"Cats sleep. " * 200))], data={"index": "no/such/index"}
    )  # read whole, then refused for its index name
    assert error(upload, 400)["message"]
    r = c.post(
        "/ingest",
        content=json.dumps({"path": "/" + "x" * 2000}),
        headers={"content-type": "application/json"},
    )
    assert error(r, 413)["code"] == "payload_too_large"

    # A real server answers as soon as the headers announce too much: the client has sent
    # ten bytes of the hundred megabytes it announced.
    with running_server(pipeline.settings, pipeline) as url:
        parts = urlsplit(url)
        with socket.create_connection((parts.hostname, parts.port), timeout=5) as s:
            s.sendall(
                b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                b"Content-Type: application/json\r\nContent-Length: 100000000\r\n\r\n"
                b'{"model":'
            )
            reply = b"".join(iter(lambda: s.recv(65536), b"")).decode()  # until it closes
    assert reply.startswith("HTTP/1.1 413"), reply
    assert "payload_too_large" in reply


def test_embedding_inputs_are_bounded(client: TestClient) -> None:
    r = client.post("/v1/embeddings", json={"input": ["a"] * 257})
    assert error(r, 400)["param"] == "input"
    r = client.post("/v1/embeddings", json={"input": "a" * 8193})
    assert error(r, 400)["code"] == "context_length_exceeded"
    r = client.post("/v1/embeddings", json={"input": ["word " * 1000] * 8})  # 40,000 characters
    assert "server.max_embedding_total_chars" in error(r, 400)["message"]


def test_stop_list_is_bounded(client: TestClient) -> None:
    r = client.post(CHAT, json={"model": "nope", "messages": [user("hi")], "stop": list("abcde")})
    assert error(r, 400)["param"] == "stop"
    r = client.post("/ask", json={"question": "hi", "index": "nope", "stop": list("abcde")})
    assert error(r, 400)["param"] == "stop"
    r = client.post(CHAT, json={"model": "nope", "messages": [user("hi")], "stop": list("abcd")})
    assert r.status_code == 404  # four are allowed: on to the next check


def test_max_tokens_is_capped_at_the_configured_maximum(pipeline: Pipeline, client: TestClient) -> None:
    pipeline.settings.llm.max_tokens = 6
    asked: list[int] = []
    real_generate = pipeline.generate

    def generate(prepared: Any) -> Iterator[Any]:
        asked.append(prepared.params.max_tokens)
        return real_generate(prepared)

    pipeline.generate = generate  # type: ignore[method-assign]
    question = [user("Tell me everything about cats and what they eat.")]
    r = client.post(CHAT, json={"messages": question, "max_tokens": 10**9})
    assert r.status_code == 200, r.text[:300]
    assert r.json()["usage"]["completion_tokens"] <= 6
    r = client.post(CHAT, json={"messages": question, "max_completion_tokens": 10**6})
    assert r.status_code == 200, r.text[:300]
    r = client.post("/ask", json={"question": "What do cats eat?", "max_tokens": 100_000})
    assert r.status_code == 200, r.text[:300]
    assert asked == [6, 6, 6]
    r = client.post(CHAT, json={"messages": question, "max_tokens": 3})
    assert asked[-1] == 3  # fewer than the maximum: as asked


@pytest.mark.parametrize("route", [CHAT, "/ask"])
def test_largest_request_within_bounds_is_prepared_within_seconds(pipeline: Pipeline, route: str) -> None:
    """Retrieval and prompt building of the longest conversation allowed take little time
    (what remains is the model reading a full context, bounded by llm.n_ctx)."""
    limits = pipeline.settings.server
    messages = conversation(limits.max_messages, limits.max_input_chars - 100)
    body: dict[str, Any] = {"messages": messages, "max_tokens": 1}
    if route == "/ask":
        body = {"question": messages[-1]["content"], "history": messages[:-1], "max_tokens": 1}
    took: list[float] = []
    real_prepare = pipeline.prepare

    def prepare(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return real_prepare(*args, **kwargs)
        finally:
            took.append(time.perf_counter() - start)

    pipeline.prepare = prepare  # type: ignore[method-assign]
    with running_server(pipeline.settings, pipeline) as url:
        r = httpx.post(url + route, json=body, timeout=120)
    assert r.status_code == 200, r.text[:300]
    assert len(took) == 1 and took[0] < 2, took


def test_largest_embedding_request_within_bounds_is_answered_within_seconds(client: TestClient) -> None:
    limits = client.app.state.settings.server  # type: ignore[attr-defined]
    size = limits.max_embedding_total_chars // limits.max_embedding_inputs
    texts = [("Cats sleep sixteen hours a day. " * (size // 32 + 1))[:size]] * limits.max_embedding_inputs
    start = time.perf_counter()
    r = client.post("/v1/embeddings", json={"input": texts})
    took = time.perf_counter() - start
    assert r.status_code == 200, r.text[:300]
    assert took < 5, took
