"""POST /search: retrieval only, in each mode, with every method's score."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from rag.errors import IndexNotFoundError
from rag.pipeline import Pipeline
from rag.retrievers.base import Retriever
from rag.store import Store
from tests.api.conftest import STORES


def test_search_ranks_chunks_in_each_mode(pipeline: Pipeline) -> None:
    with TestClient(create_app(pipeline.settings, pipeline)) as client:
        for mode in ("dense", "lexical", "hybrid"):
            r = client.post("/search", json={"query": "What do cats eat?", "mode": mode, "top_k": 2})
            assert r.status_code == 200, r.text
            body = r.json()
            assert body["mode"] == mode and body["data"][0]["path"] == "docs/cats.md"
            assert not body["data"][0]["path"].startswith("/")
        scores = client.post("/search", json={"query": "bake bread", "mode": "hybrid"}).json()
        assert set(scores["data"][0]["scores"]) == {"dense", "coverage", "bm25", "fused"}
        assert client.post("/search", json={"query": "x", "mode": "sparse"}).status_code == 400
        assert client.post("/search", json={"query": "x", "index": "nope"}).status_code == 404
        assert client.post("/search", json={"query": "x", "index": "../etc"}).status_code == 400


def test_filters_reach_the_search(pipeline: Pipeline) -> None:
    with TestClient(create_app(pipeline.settings, pipeline)) as client:
        body = {"query": "What do cats eat?", "filters": {"path": "*.txt"}, "min_score": -1}
        r = client.post("/search", json=body)
        assert r.status_code == 200, r.text
        assert r.json()["data"] and all(h["path"].endswith(".txt") for h in r.json()["data"])
        r = client.post(
            "/ask",
            json={
                "question": "What do cats eat?",
                "max_tokens": 1,
                "filters": {"type": ["txt"]},
                "min_score": -1,
            },
        )
        assert r.status_code == 200 and all(s["path"].endswith(".txt") for s in r.json()["sources"])
        r = client.post("/search", json={"query": "x", "filters": {"language": ["de"]}})
        assert r.status_code == 400


@pytest.mark.parametrize("backend", STORES, indirect=True, ids=[s for s, _ in STORES])
def test_a_filter_that_no_store_can_read_is_a_400_on_every_store(pipeline: Pipeline) -> None:
    with TestClient(create_app(pipeline.settings, pipeline)) as client:
        for filters in ({"path": "[z-a]*"}, {"path": "docs/[abc"}, {"path": "a\x00b"}, {"type": ["t\x00t"]}):
            for route, body in (
                ("/search", {"query": "What do cats eat?"}),
                ("/ask", {"question": "What do cats eat?", "max_tokens": 1}),
            ):
                r = client.post(route, json={**body, "filters": filters})
                assert r.status_code == 400, (route, filters, r.text)
                assert r.json()["error"]["type"] == "invalid_request_error"
        r = client.post("/search", json={"query": "x", "filters": {"path": "[z-a]*"}})
        assert "not a valid glob" in r.json()["error"]["message"]


@pytest.mark.parametrize("backend", STORES, indirect=True, ids=[s for s, _ in STORES])
@pytest.mark.parametrize("reopened", [False, True], ids=["deleted", "deleted-and-reopened"])
def test_a_request_reading_an_index_that_is_deleted_answers_404(pipeline: Pipeline, reopened: bool) -> None:
    """The index is deleted after a request opened it and before it reads it; with
    `reopened`, another request asks for it meanwhile (and so closes the stale store)."""
    real = pipeline.retriever_for
    deleted: list[str] = []

    def deleting(mode: str | None, store: Store | None = None) -> Retriever:
        if store is not None and not deleted:
            pipeline.catalog.delete(store.name)
            deleted.append(store.name)
            if reopened:
                with pytest.raises(IndexNotFoundError):
                    pipeline.index(store.name)
        return real(mode, store)

    pipeline.retriever_for = deleting  # type: ignore[method-assign]
    with TestClient(create_app(pipeline.settings, pipeline)) as client:
        r = client.post("/search", json={"query": "What do cats eat?"})
        assert r.status_code == 404, r.text
        assert r.json()["error"]["code"] == "model_not_found" and deleted == ["default"]
        r = client.post("/ask", json={"question": "What do cats eat?", "max_tokens": 1})
        assert r.status_code == 404, r.text
