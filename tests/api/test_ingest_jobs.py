"""POST /ingest and GET /ingest/{id}: uploads and server paths become jobs, run in order."""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

import api.jobs
from api.app import create_app
from api.jobs import JobRunner
from rag.config import Settings
from rag.embedders.base import Embedder
from rag.pipeline import Pipeline

BOUNDARY = "rag-test-boundary"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    folder = tmp_path / "shared"
    folder.mkdir()
    return folder


@pytest.fixture
def client(pipeline: Pipeline, tmp_path: Path, root: Path) -> Iterator[TestClient]:
    pipeline.settings.server.upload_dir = tmp_path / "uploads"
    pipeline.settings.server.ingest_roots = [root]
    with TestClient(create_app(pipeline.settings, pipeline)) as c:
        yield c


def wait(client: TestClient, job_id: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job: dict[str, Any] = client.get(f"/ingest/{job_id}").json()
        if job["status"] in ("done", "failed"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} still {job['status']}")


def statuses(job: dict[str, Any]) -> dict[str, str]:
    return {Path(f["path"]).name: f["status"] for f in job["files"]}


def multipart(filename: str, content: bytes = b"Some text.\n") -> tuple[bytes, dict[str, str]]:
    """A body with the file name exactly as given (a client library might clean it)."""
    head = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="files"; filename="{filename}"\r\n'
        "Content-Type: text/plain\r\n\r\n"
    )
    body = head.encode("utf-8", "surrogateescape") + content + f"\r\n--{BOUNDARY}--\r\n".encode()
    return body, {"content-type": f"multipart/form-data; boundary={BOUNDARY}"}


def files_under(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if p.is_file()}


def test_uploads_are_ingested_then_answered(client: TestClient, tmp_path: Path) -> None:
    files = [
        ("files", ("owls.md", b"# Owls\n\nOwls hunt mice at night and swallow them whole.\n")),
        ("files", ("notes/tea.txt", b"Green tea is steeped at 80 degrees for two minutes.\n")),
    ]
    r = client.post("/ingest", files=files)
    assert r.status_code == 202, r.text
    queued = r.json()
    assert r.headers["location"] == f"/ingest/{queued['id']}"
    assert queued["status"] in ("queued", "running") and queued["index"] == "default"
    assert queued["source"] == {"type": "upload", "files": ["owls.md", "notes/tea.txt"]}

    job = wait(client, queued["id"])
    assert job["status"] == "done", job
    assert statuses(job)["owls.md"] == "added" and statuses(job)["tea.txt"] == "added"
    assert job["progress"]["files_done"] == job["progress"]["files_total"] == 2
    assert job["summary"]["added"] == 2 and job["progress"]["chunks"] == job["summary"]["chunks"]
    assert (tmp_path / "uploads" / "default" / "notes" / "tea.txt").is_file()

    answer = client.post("/ask", json={"question": "What do owls hunt at night?", "max_tokens": 8})
    assert answer.json()["sources"][0]["path"].endswith("owls.md")

    again = client.post("/ingest", files=[("files", ("owls.md", b"Owls also eat voles and frogs.\n"))])
    job = wait(client, again.json()["id"])
    assert statuses(job) == {"owls.md": "updated", "tea.txt": "unchanged"}
    listed = client.get("/ingest").json()
    assert [j["id"] for j in listed["data"]] == [again.json()["id"], queued["id"]]


def test_path_inside_a_root_is_ingested(client: TestClient, root: Path) -> None:
    (root / "handbook").mkdir()
    (root / "handbook" / "leave.txt").write_text("Staff get twenty-five days of paid leave a year.\n")
    r = client.post("/ingest", json={"path": str(root / "handbook"), "index": "handbook"})
    assert r.status_code == 202, r.text
    job = wait(client, r.json()["id"])
    assert job["status"] == "done" and statuses(job) == {"leave.txt": "added"}
    assert job["source"] == {"type": "path", "path": str((root / "handbook").resolve())}
    assert "handbook" in [m["id"] for m in client.get("/v1/models").json()["data"]]


def test_paths_outside_the_roots_are_refused(client: TestClient, root: Path, corpus: Path) -> None:
    (root / "link").symlink_to(corpus)
    for path in (corpus, root / ".." / corpus.name, root / "link", root / "link" / "cats.md"):
        r = client.post("/ingest", json={"path": str(path)})
        assert r.status_code == 403, (path, r.text)
        assert r.json()["error"]["type"] == "permission_error"
        assert r.json()["error"]["code"] == "path_not_allowed"
    assert client.post("/ingest", json={"path": "shared/x"}).status_code == 400  # not absolute
    assert client.post("/ingest", json={"path": str(root / "missing")}).status_code == 400
    assert client.post("/ingest", json={"path": str(root) + "\x00"}).status_code == 400
    (root / os.fsdecode(b"caf\xe9")).mkdir()  # a name no index may store: refused, listing unbroken
    body = json.dumps({"path": str(root / os.fsdecode(b"caf\xe9"))}).encode()  # "\udce9" in JSON
    r = client.post("/ingest", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 400, r.text
    assert client.get("/ingest").json()["data"] == []


def test_path_ingestion_is_off_without_roots(pipeline: Pipeline, corpus: Path) -> None:
    with TestClient(create_app(pipeline.settings, pipeline)) as c:
        r = c.post("/ingest", json={"path": str(corpus)})
    assert r.status_code == 403 and "server.ingest_roots" in r.json()["error"]["message"]


@pytest.mark.parametrize(
    "name",
    [
        "../escape.txt",
        "a/../../escape.txt",
        "/etc/passwd",
        "{tmp}/escape.txt",
        "a\x00b.txt",
        "..\\escape.txt",
        "sub\\..\\escape.txt",
        "./x.txt",
        "sub//x.txt",
        ".hidden.txt",
        "",
        " ",
        "new\nline.txt",
        "next\x85line.txt",
        "escape\x9b2J.txt",
        "program.exe",
        "noext",
    ],
)
def test_bad_upload_names_are_refused(client: TestClient, tmp_path: Path, name: str) -> None:
    before = files_under(tmp_path)
    body, headers = multipart(name.replace("{tmp}", str(tmp_path)))
    r = client.post("/ingest", content=body, headers=headers)
    assert r.status_code == 400, r.text
    assert set(r.json()["error"]) == {"message", "type", "param", "code"}
    assert files_under(tmp_path) == before
    assert not (tmp_path / "uploads").exists()


def test_bad_requests(client: TestClient, tmp_path: Path) -> None:
    ok = ("files", ("a.txt", b"text"))
    cases: list[dict[str, Any]] = [
        {"files": [ok], "data": {"index": "../up"}},
        {"files": [ok], "data": {"index": ".hidden"}},
        {"files": [ok], "data": {"other": "x"}},
        {"files": [ok, ok]},  # the same name twice
        {"data": {"index": "default"}, "files": [("other", ("a.txt", b"x"))]},
        {"json": {"path": 3}},
        {"json": {"path": "/x", "extra": 1}},
        {"content": b"{not json", "headers": {"content-type": "application/json"}},
        {"content": b"x", "headers": {"content-type": "multipart/form-data"}},  # no boundary
    ]
    for case in cases:
        r = client.post("/ingest", **case)
        assert r.status_code == 400, (case, r.text)
        assert r.json()["error"]["message"]
    assert not (tmp_path / "uploads").exists()


def test_unknown_job_is_404(client: TestClient) -> None:
    r = client.get("/ingest/0123abcd")
    assert r.status_code == 404
    assert r.json()["error"] == {
        "message": r.json()["error"]["message"],
        "type": "not_found_error",
        "param": "job_id",
        "code": "job_not_found",
    }


def test_uploads_over_the_limit_are_413(client: TestClient, pipeline: Pipeline, tmp_path: Path) -> None:
    pipeline.settings.server.max_upload_mb = 1
    big = b"word " * 300_000
    r = client.post("/ingest", files=[("files", ("big.txt", big))])
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"
    body, headers = multipart("big.txt", big)
    r = client.post("/ingest", content=iter([body[:4096], body[4096:]]), headers=headers)  # no length
    assert r.status_code == 413, r.text
    assert not (tmp_path / "uploads").exists()


def test_refused_uploads_leave_no_file_behind(
    client: TestClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    uploads = tmp_path / "uploads"
    first = client.post("/ingest", files=[("files", ("a.txt", b"The first text.\n"))])
    assert wait(client, first.json()["id"])["status"] == "done"
    before = tree(uploads)
    assert before == {"default": None, "default/a.txt": b"The first text.\n"}
    files = [("files", (name, b"Other text.\n")) for name in ("a.txt", "b.txt", "sub/c.txt")]
    monkeypatch.setattr(api.jobs, "MAX_QUEUED", 0)  # the job queue is full
    r = client.post("/ingest", files=files)
    assert r.status_code == 429 and r.json()["error"]["code"] == "queue_full"
    assert tree(uploads) == before
    # Full only once the upload has been read: refused as late as can be, still nothing.
    monkeypatch.setattr(client.app.state.jobs, "admit", lambda: None)  # type: ignore[attr-defined]
    r = client.post("/ingest", files=files)
    assert r.status_code == 429 and r.json()["error"]["code"] == "queue_full"
    assert tree(uploads) == before
    client.app.state.jobs.close()  # type: ignore[attr-defined]  # the server is stopping
    assert client.post("/ingest", files=files).status_code == 503
    assert tree(uploads) == before
    assert [j["id"] for j in client.get("/ingest").json()["data"]] == [first.json()["id"]]


def tree(folder: Path) -> dict[str, bytes | None]:
    """Every file (its bytes) and folder (None) under `folder`, hidden ones too."""
    return {str(p.relative_to(folder)): p.read_bytes() if p.is_file() else None for p in folder.rglob("*")}


def test_ingest_needs_the_api_key(pipeline: Pipeline) -> None:
    pipeline.settings.server.api_keys = ["sesame"]
    with TestClient(create_app(pipeline.settings, pipeline)) as c:
        assert c.post("/ingest", files=[("files", ("a.txt", b"x"))]).status_code == 401
        assert c.get("/ingest").status_code == 401
        assert c.get("/ingest", headers={"Authorization": "Bearer sesame"}).status_code == 200


def test_job_fails_when_another_ingest_holds_the_index(client: TestClient, pipeline: Pipeline) -> None:
    client.app.state.jobs.lock_wait = 0.3  # type: ignore[attr-defined]
    with held_lock(pipeline.settings.indexes_dir / "default"):
        r = client.post("/ingest", files=[("files", ("a.txt", b"Some text."))])
        job = wait(client, r.json()["id"])
    assert job["status"] == "failed"
    assert "being ingested by another process" in job["error"] and "retry later" in job["error"]


def test_close_stops_the_running_job_and_fails_the_queued(
    pipeline: Pipeline, embedder: Embedder, corpus: Path
) -> None:
    pipeline.settings.server.ingest_roots = [corpus]  # path jobs read only from these
    runner = JobRunner(pipeline.settings, lock_wait=60)
    with held_lock(pipeline.settings.indexes_dir / "default"):  # the first job waits for it
        first = runner.submit(corpus, "default", {"type": "path"}, embedder)
        second = runner.submit(corpus, "default", {"type": "path"}, embedder)
        time.sleep(0.2)
        started = time.monotonic()
        runner.close()
        assert time.monotonic() - started < 5
    first_job, second_job = runner.get(first["id"]), runner.get(second["id"])
    assert first_job and first_job["status"] == "failed" and "shut down" in first_job["error"]
    assert second_job and second_job["status"] == "failed" and "before the job ran" in second_job["error"]


@contextmanager
def held_lock(folder: Path) -> Iterator[None]:
    """Hold an index's ingest lock as another process would."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        yield


def test_error_messages_name_no_server_folder_and_no_other_index(
    client: TestClient, pipeline: Pipeline, tmp_path: Path, root: Path, corpus: Path
) -> None:
    """Every error a client can provoke, and a failed job's: no absolute path of the
    server (all of this test's folders are under tmp_path) and no index but the one asked
    for in any of them."""
    with pipeline.catalog.lock("private-notes"):
        pipeline.catalog.create(
            "private-notes", pipeline.index().manifest.model_copy(update={"id": "x"})
        ).close()
    (root / "link").symlink_to(corpus)
    body, headers = multipart(f"{tmp_path}/escape.txt")
    responses = [
        client.post("/search", json={"query": "x", "index": "nope"}),
        client.post("/ask", json={"question": "x", "index": "nope"}),
        client.post(
            "/v1/chat/completions", json={"model": "nope", "messages": [{"role": "user", "content": "x"}]}
        ),
        client.post("/search", json={"query": "x", "filters": {"path": "[z-a]*"}}),
        client.post("/ingest", json={"path": str(corpus)}),  # outside the roots
        client.post("/ingest", json={"path": str(root / "missing" / "x.txt")}),
        client.post("/ingest", json={"path": str(root / "link")}),
        client.post("/ingest", content=body, headers=headers),
    ]
    statuses = [r.status_code for r in responses]
    assert statuses == [404, 404, 404, 400, 403, 400, 403, 400], [r.text for r in responses]
    # A job whose folder is gone by the time it runs (the route had found it).
    jobs: JobRunner = client.app.state.jobs  # type: ignore[attr-defined]
    queued = jobs.submit(root / "gone", "default", {"type": "path"}, pipeline.embedder)
    job = wait(client, queued["id"])
    assert job["status"] == "failed" and "gone" in job["error"]
    for text in [r.text for r in responses] + [json.dumps(job)]:
        assert str(tmp_path) not in text and "/tmp" not in text, text
        assert "private-notes" not in text and "'default'" not in text, text


def test_health_names_no_server_folder_when_loading_failed(settings: Settings, tmp_path: Path) -> None:
    bad = tmp_path / "models" / "broken.gguf"
    bad.parent.mkdir()
    bad.write_bytes(b"GGUF" + b"\0" * 64)  # a header and nothing after it
    settings.llm.model_path = bad
    with TestClient(create_app(settings)) as client:
        deadline = time.monotonic() + 120
        while (r := client.get("/health")).json()["status"] == "loading" and time.monotonic() < deadline:
            time.sleep(0.1)
    assert r.status_code == 503 and r.json()["status"] == "error", r.text
    assert "broken.gguf" in r.text and str(tmp_path) not in r.text, r.text
