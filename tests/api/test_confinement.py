"""Ingest by path never reads outside the allowed folders, answers never show server
paths, and a file whose parser takes too long fails alone while the job queue goes on."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from rag.pipeline import Pipeline
from tests.api.test_ingest_jobs import statuses, wait
from tests.pdfs import text_pdf


@pytest.fixture
def setup(pipeline: Pipeline, tmp_path: Path) -> Iterator[tuple[TestClient, Path, Path]]:
    root = tmp_path / "shared"
    root.mkdir()
    secret = tmp_path / "private"
    secret.mkdir()
    (secret / "salaries.txt").write_text("The director's salary is 912,345 euros a year.\n")
    pipeline.settings.server.ingest_roots = [root]
    pipeline.settings.server.upload_dir = tmp_path / "uploads"
    with TestClient(create_app(pipeline.settings, pipeline)) as client:
        yield client, root, secret


def test_links_inside_a_root_do_not_lead_out(setup: tuple[TestClient, Path, Path]) -> None:
    client, root, secret = setup
    (root / "notes.txt").write_text("The canteen opens at noon.\n")
    (root / "salaries.txt").symlink_to(secret / "salaries.txt")
    (root / "private").symlink_to(secret)
    r = client.post("/ingest", json={"path": str(root), "index": "shared"})
    assert r.status_code == 202, r.text
    job = wait(client, r.json()["id"])
    assert job["status"] == "done"
    assert statuses(job) == {"notes.txt": "added", "salaries.txt": "skipped", "private": "skipped"}
    r = client.post(
        "/ask",
        json={
            "question": "What is the director's salary?",
            "index": "shared",
            "max_tokens": 1,
            "min_score": -1,
        },
    )
    assert r.status_code == 200
    assert "912,345" not in r.text


def test_sources_name_documents_relative_to_the_ingested_folder(
    setup: tuple[TestClient, Path, Path],
) -> None:
    client, root, _ = setup
    (root / "guide").mkdir()
    (root / "guide" / "canteen.txt").write_text("The canteen opens at noon and closes at two.\n")
    job = wait(client, client.post("/ingest", json={"path": str(root / "guide"), "index": "g"}).json()["id"])
    assert job["status"] == "done"
    r = client.post("/ask", json={"question": "When does the canteen open?", "index": "g", "max_tokens": 1})
    paths = [s["path"] for s in r.json()["sources"]]
    assert paths == ["guide/canteen.txt"]
    assert str(root) not in r.text


def test_a_slow_parser_is_stopped_and_the_next_job_runs(
    setup: tuple[TestClient, Path, Path], pipeline: Pipeline
) -> None:
    client, root, _ = setup
    pipeline.settings.ingest.file_timeout = 0.3
    text_pdf(root / "huge.pdf", [f"Page {i} " + "word " * 300 for i in range(5000)])
    (root / "small.txt").write_text("A small file beside the huge one.\n")
    first = client.post("/ingest", json={"path": str(root), "index": "slow"}).json()["id"]
    (root / "next").mkdir()
    (root / "next" / "after.txt").write_text("The next job's file.\n")
    second = client.post("/ingest", json={"path": str(root / "next"), "index": "after"}).json()["id"]
    job = wait(client, first, timeout=60)
    assert job["status"] == "done"
    reasons = {Path(f["path"]).name: f["reason"] for f in job["files"]}
    assert statuses(job)["huge.pdf"] == "failed" and "longer than" in reasons["huge.pdf"]
    assert statuses(job)["small.txt"] == "added"
    assert wait(client, second)["status"] == "done"
