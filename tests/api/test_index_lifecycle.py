"""A running `rag serve` against real re-ingests, a killed ingest and a deletion: a reader
never loses a document that is being replaced, never sees half of an ingest, and never
serves a deleted index, or a new one of the same name, as the old one."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.api.test_live_reload import rag, rag_serve

CATS = "Cats are small carnivorous mammals. A cat eats fish and meat, version {n}."


def _fill(root: Path, n: int) -> None:
    """cats.md first, then many files after it, so that every run spends seconds between
    replacing cats.md and committing."""
    (root / "cats.md").write_text("# Cats\n\n" + CATS.format(n=n) + "\n")
    for i in range(60):
        body = " ".join(f"Zebra note {i} line {j} of round {n} about stripes." for j in range(30))
        (root / f"zebra{i:02d}.txt").write_text(body + "\n")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, dict[str, str], Path]]:
    root = tmp_path / "docs"
    root.mkdir()
    _fill(root, 0)
    with rag_serve(root, tmp_path) as (url, env):
        yield url, env, root


def ask(client: httpx.Client, url: str, question: str) -> tuple[int, list[str]]:
    r = client.post(url + "/ask", json={"question": question, "max_tokens": 1, "top_k": 8})
    names = [Path(s["path"]).name for s in r.json().get("sources", [])] if r.status_code == 200 else []
    return r.status_code, names


def test_readers_keep_every_document_through_reingests_kills_and_deletion(
    served: tuple[str, dict[str, str], Path], tmp_path: Path
) -> None:
    url, env, root = served
    seen: list[tuple[int, bool]] = []
    stop = threading.Event()

    def keep_asking() -> None:
        with httpx.Client(timeout=60) as client:
            while not stop.is_set():
                status, names = ask(client, url, "What does a cat eat?")
                seen.append((status, "cats.md" in names))

    asker = threading.Thread(target=keep_asking)
    asker.start()
    try:
        took = 0.0
        for n in (1, 2):  # whole re-ingests of changed files
            _fill(root, n)
            started = time.monotonic()
            assert rag("ingest", str(root), "--quiet", env=env).wait(300) == 0
            took = time.monotonic() - started
        _fill(root, 3)  # an ingest killed halfway: readers keep the last committed state
        proc = rag("ingest", str(root), "--quiet", env=env)
        time.sleep(took / 2)  # halfway through a run like the last one, on any machine
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        time.sleep(1)
    finally:
        stop.set()
        asker.join(60)
    assert len(seen) >= 10
    assert all(status == 200 for status, _ in seen), seen
    assert all(found for _, found in seen), f"cats.md missing in {sum(not f for _, f in seen)} answers"

    with httpx.Client(timeout=60) as client:
        assert rag("index", "delete", "default", "--yes", env=env).wait(60) == 0
        assert ask(client, url, "What does a cat eat?")[0] == 404  # gone, not served from memory
        other = tmp_path / "other"
        other.mkdir()
        (other / "comet.txt").write_text("The comet Zarvolek returns every 41 years.\n")
        assert rag("ingest", str(other), "--quiet", env=env).wait(300) == 0
        status, names = ask(client, url, "When does the comet Zarvolek return?")
        assert status == 200 and set(names) == {"comet.txt"}, names
        status, names = ask(client, url, "What does a cat eat?")
        assert status == 200 and "cats.md" not in names, names
