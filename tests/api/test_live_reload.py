"""A running `rag serve` sees what a separate `rag ingest` process commits, without a
restart, while requests keep being answered."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import free_port

ROOT = Path(__file__).parents[2]
COMET = "The comet Zarvolek returns every 41 years and glows bright green."


def rag(*args: str, env: dict[str, str], **kwargs: object) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "rag_cli", *args], cwd=ROOT, env={**os.environ, **env}, **kwargs
    )  # type: ignore[call-overload]


@contextmanager
def rag_serve(root: Path, tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """`root` ingested by `rag ingest`, then a real `rag serve` on it, once healthy."""
    env = {"RAG_INDEXES_DIR": str(tmp_path / "indexes"), "RAG_SERVER__QUEUE_SIZE": "64"}
    assert rag("ingest", str(root), "--quiet", env=env).wait(300) == 0
    port = free_port()
    server = rag("serve", "--port", str(port), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                if httpx.get(url + "/health").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        yield url, env
    finally:
        server.terminate()
        server.wait(30)


@pytest.fixture
def served(corpus: Path, tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    with rag_serve(corpus, tmp_path) as running:
        yield running


def sources(url: str, question: str) -> list[str]:
    r = httpx.post(url + "/ask", json={"question": question, "max_tokens": 1}, timeout=60)
    assert r.status_code == 200, r.text
    return [Path(s["path"]).name for s in r.json()["sources"]]


def test_ingest_while_serving(served: tuple[str, dict[str, str]], corpus: Path) -> None:
    url, env = served
    assert "comet.txt" not in sources(url, "When does the comet Zarvolek return?")

    statuses: list[int] = []
    stop = threading.Event()

    def keep_asking() -> None:
        with httpx.Client(timeout=60) as client:
            while not stop.is_set():
                r = client.post(url + "/ask", json={"question": "What do cats eat?", "max_tokens": 1})
                statuses.append(r.status_code)

    asker = threading.Thread(target=keep_asking)
    asker.start()
    # A streamed answer that starts before the ingest finishes on the state it started with.
    body = {"question": "When does the comet Zarvolek return?", "max_tokens": 16, "stream": True}
    with httpx.stream("POST", url + "/ask", json=body, timeout=60) as in_flight:
        lines = in_flight.iter_lines()
        next(line for line in lines if line.startswith("event: token"))
        (corpus / "comet.txt").write_text(COMET + "\n")
        (corpus / "bread.txt").unlink()
        assert rag("ingest", str(corpus), "--quiet", env=env).wait(300) == 0
        rest = "\n".join(lines)
    deadline = time.monotonic() + 60  # a few answers, however slow the machine
    while len(statuses) < 3 and time.monotonic() < deadline and asker.is_alive():
        time.sleep(0.1)
    stop.set()
    asker.join(60)

    assert "event: done" in rest and "comet.txt" not in rest.split("event: sources", 1)[1]
    assert len(statuses) >= 3 and set(statuses) == {200}  # answers around the ingest succeeded
    assert sources(url, "When does the comet Zarvolek return?")[0] == "comet.txt"
    assert "bread.txt" not in sources(url, "How do I bake bread?")
