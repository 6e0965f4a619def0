"""Scoped keys: a key sees only its indexes, does only what its role allows, is logged by
name, stops at once when revoked; wrong keys are rate-limited per address.

The indexes: `default` (the corpus, which the `reader` and `writer` keys see) and `hr`
(a salary no key but an admin may read)."""

from __future__ import annotations

import logging
import re
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.keys import KeyStore, keys_path
from ingest.worker import IngestWorker
from rag.embedders.sentence_transformers import SentenceTransformerEmbedder
from rag.pipeline import Pipeline

SALARY = "91234"  # in index hr only


@pytest.fixture
def store(pipeline: Pipeline, embedder: SentenceTransformerEmbedder, tmp_path: Path) -> KeyStore:
    hr = tmp_path / "hr"
    hr.mkdir()
    (hr / "pay.txt").write_text(f"Salaries: Alice earns {SALARY} euros a year as head of payroll.\n")
    assert IngestWorker(pipeline.settings, embedder).run(hr, "hr").ok
    pipeline.settings.server.ingest_roots = [tmp_path]
    return KeyStore(keys_path(pipeline.settings))


@pytest.fixture
def keys(store: KeyStore) -> dict[str, dict[str, str]]:
    made = {
        "reader": store.create("reader", "read", ["default"]),
        "writer": store.create("writer", "ingest", ["default", "fresh"]),
        "admin": store.create("admin", "admin", None),
    }
    return {name: {"Authorization": f"Bearer {secret}"} for name, secret in made.items()}


@pytest.fixture
def client(pipeline: Pipeline, keys: dict[str, dict[str, str]]) -> TestClient:
    return TestClient(create_app(pipeline.settings, pipeline), raise_server_exceptions=False)


def test_the_store_keeps_salted_hashes_only(store: KeyStore) -> None:
    secret = store.create("bot", "read", ["hr"])
    twin = store.create("twin", "read", ["hr"])
    assert re.fullmatch(r"rag_[0-9a-f]{16}_[A-Za-z0-9_-]{43}", secret)
    raw = keys_path_bytes(store)
    assert secret.encode() not in raw and secret.split("_", 2)[2].encode() not in raw
    rows = sqlite3.connect(store.path).execute("SELECT salt, hash FROM keys").fetchall()
    assert len({salt for salt, _ in rows}) == 2 and len({h for _, h in rows}) == 2
    principal = store.authenticate(secret.encode())
    assert principal is not None and (principal.name, principal.role, principal.indexes) == (
        "bot",
        "read",
        frozenset({"hr"}),
    )
    assert store.authenticate(secret[:-1].encode() + b"x") is None
    # One key's id with another key's secret: the secret is checked against that id's hash.
    assert store.authenticate(twin[:21].encode() + secret[21:].encode()) is None
    assert store.authenticate(twin.encode()) is not None
    assert store.authenticate(b"rag_" + b"0" * 16 + b"_" + secret[21:].encode()) is None
    listed = {k.name: k for k in store.list()}
    assert listed["bot"].indexes == ("hr",) and listed["bot"].last_used is not None
    assert (
        store.create("idle", "read", ["hr"]) and {k.name: k for k in store.list()}["idle"].last_used is None
    )
    assert (store.path.stat().st_mode & 0o777) == 0o600


def keys_path_bytes(store: KeyStore) -> bytes:
    return b"".join(p.read_bytes() for p in store.path.parent.glob(store.path.name + "*"))


def test_revoked_and_expired_keys_stop_at_the_next_request(
    client: TestClient, keys: dict[str, dict[str, str]], store: KeyStore
) -> None:
    assert client.get("/indexes", headers=keys["reader"]).status_code == 200
    assert KeyStore(store.path).revoke("reader")  # another process: the CLI
    assert client.get("/indexes", headers=keys["reader"]).status_code == 401
    assert client.get("/indexes", headers=keys["writer"]).status_code == 200
    sqlite3.connect(store.path, isolation_level=None).execute(
        "UPDATE keys SET expires = ? WHERE name = 'writer'", (time.time() - 1,)
    )
    assert client.get("/indexes", headers=keys["writer"]).status_code == 401
    # Revoking every key never opens the service to everyone.
    assert KeyStore(store.path).revoke("writer") and KeyStore(store.path).revoke("admin")
    assert client.get("/indexes").status_code == 401


def test_settings_keys_are_admins_of_every_index(pipeline: Pipeline, keys: dict[str, Any]) -> None:
    settings = pipeline.settings.model_copy(deep=True)
    settings.server.api_keys = ["old-key"]  # type: ignore[list-item]  # validated into SecretStr
    c = TestClient(create_app(settings, pipeline))
    old = {"Authorization": "Bearer old-key"}
    names = [i["name"] for i in c.get("/indexes", headers=old).json()["data"]]
    assert names == ["default", "hr"]
    assert c.get("/metrics", headers=old).status_code == 200
    assert c.get("/indexes", headers=keys["reader"]).status_code == 200  # the store's keys too


def test_without_keys_the_service_is_open(pipeline: Pipeline) -> None:
    c = TestClient(create_app(pipeline.settings, pipeline))
    assert c.get("/indexes").status_code == 200
    assert c.get("/metrics").status_code == 200
    assert not keys_path(pipeline.settings).exists()  # nothing written by serving


def test_an_index_out_of_scope_is_a_missing_one(client: TestClient, keys: dict[str, Any]) -> None:
    hr = client.post("/search", headers=keys["reader"], json={"query": "salary", "index": "hr"})
    nope = client.post("/search", headers=keys["reader"], json={"query": "salary", "index": "nope"})
    assert hr.status_code == nope.status_code == 404
    assert hr.text == nope.text.replace("nope", "hr")
    assert dict(hr.headers) == dict(nope.headers) | {"content-length": hr.headers["content-length"]}
    found = client.post("/search", headers=keys["admin"], json={"query": "salary", "index": "hr"})
    assert SALARY in found.text
    assert client.post("/search", headers=keys["reader"], json={"query": "cats"}).status_code == 200


def test_listings_show_only_the_keys_indexes(client: TestClient, keys: dict[str, Any]) -> None:
    indexes = client.get("/indexes", headers=keys["reader"]).json()
    assert [i["name"] for i in indexes["data"]] == ["default"]
    models = client.get("/v1/models", headers=keys["reader"]).json()["data"]
    assert models and {m["index"] for m in models} == {"default"}
    assert {m["index"] for m in client.get("/v1/models", headers=keys["admin"]).json()["data"]} == {
        "default",
        "hr",
    }


def test_roles(client: TestClient, keys: dict[str, Any], tmp_path: Path) -> None:
    docs = str(tmp_path / "docs")
    reader, writer, admin = keys["reader"], keys["writer"], keys["admin"]
    r = client.post("/ingest", headers=reader, json={"path": docs})
    assert r.status_code == 403 and r.json()["error"]["code"] == "insufficient_role"
    assert client.post("/ingest", headers=writer, json={"path": docs}).status_code == 202
    assert client.post("/ingest", headers=writer, json={"path": docs, "index": "hr"}).status_code == 404
    new = client.post("/ingest", headers=writer, json={"path": docs, "index": "fresh"})
    assert new.status_code == 403  # in its scope, but creating an index is an admin's
    upload = client.post("/ingest", headers=writer, files={"files": ("a.txt", b"x")}, data={"index": "hr"})
    assert upload.status_code == 404
    assert client.post("/ingest", headers=admin, json={"path": docs, "index": "fresh"}).status_code == 202
    assert client.get("/metrics", headers=reader).status_code == 403
    assert client.get("/metrics", headers=writer).status_code == 403
    assert client.get("/metrics", headers=admin).status_code == 200


def test_jobs_of_other_indexes_are_not_seen(client: TestClient, keys: dict[str, Any], tmp_path: Path) -> None:
    job = client.post("/ingest", headers=keys["admin"], json={"path": str(tmp_path / "hr"), "index": "hr"})
    job_id = job.json()["id"]
    assert client.get(f"/ingest/{job_id}", headers=keys["reader"]).status_code == 404
    assert client.get("/ingest", headers=keys["reader"]).json()["data"] == []
    assert client.get(f"/ingest/{job_id}", headers=keys["admin"]).status_code == 200


# What each route is sent, aimed at index hr; a route not named here gets the generic body.
_BODIES: dict[str, dict[str, Any]] = {
    "/ask": {"question": "What does Alice earn?", "index": "hr", "max_tokens": 4},
    "/search": {"query": "salary", "index": "hr"},
    "/v1/chat/completions": {
        "model": "hr",
        "messages": [{"role": "user", "content": "What does Alice earn?"}],
        "max_tokens": 4,
    },
    "/v1/embeddings": {"model": "hr", "input": "salary"},
    "/ingest": {"path": "/", "index": "hr"},
}
_GENERIC = {"index": "hr", "model": "hr", "name": "hr", "query": "salary", "question": "salary"}


def test_every_route_with_an_out_of_scope_key_gives_no_data(
    client: TestClient, keys: dict[str, Any], tmp_path: Path
) -> None:
    """Each route of the schema, with the reader's key (scope: default) aimed at hr: a refusal,
    or an answer that holds nothing of hr."""
    job = client.post("/ingest", headers=keys["admin"], json={"path": str(tmp_path / "hr"), "index": "hr"})
    params = {"job_id": job.json()["id"]}
    schema = client.get("/openapi.json", headers=keys["reader"]).json()
    checked = []
    for path, item in schema["paths"].items():
        url = re.sub(r"\{([^}]+)\}", lambda m: params.get(m.group(1), "hr"), path)
        for method in item:
            body = _BODIES.get(path, _GENERIC) if method in ("post", "put", "patch") else None
            r = client.request(method.upper(), url, headers=keys["reader"], json=body)
            checked.append((method, path, r.status_code))
            assert SALARY not in r.text, (method, path)
            if r.status_code in (401, 403, 404) or path == "/health":
                continue
            assert r.status_code < 300, (method, path, r.status_code, r.text)
            assert not re.search(r'"(index|id|name)": ?"hr[/"]', r.text), (method, path, r.text)
    assert ("get", "/indexes", 200) in checked and ("post", "/search", 404) in checked
    assert ("get", "/ingest/{job_id}", 404) in checked and ("get", "/metrics", 403) in checked
    assert len(checked) >= 11


def test_each_request_is_logged_with_the_key_name(
    client: TestClient, keys: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="rag.access")
    client.post("/search", headers=keys["reader"], json={"query": "salary", "index": "hr"})
    client.post("/search", headers=keys["reader"], json={"query": "cats"})
    lines = [r.getMessage() for r in caplog.records if r.name == "rag.access"]
    assert "route=/search status=404" in lines[0] and "key=reader" in lines[0] and "index=hr" in lines[0]
    assert "status=200" in lines[1] and "key=reader" in lines[1] and "index=default" in lines[1]
    secret = keys["reader"]["Authorization"].split()[1]
    assert not any(secret in r.getMessage() for r in caplog.records)


def test_wrong_keys_are_rate_limited_per_address(pipeline: Pipeline, keys: dict[str, Any]) -> None:
    app = create_app(pipeline.settings, pipeline)
    attacker = TestClient(app, client=("10.0.0.1", 5000))
    other = TestClient(app, client=("10.0.0.2", 5000))
    wrong = {"Authorization": "Bearer rag_0123456789abcdef_guess"}
    statuses = [attacker.get("/indexes", headers=wrong).status_code for _ in range(12)]
    limit = pipeline.settings.server.auth_failures
    assert statuses == [401] * limit + [429] * (12 - limit)
    refused = attacker.get("/indexes", headers=keys["reader"])
    assert refused.status_code == 429 and 1 <= int(refused.headers["retry-after"]) <= 60
    assert other.get("/indexes", headers=keys["reader"]).status_code == 200
