"""The API through TestClient: shapes and errors."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from rag.pipeline import Pipeline


@pytest.fixture
def client(pipeline: Pipeline) -> TestClient:
    return TestClient(create_app(pipeline.settings, pipeline))


def test_health(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok"}


def test_health_is_503_while_loading(pipeline: Pipeline) -> None:
    app = create_app(pipeline.settings)
    with TestClient(app) as c:  # no pipeline handed in: it loads in the background
        first = c.get("/health")
        assert first.status_code in (200, 503)
        if first.status_code == 503:
            assert first.json()["status"] == "loading"
            assert c.post("/ask", json={"question": "x"}).status_code == 503


@pytest.mark.backends
def test_ask(client: TestClient) -> None:
    r = client.post("/ask", json={"question": "What does a cat eat?", "max_tokens": 32, "seed": 1})
    assert r.status_code == 200
    body = r.json()
    assert body["answer"] and body["sources"][0]["path"].endswith("cats.md")
    assert body["usage"]["total_tokens"] == (
        body["usage"]["prompt_tokens"] + body["usage"]["completion_tokens"]
    )


@pytest.mark.backends
def test_ask_stream(client: TestClient) -> None:
    with client.stream(
        "POST", "/ask", json={"question": "Where is Etna?", "stream": True, "max_tokens": 24}
    ) as r:
        events = [line.split(": ", 1)[1] for line in r.iter_lines() if line.startswith("event")]
    assert events[0] == "token" and events[-2:] == ["sources", "done"]


@pytest.mark.parametrize(
    ("route", "body", "status"),
    [
        ("/ask", "{not json", 400),
        ("/ask", json.dumps({"question": 42}), 400),
        ("/ask", json.dumps({"question": ""}), 400),
        ("/ask", json.dumps({"question": "x", "top_k": -1}), 400),
        ("/ask", json.dumps({"question": "x", "index": "missing"}), 404),
        ("/v1/chat/completions", json.dumps({"model": "default", "messages": []}), 400),
        (
            "/v1/chat/completions",
            json.dumps({"model": "nope", "messages": [{"role": "user", "content": "hi"}]}),
            404,
        ),
        ("/v1/chat/completions", json.dumps({"messages": [{"role": "assistant", "content": "hi"}]}), 400),
        ("/v1/embeddings", json.dumps({"model": "default", "input": ""}), 400),
    ],
)
def test_errors_are_openai_shaped(client: TestClient, route: str, body: str, status: int) -> None:
    r = client.post(route, content=body, headers={"content-type": "application/json"})
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"]


@pytest.mark.backends
def test_huge_question_is_context_length_exceeded(client: TestClient) -> None:
    r = client.post(
        "/v1/chat/completions",
        json={"model": "default", "messages": [{"role": "user", "content": "word " * 200_000}]},
    )
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "context_length_exceeded"


def test_api_keys(pipeline: Pipeline) -> None:
    settings = pipeline.settings.model_copy(deep=True)
    settings.server.api_keys = ["sesame"]  # type: ignore[list-item]  # validated into SecretStr
    c = TestClient(create_app(settings, pipeline))
    assert c.get("/health").status_code == 200
    assert c.get("/v1/models").status_code == 401
    wrong = c.get("/v1/models", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "invalid_api_key"
    assert c.get("/v1/models", headers={"Authorization": "Bearer sesame"}).status_code == 200


def test_models_and_embeddings(client: TestClient) -> None:
    models = client.get("/v1/models").json()
    assert [m["id"] for m in models["data"]] == ["default"]
    r = client.post("/v1/embeddings", json={"model": "default", "input": ["a", "b"]}).json()
    assert len(r["data"]) == 2 and len(r["data"][0]["embedding"]) == 384


def test_openapi_docs(client: TestClient) -> None:
    assert client.get("/docs").status_code == 200
    assert "/v1/chat/completions" in client.get("/openapi.json").json()["paths"]
