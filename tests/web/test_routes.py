"""The routes behind the page: its files, served without a key, and GET /indexes."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from api.app import create_app
from api.web_router import STATIC
from ingest.worker import IngestWorker
from rag.config import Settings
from rag.embedders.sentence_transformers import SentenceTransformerEmbedder
from rag.pipeline import Pipeline
from tests.fakes import EchoGenerator

AUTH = {"Authorization": "Bearer k1"}


@pytest.fixture
def client(
    settings: Settings, embedder: SentenceTransformerEmbedder, worker: IngestWorker, corpus: Path
) -> TestClient:
    worker.run(corpus)
    settings.server.api_keys = [SecretStr("k1")]
    return TestClient(create_app(settings, Pipeline(settings, embedder, EchoGenerator())))


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("/", "text/html"),
        ("/static/index.html", "text/html"),
        ("/static/app.js", "text/javascript"),
        ("/static/style.css", "text/css"),
    ],
)
def test_the_page_is_served_without_a_key(client: TestClient, path: str, kind: str) -> None:
    r = client.get(path)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith(kind)
    assert "default-src 'self'" in r.headers["content-security-policy"]


def test_the_page_needs_nothing_from_elsewhere() -> None:
    for path in STATIC.iterdir():
        text = path.read_text()
        assert "http://" not in text and "https://" not in text, path.name


@pytest.mark.parametrize(
    "path", ["/static/nothing.js", "/static/..%2Fapp.py", "/static/%2e%2e", "/static/../web_router.py"]
)
def test_only_the_page_files_are_served(client: TestClient, path: str) -> None:
    r = client.get(path)
    assert r.status_code == 404
    assert "message" in r.json()["error"]


def test_indexes_need_the_key_and_list_sizes(client: TestClient) -> None:
    assert client.get("/indexes").status_code == 401
    body = client.get("/indexes", headers=AUTH).json()
    assert body["object"] == "list" and body["default"] == "default"
    (row,) = body["data"]
    assert row["name"] == "default" and row["files"] == 3 and row["chunks"] >= 3
    assert row["size_bytes"] > 0 and isinstance(row["last_ingest"], float)
    assert "/indexes" in client.get("/openapi.json", headers=AUTH).json()["paths"]


def test_no_index_yet(settings: Settings, embedder: SentenceTransformerEmbedder) -> None:
    client = TestClient(create_app(settings, Pipeline(settings, embedder, EchoGenerator())))
    assert client.get("/indexes").json()["data"] == []
