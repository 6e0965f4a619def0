"""change_batches: a first empty batch at once, then the changes the worker would see."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from watchfiles import Change

from ingest.watch import IngestFilter, change_batches
from rag.config import Settings


def test_filter_ignores_hidden_files_and_the_indexes(tmp_path: Path) -> None:
    keep = IngestFilter(tmp_path, tmp_path / "indexes")
    assert keep(Change.added, str(tmp_path / "a.md"))
    assert keep(Change.deleted, str(tmp_path / "sub" / "b.txt"))
    assert not keep(Change.added, str(tmp_path / ".draft.md"))
    assert not keep(Change.added, str(tmp_path / ".git" / "index"))
    assert not keep(Change.modified, str(tmp_path / "indexes" / "default" / "store.sqlite"))


def test_filter_of_a_single_file(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("x")
    keep = IngestFilter(tmp_path / "a.md", tmp_path / "indexes")
    assert keep(Change.modified, str(tmp_path / "a.md"))
    assert not keep(Change.added, str(tmp_path / "b.md"))


@pytest.fixture
def batches(settings: Settings, tmp_path: Path) -> Iterator[queue.Queue[set[Path]]]:
    """Batches of a watch on tmp_path/docs, with the indexes inside the watched folder."""
    docs = tmp_path / "docs"
    docs.mkdir()
    settings.indexes_dir = docs / "indexes"
    found: queue.Queue[set[Path]] = queue.Queue()
    stop = threading.Event()

    def run() -> None:
        for batch in change_batches(docs, settings, debounce_ms=100, stop=stop):
            found.put(batch)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    yield found
    stop.set()
    thread.join(5)
    assert not thread.is_alive()


def test_batches_start_empty_then_follow_changes(batches: queue.Queue[set[Path]], tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    assert batches.get(timeout=10) == set()  # the first run goes here
    (docs / "indexes" / "default").mkdir(parents=True)
    (docs / "indexes" / "default" / "store.sqlite").write_text("written by an ingest")
    (docs / ".notes.md").write_text("hidden")
    (docs / "a.md").write_text("# A\n")
    assert batches.get(timeout=10) == {docs / "a.md"}
    (docs / "a.md").unlink()
    assert batches.get(timeout=10) == {docs / "a.md"}
    with pytest.raises(queue.Empty):
        batches.get(timeout=0.5)
