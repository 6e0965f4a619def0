"""Several ingest workers on one pgvector index share the work through the database: two
`rag ingest` processes on one folder at once leave every file in the index exactly once,
each having done part of it; two `rag ingest --watch` services on one folder follow its
changes without writing a file twice or losing one; two API apps on one index each see
what the other ingests, without a restart."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from rag.config import Settings, load_settings
from rag.embedders.sentence_transformers import SentenceTransformerEmbedder
from rag.generators.llama_cpp import LlamaCppGenerator
from rag.pipeline import Pipeline
from rag.store.pgvector.schema import schema_name
from tests import pgserver

pg_server, pg_module_url = pgserver.pg_server, pgserver.pg_module_url  # the fixtures

ROOT = Path(__file__).parents[2]
FILES = 24
TOPICS = [
    "harbour cranes",
    "alpine glaciers",
    "beekeeping",
    "violin making",
    "rice terraces",
    "lighthouse lenses",
    "desert rovers",
    "cheese caves",
]


def write_folder(folder: Path) -> None:
    folder.mkdir(parents=True)
    for n in range(FILES):
        topic = TOPICS[n % len(TOPICS)]
        body = "\n\n".join(
            f"Note {n}, part {p}: {topic} were inspected in week {n * 7 + p}; the report counts "
            f"{n * 13 + p} items and names the inspector number {n}-{p}."
            for p in range(6)
        )
        (folder / f"note{n:03d}.txt").write_text(f"# Note {n} on {topic}\n\n{body}\n")


def ingest(
    folder: Path, url: str, tmp_path: Path, *options: str, index: str = "shared"
) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "RAG_STORE__KIND": "pgvector",
        "RAG_STORE__URL": url,
        "RAG_INDEXES_DIR": str(tmp_path / "indexes"),
    }
    command = [sys.executable, "-m", "rag_cli", "ingest", str(folder), "--index", index, "--json", *options]
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)


def finished(proc: subprocess.Popen[str]) -> dict[str, Any]:
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out
    summary: dict[str, Any] = json.loads(out)
    return summary


def rows(url: str, index: str, sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT number FROM rag_indexes WHERE name = %s", (index,)).fetchone()
        assert row is not None
        return conn.execute(sql.replace("{s}", schema_name(int(row[0])))).fetchall()  # type: ignore[arg-type]


def test_two_ingest_processes_share_one_folder(pg_module_url: str, tmp_path: Path) -> None:
    folder = tmp_path / "notes"
    write_folder(folder)
    first, second = ingest(folder, pg_module_url, tmp_path), ingest(folder, pg_module_url, tmp_path)
    a, b = finished(first), finished(second)
    assert a["failed"] == b["failed"] == 0
    assert a["added"] + b["added"] == FILES  # each file written by one worker only
    assert a["added"] > 0 and b["added"] > 0  # both did part of the work
    assert a["added"] + a["unchanged"] == b["added"] + b["unchanged"] == FILES  # all seen
    live = rows(pg_module_url, "shared", "SELECT path FROM {s}.files WHERE removed IS NULL")
    assert sorted(r[0] for r in live) == sorted(str(p.resolve()) for p in folder.iterdir())
    assert rows(pg_module_url, "shared", "SELECT count(*) FROM {s}.files")[0][0] == FILES  # none retired
    twice = rows(
        pg_module_url,
        "shared",
        "SELECT file_id, ordinal FROM {s}.chunks GROUP BY file_id, ordinal HAVING count(*) > 1",
    )
    assert twice == []
    assert a["chunks"] + b["chunks"] == rows(pg_module_url, "shared", "SELECT count(*) FROM {s}.chunks")[0][0]
    assert rows(pg_module_url, "shared", "SELECT count(*) FROM {s}.claims")[0][0] == 0  # released
    again = finished(ingest(folder, pg_module_url, tmp_path))
    assert again["unchanged"] == FILES and again["added"] == again["updated"] == 0


class Watcher:
    """A `rag ingest --watch` process and the run summaries it prints, a JSON line each."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.lines: queue.Queue[dict[str, Any]] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(json.loads(line))

    def runs(self, timeout: float = 0.0) -> list[dict[str, Any]]:
        """The summaries printed so far; with a timeout, waits that long for one at least."""
        found = [self.lines.get(timeout=timeout)] if timeout else []
        while not self.lines.empty():
            found.append(self.lines.get())
        return found

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        assert self.proc.wait(timeout=60) == 0


def total(runs: list[dict[str, Any]], key: str) -> int:
    return sum(int(r[key]) for r in runs)


def test_two_watch_services_follow_one_folder(pg_module_url: str, tmp_path: Path) -> None:
    folder = tmp_path / "watched"
    write_folder(folder)
    watchers = [
        Watcher(ingest(folder, pg_module_url, tmp_path, "--watch", "--debounce-ms", "300", index="watched"))
        for _ in range(2)
    ]
    try:
        first = [r for w in watchers for r in w.runs(timeout=600)]
        assert total(first, "added") == FILES and total(first, "failed") == 0
        hashes = dict(
            rows(pg_module_url, "watched", "SELECT path, hash FROM {s}.files WHERE removed IS NULL")
        )
        # Changes while both watch: 6 new files, 2 edited, 2 deleted.
        for n in range(FILES, FILES + 6):
            (folder / f"note{n:03d}.txt").write_text(
                f"# Note {n}\n\nSea otters crack shells on stones, note {n}.\n"
            )
        for n in (0, 1):
            with (folder / f"note{n:03d}.txt").open("a") as f:
                f.write("\nAddendum: the inspection was repeated in spring.\n")
        for n in (2, 3):
            (folder / f"note{n:03d}.txt").unlink()
        expected = sorted(str(p.resolve()) for p in folder.iterdir())
        edited = [str((folder / f"note{n:03d}.txt").resolve()) for n in (0, 1)]
        deadline, later = time.monotonic() + 600, []
        while True:
            later += [r for w in watchers for r in w.runs()]
            live = dict(
                rows(pg_module_url, "watched", "SELECT path, hash FROM {s}.files WHERE removed IS NULL")
            )
            if (
                sorted(live) == expected
                and all(live[p] != hashes[p] for p in edited)
                and total(later, "added") + total(later, "updated") >= 8
            ):
                break
            assert time.monotonic() < deadline, (later, sorted(set(expected) ^ set(live)))
            time.sleep(0.5)
        time.sleep(3)  # whatever else either would write
        later += [r for w in watchers for r in w.runs()]
    finally:
        for w in watchers:
            w.stop()
    later += [r for w in watchers for r in w.runs()]
    assert total(later, "failed") == 0
    assert total(later, "added") == 6 and total(later, "updated") == 2  # each change written once
    assert total(later, "removed") >= 2
    live_rows = rows(pg_module_url, "watched", "SELECT path FROM {s}.files WHERE removed IS NULL")
    assert sorted(r[0] for r in live_rows) == expected  # no duplicate, none lost
    twice = rows(
        pg_module_url,
        "watched",
        "SELECT file_id, ordinal FROM {s}.chunks WHERE removed IS NULL "
        "GROUP BY file_id, ordinal HAVING count(*) > 1",
    )
    assert twice == []
    orphans = rows(
        pg_module_url,
        "watched",
        "SELECT count(*) FROM {s}.chunks c JOIN {s}.files f ON "
        "f.id = c.file_id WHERE (c.removed IS NULL) <> (f.removed IS NULL)",
    )
    assert orphans[0][0] == 0
    assert rows(pg_module_url, "watched", "SELECT count(*) FROM {s}.claims")[0][0] == 0  # released


@pytest.fixture(scope="module")
def shared_settings(pg_module_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    tmp = tmp_path_factory.mktemp("apps")
    return load_settings(
        overrides={
            "store.kind": "pgvector",
            "store.url": pg_module_url,
            "indexes_dir": str(tmp / "indexes"),
            "index": "apps",
            "server.upload_dir": str(tmp / "uploads"),
            "llm.seed": 1,
        }
    )


@pytest.fixture
def apps(
    shared_settings: Settings, embedder: SentenceTransformerEmbedder, generator: LlamaCppGenerator
) -> Iterator[tuple[TestClient, TestClient]]:
    """Two API apps, each with its own pipeline (its own catalog and readers), one index."""
    first = create_app(shared_settings, Pipeline(shared_settings, embedder, generator))
    second = create_app(shared_settings, Pipeline(shared_settings, embedder, generator))
    with TestClient(first) as one, TestClient(second) as two:
        yield one, two


def upload(client: TestClient, name: str, text: str) -> None:
    r = client.post("/ingest", files=[("files", (name, text.encode()))])
    assert r.status_code == 202, r.text
    deadline = time.monotonic() + 120
    while (job := client.get(f"/ingest/{r.json()['id']}").json())["status"] not in ("done", "failed"):
        assert time.monotonic() < deadline, job
        time.sleep(0.05)
    assert job["status"] == "done" and job["summary"]["failed"] == 0, job


def found(client: TestClient, query: str) -> list[str]:
    r = client.post("/search", json={"query": query, "top_k": 3, "min_score": 0.3})
    assert r.status_code == 200, r.text
    return [Path(h["path"]).name for h in r.json()["data"]]


def test_two_apps_see_what_the_other_ingests(apps: tuple[TestClient, TestClient]) -> None:
    one, two = apps
    upload(one, "owls.md", "# Owls\n\nOwls hunt mice at night and swallow them whole.\n")
    assert found(two, "What do owls hunt at night?")[0] == "owls.md"  # the other app, no restart
    assert "tea.txt" not in found(one, "At what temperature is green tea steeped?")
    upload(two, "tea.txt", "Green tea is steeped at 80 degrees for two minutes.\n")
    assert found(one, "At what temperature is green tea steeped?")[0] == "tea.txt"
    answer = one.post("/ask", json={"question": "At what temperature is green tea steeped?", "max_tokens": 8})
    assert answer.status_code == 200 and answer.json()["sources"][0]["path"].endswith("tea.txt")
