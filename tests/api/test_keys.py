"""API keys: every route but /health needs one (the docs and the schema too, unless
server.public_docs); any malformed header is a 401; keys never shown or logged; the
compose file does not publish the API on every interface."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient

from api.app import create_app
from rag.config import Settings, flat_settings
from rag.pipeline import Pipeline

ROOT = Path(__file__).parents[2]
KEY = "sesame-7b2e"
AUTH = {"Authorization": f"Bearer {KEY}"}


def keyed(pipeline: Pipeline, **server: object) -> Settings:
    settings = pipeline.settings.model_copy(deep=True)
    settings.server.api_keys = [KEY, "second-key"]  # type: ignore[list-item]  # validated into SecretStr
    for name, value in server.items():
        setattr(settings.server, name, value)
    return settings


@pytest.fixture
def client(pipeline: Pipeline) -> TestClient:
    return TestClient(create_app(keyed(pipeline), pipeline), raise_server_exceptions=False)


@pytest.mark.parametrize(
    "header",
    [
        "Bearer clé".encode(),
        "Bearer clé".encode("latin-1"),
        b"Bearer \xff\xfe\x80",
        b"Bearer \xe2\x82\xac",
        f"Bearer {KEY}é".encode(),
        b"Bearer",
        b"Bearer    ",
        b"Basic c2VzYW1lOg==",
        KEY.encode(),
        f"Bearer {KEY} {KEY}".encode(),
        b"\xc3\xa9",
        b"",
        f"Bearer\t{KEY}x".encode(),
    ],
)
def test_malformed_or_wrong_keys_are_401(client: TestClient, header: bytes) -> None:
    r = client.get("/v1/models", headers=[(b"authorization", header)])
    assert r.status_code == 401, r.text
    assert r.json()["error"]["code"] == "invalid_api_key"
    assert r.headers["www-authenticate"] == "Bearer"


def test_right_keys_pass(client: TestClient) -> None:
    for header in (AUTH, {"Authorization": f"bearer   {KEY}  "}, {"Authorization": "Bearer second-key"}):
        assert client.get("/v1/models", headers=header).status_code == 200, header


def test_every_route_but_health_needs_a_key(client: TestClient) -> None:
    schema = client.get("/openapi.json", headers=AUTH).json()
    assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    routes = [(method.upper(), path) for path, item in schema["paths"].items() for method in item]
    routes += [("GET", "/openapi.json"), ("GET", "/docs"), ("GET", "/redoc")]
    assert {("POST", "/ask"), ("GET", "/metrics"), ("POST", "/ingest"), ("GET", "/health")} <= set(routes)
    for method, path in routes:
        r = client.request(method, re.sub(r"\{[^}]+\}", "x", path))
        assert r.status_code == (200 if path == "/health" else 401), (method, path, r.status_code)
    assert client.get("/docs", headers=AUTH).status_code == 200
    assert client.get("/redoc", headers=AUTH).status_code == 200


def test_docs_can_be_public_on_purpose(pipeline: Pipeline) -> None:
    c = TestClient(create_app(keyed(pipeline, public_docs=True), pipeline))
    for path in ("/openapi.json", "/docs", "/redoc"):
        assert c.get(path).status_code == 200, path
    assert "openapi.json" in c.get("/docs").text
    assert c.get("/v1/models").status_code == 401  # the API itself still needs a key


def test_keys_are_never_logged(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    client.get("/v1/models", headers=AUTH)
    client.get("/v1/models", headers={"Authorization": f"Bearer {KEY}x"})
    client.get("/v1/models", headers=[(b"authorization", f"Bearer {KEY}\xe9".encode("latin-1"))])
    client.post("/v1/embeddings", headers=AUTH, json={"input": "hello"})
    client.post("/ask", headers=AUTH, json={"question": "What do cats eat?", "max_tokens": 2})
    access = [r for r in caplog.records if r.name == "rag.access"]
    assert len(access) == 5
    for record in caplog.records:
        text = record.getMessage() + (record.exc_text or "")
        assert KEY not in text, text
        assert "authorization" not in text.lower()


def test_rag_config_masks_keys(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RAG_SERVER__API_KEYS": json.dumps([KEY]), "COLUMNS": "200"}
    r = subprocess.run(
        [sys.executable, "-m", "rag_cli", "config"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert KEY not in r.stdout + r.stderr
    line = next(line for line in r.stdout.splitlines() if "server.api_keys" in line)
    assert "**********" in line and "env" in line


def test_eval_run_records_do_not_hold_keys(settings: Settings, tmp_path: Path) -> None:
    from rag_eval.datasets import load_dataset
    from rag_eval.runner import RunOptions, run
    from tests.rag_eval.test_datasets import write_beir

    settings.server.api_keys = [KEY]  # type: ignore[list-item]  # validated into SecretStr
    assert flat_settings(settings)["server.api_keys"] == ["**********"]
    beir = write_beir(
        tmp_path / "tiny",
        {"cat": ("Cats", "Cats sleep sixteen hours a day.")},
        {"q1": "How long do cats sleep?"},
        {"q1": ["cat"]},
    )
    record = run(settings, load_dataset(beir, "test"), tmp_path / "work", RunOptions(generate=False))
    saved = Path(record["path"]).read_text()
    assert KEY not in saved and KEY not in json.dumps(record, default=str)
    assert json.loads(saved)["settings"]["server.api_keys"] == ["**********"]


def test_compose_does_not_publish_an_open_api_on_all_interfaces() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    for name, service in compose["services"].items():
        for port in service.get("ports", []):
            published = str(port)
            # "HOST_IP:HOST_PORT:CONTAINER_PORT", with the address given and loopback by default
            resolved = re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", published)
            assert resolved.startswith("127.0.0.1:"), (name, published)
